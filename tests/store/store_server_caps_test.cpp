// runner::StoreServer's caps on one connection: key and value sizes, and the bytes held for a
// client that sends and never reads its replies (paused, so it holds little) or that is sent watch
// events it never reads (closed at the cap). Each cap closes that connection only, with a log line
// naming the peer; a well-behaved client goes on.

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <memory>
#include <string>
#include <thread>

#include "runner/store_server.h"
#include "tests/store/store_test_util.h"

namespace store_test {
namespace {

// The local "address:port" of a client, as the server's log lines name it.
std::string LocalName(const Client& client) {
  sockaddr_in local{};
  socklen_t len = sizeof(local);
  getsockname(client.fd(), reinterpret_cast<sockaddr*>(&local), &len);
  return "127.0.0.1:" + std::to_string(ntohs(local.sin_port));
}

// Connects a socket the test set up (small buffers) to the server, blocking.
void Connect(int fd, uint16_t port) {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0) << std::strerror(errno);
}

TEST_P(StoreServerDialect, KeyAndValueAtTheCapsPassOneByteMoreClosesTheConnection) {
  runner::StoreServerOptions options;
  options.max_key_bytes = 100;
  options.max_value_bytes = 1000;
  LogSink sink;
  runner::StoreServer server("127.0.0.1", 0, sink.Fn(), options);
  auto good = Client::Open(server.port(), d());
  good->Send(op().Set(std::string(100, 'k'), std::string(1000, 'v')));
  good->Send(op().Get(std::string(100, 'k')));
  EXPECT_EQ(good->ReadStr("GET at the caps"), std::string(1000, 'v'));
  struct Case {
    const char* what;
    Bytes request;
    const char* logged;
  };
  const Case cases[] = {
      {"a 101-byte key", op().Set(std::string(101, 'k'), "v"), "a key of 101 bytes (at most 100)"},
      {"a 1001-byte value", op().Set("k", std::string(1001, 'v')),
       "a value of 1001 bytes (at most 1000)"},
      {"a 1001-byte desired value", op().CompareSet("k", "", std::string(1001, 'v')),
       "a value of 1001 bytes"},
      {"a long key in a WAIT", op().Wait({"a", std::string(101, 'k')}), "a key of 101 bytes"},
  };
  for (const Case& c : cases) {
    auto bad = Client::Open(server.port(), d());
    bad->Send(c.request);
    EXPECT_TRUE(bad->ClosedByPeer()) << c.what;
    EXPECT_TRUE(sink.Contains("client " + LocalName(*bad) + " sent a request with " + c.logged))
        << c.what << "\n"
        << sink.All();
    good->Send(op().Get(std::string(100, 'k')));
    EXPECT_EQ(good->ReadStr(std::string("GET after ") + c.what), std::string(1000, 'v'));
  }
}

TEST(StoreServerCaps, AClientThatNeverReadsIsPausedAndHoldsLittle) {
  runner::StoreServerOptions options;
  options.pause_reading_bytes = 64 << 10;
  options.max_buffered_bytes = 1 << 20;
  LogSink sink;
  runner::StoreServer server("127.0.0.1", 0, sink.Fn(), options);
  auto good = Client::Open(server.port(), kV22);
  const std::string value(8 << 10, 'v');
  const std::string key(1000, 'k');  // long requests: fewer of them fill the socket buffers
  good->Send(Ops{kV22}.Set(key, value));
  // A small send buffer: the requests pile up at the server, not in the client's kernel.
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int small = 4096;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
  Connect(fd, server.port());
  auto greedy = Client::Adopt(fd);
  greedy->Send(Bytes().U8(kV22Validate).U32(kMagic));
  // 4000 GETs of 8 KiB (4 MB of requests, 32 MB of replies), sent by a thread that blocks once
  // the server stops reading them.
  constexpr int kGets = 4000;
  std::string requests;
  for (int i = 0; i < kGets; ++i) requests += Ops{kV22}.Get(key).data;
  std::thread sender([&] {
    for (size_t done = 0; done < requests.size();) {
      const ssize_t n =
          send(greedy->fd(), requests.data() + done, requests.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return;
      done += static_cast<size_t>(n);
    }
  });
  ASSERT_TRUE(Eventually([&] { return server.Stats().paused == 1; })) << sink.All();
  const runner::StoreServerStats stats = server.Stats();
  EXPECT_EQ(stats.connections, 2u);
  EXPECT_EQ(stats.closed_by_server, 0u) << sink.All();
  // Held for it: the pause threshold, one reply over it, and at most one read chunk of requests.
  EXPECT_LE(stats.buffered_bytes, (64u << 10) + value.size() + 16 + (64u << 10));
  good->Send(Ops{kV22}.Get(key));
  EXPECT_EQ(good->ReadStr("GET of the good client beside a paused one").size(), value.size());
  // Once it reads, it gets every reply, in order, and is answered again.
  for (int i = 0; i < kGets; ++i) {
    ASSERT_EQ(greedy->ReadStr("reply " + std::to_string(i) + " of the greedy client"), value);
  }
  sender.join();
  greedy->Send(Ops{kV22}.Add("n", 5));
  EXPECT_EQ(greedy->ReadI64("ADD after catching up"), 5);
}

TEST(StoreServerCaps, AWatcherThatNeverReadsIsClosedAtTheCapAndNamed) {
  runner::StoreServerOptions options;
  options.max_buffered_bytes = 256 << 10;
  LogSink sink;
  runner::StoreServer server("127.0.0.1", 0, sink.Fn(), options);
  // A 1.13 watcher with a small receive buffer, so the events pile up at the server.
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int small = 4096;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  Connect(fd, server.port());
  auto watcher = Client::Adopt(fd);
  watcher->Send(Bytes().U8(kV113WatchKey).Str("hot"));
  EXPECT_EQ(watcher->ReadU8("WATCH_KEY registered"), 3);
  auto writer = Client::Open(server.port(), kV113);
  const std::string value(16 << 10, 'v');
  bool closed = false;
  for (int i = 0; i < 2000 && !closed; ++i) {
    writer->Send(Ops{kV113}.Set("hot", value + std::to_string(i)));
    writer->Send(Ops{kV113}.Add("sets", 1));
    EXPECT_EQ(writer->ReadI64("ADD of the writer"), i + 1);
    closed = server.Stats().closed_by_server == 1;
  }
  ASSERT_TRUE(closed) << "2000 events of 32 KiB never hit a cap of 256 KiB\n" << sink.All();
  EXPECT_TRUE(sink.Contains("closed the connection of " + LocalName(*watcher) + ": "))
      << sink.All();
  EXPECT_TRUE(sink.Contains("over the cap of 262144; does it read its replies?")) << sink.All();
  EXPECT_TRUE(Eventually([&] { return server.Stats().connections == 1; }));
  writer->Send(Ops{kV113}.Get("hot"));
  EXPECT_FALSE(writer->ReadStr("GET after the watcher was closed").empty());
}

}  // namespace
}  // namespace store_test

// runner::StoreServer's door: peers off the allow list are refused (closed at once, logged with
// their address and how to let them in), connections over max_connections likewise, and a flood of
// refusals costs a few log lines; garbage and half-open connections close or wait alone. In every
// case a well-behaved client goes on working.

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <memory>
#include <string>
#include <vector>

#include "runner/store_server.h"
#include "tests/store/store_test_util.h"

namespace store_test {
namespace {

// A connection to 127.0.0.1:`port` from `source` (another loopback address: another "host"), or
// the errno of the failure.
std::pair<std::unique_ptr<Client>, int> TryConnectFrom(const std::string& source, uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in from{};
  from.sin_family = AF_INET;
  inet_pton(AF_INET, source.c_str(), &from.sin_addr);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof(from)) != 0 ||
      connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
    const int err = errno;
    close(fd);
    return {nullptr, err};
  }
  fcntl(fd, F_SETFL, O_NONBLOCK);
  return {Client::Adopt(fd), 0};
}

std::unique_ptr<Client> ConnectFrom(const std::string& source, uint16_t port) {
  auto [client, err] = TryConnectFrom(source, port);
  if (!client)
    throw std::runtime_error("cannot connect from " + source + ": " + std::strerror(err));
  return std::move(client);
}

// The server closes a connection from `source` at once (it may even reset it before connect
// returns), whatever the client sends first.
bool Refused(const std::string& source, uint16_t port) {
  auto [client, err] = TryConnectFrom(source, port);
  if (!client) return err == ECONNRESET;
  // Raw: the server may have closed it already (then the request is simply lost).
  const std::string request =
      Bytes().U8(kV22Validate).U32(kMagic).Append(Ops{kV22}.Get("alive")).data;
  (void)!send(client->fd(), request.data(), request.size(), MSG_NOSIGNAL);
  return client->ClosedByPeer();
}

// The client's requests are answered: an ADD round trip.
bool Works(Client& client, const Dialect& d, const std::string& what) {
  client.Send(Ops{d}.Add("alive", 1));
  return client.ReadI64(what) > 0;
}

// A client that said VALIDATE (2.2 dialect) and got an answer, so the server surely accepted it.
std::unique_ptr<Client> Accepted(uint16_t port, const std::string& source = "127.0.0.1") {
  auto client = ConnectFrom(source, port);
  client->Send(Bytes().U8(kV22Validate).U32(kMagic));
  EXPECT_TRUE(Works(*client, kV22, "ADD from " + source));
  return client;
}

runner::StoreServerOptions AllowOnly(const std::string& list) {
  runner::StoreServerOptions options;
  options.allow = runner::StoreAllowList();
  options.allow.AddList(list, "test");
  return options;
}

TEST(StoreServerAccess, PeerOffTheListIsRefusedAndLoggedWhileTheJobGoesOn) {
  LogSink sink;
  runner::StoreServer server("127.0.0.1", 0, sink.Fn(), AllowOnly("127.0.0.1, 127.0.1.0/24"));
  auto worker = Accepted(server.port());
  for (const char* intruder : {"127.0.0.2", "127.0.2.1"}) {
    EXPECT_TRUE(Refused(intruder, server.port())) << intruder << " was not refused";
    EXPECT_TRUE(sink.Contains(std::string("refused a connection from ") + intruder + ":"))
        << sink.All();
  }
  EXPECT_TRUE(sink.Contains("not one of the job's hosts (allowed: 127.0.0.1, 127.0.1.0/24)"))
      << sink.All();
  EXPECT_TRUE(sink.Contains("launch.store_allow: \"127.0.0.2\"")) << sink.All();
  EXPECT_TRUE(Works(*worker, kV22, "ADD of the worker after the refusals"));
  auto network_peer = Accepted(server.port(), "127.0.1.9");  // inside 127.0.1.0/24
  const runner::StoreServerStats stats = server.Stats();
  EXPECT_EQ(stats.refused, 2u);
  EXPECT_EQ(stats.connections, 2u);
}

TEST(StoreServerAccess, AnOpenStoreNarrowedToTheJobKeepsItsOpenConnections) {
  // The TCP rendezvous: any agent may join until they have met, then only the job's hosts.
  LogSink sink;
  runner::StoreServer server("127.0.0.1", 0, sink.Fn(), AllowOnly("any"));
  auto joined = Accepted(server.port(), "127.0.0.2");
  runner::StoreAllowList job;
  job.AddList("127.0.0.1", "test");
  server.SetAllowList(job);
  EXPECT_TRUE(Refused("127.0.0.3", server.port()));
  EXPECT_TRUE(Works(*joined, kV22, "ADD of the agent that joined before"));
  auto worker = Accepted(server.port(), "127.0.0.1");
}

TEST(StoreServerAccess, DefaultOptionsAllowLoopbackOnly) {
  LogSink sink;
  runner::StoreServer server("127.0.0.1", 0, sink.Fn());
  auto local = Accepted(server.port(), "127.0.0.5");  // all of 127.0.0.0/8 is this host
  EXPECT_EQ(server.Stats().refused, 0u);
}

TEST(StoreServerAccess, ConnectionsOverTheCapAreRefusedUntilOneCloses) {
  LogSink sink;
  runner::StoreServerOptions options;
  options.max_connections = 4;
  runner::StoreServer server("127.0.0.1", 0, sink.Fn(), options);
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 4; ++i) clients.push_back(Accepted(server.port()));
  EXPECT_TRUE(Refused("127.0.0.1", server.port())) << "the fifth connection";
  EXPECT_TRUE(
      sink.Contains("the store already holds 4 connections, its cap; raise "
                    "launch.store_max_connections"))
      << sink.All();
  for (auto& client : clients) EXPECT_TRUE(Works(*client, kV22, "ADD of a held connection"));
  clients.pop_back();
  EXPECT_TRUE(Eventually([&] { return server.Stats().connections == 3; }));
  auto again = Accepted(server.port());
  EXPECT_EQ(server.Stats().refused, 1u);
}

TEST(StoreServerAccess, AFloodOfRefusalsIsLoggedAFewTimesAndCounted) {
  LogSink sink;
  runner::StoreServerOptions options = AllowOnly("127.0.0.1");
  options.log_burst = 3;
  options.log_interval = std::chrono::hours(1);
  runner::StoreServer server("127.0.0.1", 0, sink.Fn(), options);
  for (int i = 0; i < 50; ++i) {
    EXPECT_TRUE(Refused("127.0.0.3", server.port()));
  }
  auto worker = Accepted(server.port());
  const runner::StoreServerStats stats = server.Stats();
  EXPECT_EQ(stats.refused, 50u);
  EXPECT_EQ(stats.log_lines_left_out, 47u);
  std::lock_guard<std::mutex> lock(sink.mutex);
  EXPECT_EQ(sink.lines.size(), 3u);
}

TEST(StoreServerAccess, GarbageFromManyConnectionsClosesEachAloneWhileTheJobGoesOn) {
  LogSink sink;
  runner::StoreServer server("127.0.0.1", 0, sink.Fn());
  auto worker = Accepted(server.port());
  const std::vector<std::pair<const char*, std::string>> garbage = {
      {"an HTTP request", "GET / HTTP/1.1\r\nHost: x\r\n\r\n"},
      {"a TLS ClientHello", std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11)},
      {"a wrong magic", Bytes().U8(kV22Validate).U32(0xdeadbeef).data},
      {"all ones", std::string(64, '\xff')},
      {"a key longer than the cap", Bytes().U8(kV22.set).U64(uint64_t{1} << 17).data},
  };
  std::vector<std::unique_ptr<Client>> bad;
  for (const auto& [what, bytes] : garbage) {
    bad.push_back(Client::Connect(server.port()));
    if (std::string(what) != "a wrong magic")
      bad.back()->Send(Bytes().U8(kV22Validate).U32(kMagic));
    bad.back()->Send(bytes);
  }
  for (size_t i = 0; i < bad.size(); ++i) {
    EXPECT_TRUE(bad[i]->ClosedByPeer()) << garbage[i].first << " did not close its connection";
  }
  EXPECT_TRUE(Works(*worker, kV22, "ADD of the worker after the garbage"));
  EXPECT_EQ(server.Stats().closed_by_server, garbage.size()) << sink.All();
}

TEST(StoreServerAccess, HalfOpenConnectionsWaitOrCloseAlone) {
  LogSink sink;
  runner::StoreServer server("127.0.0.1", 0, sink.Fn());
  auto worker = Accepted(server.port());
  const std::string half_set = Ops{kV22}.Set("half", std::string(1000, 'v')).data.substr(0, 500);
  auto silent = Accepted(server.port());   // connects, then says nothing more
  auto stalled = Accepted(server.port());  // half a request, then nothing
  stalled->Send(half_set);
  auto half_closed = Accepted(server.port());  // half a request, then the end of its stream
  half_closed->Send(half_set);
  half_closed->ShutdownSending();
  auto reset = Accepted(server.port());  // half a request, then a reset
  reset->Send(half_set);
  linger now{1, 0};
  setsockopt(reset->fd(), SOL_SOCKET, SO_LINGER, &now, sizeof(now));
  reset->Close();
  EXPECT_TRUE(half_closed->ClosedByPeer());
  EXPECT_TRUE(Eventually([&] { return server.Stats().connections == 3; }))
      << server.Stats().connections << " connections";
  EXPECT_TRUE(Works(*worker, kV22, "ADD of the worker beside half-open connections"));
  EXPECT_EQ(server.Stats().buffered_bytes, half_set.size()) << "the stalled request";
  // The stalled client finishes its request after all: it is answered as if nothing happened.
  stalled->Send(Ops{kV22}.Set("half", std::string(1000, 'v')).data.substr(500));
  stalled->Send(Ops{kV22}.Get("half"));
  EXPECT_EQ(stalled->ReadStr("GET after the stalled SET"), std::string(1000, 'v'));
  EXPECT_TRUE(Works(*silent, kV22, "ADD of the silent client"));
}

}  // namespace
}  // namespace store_test

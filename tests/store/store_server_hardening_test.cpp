// runner::StoreServer against clients that misbehave or many at once: unknown query bytes, absurd
// lengths, requests followed at once by the end of the stream, destruction with clients still
// connected, and 64 concurrent clients.

#include <gtest/gtest.h>

#include <cstdint>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "runner/store_server.h"
#include "tests/store/store_test_util.h"

namespace store_test {
namespace {

TEST_P(StoreServerDialect, UnknownQueryByteClosesOnlyThatConnection) {
  auto other = Client::Open(server_.port(), d());
  other->Send(op().Set("k", "v"));
  for (uint8_t bad : {d().first_unknown, uint8_t{0x47} /* 'G' of "GET / HTTP" */, uint8_t{0xff}}) {
    auto bad_client = Client::Open(server_.port(), d());
    bad_client->Send(op().Get("k"));
    EXPECT_EQ(bad_client->ReadStr("GET before the bad byte"), "v");
    bad_client->Send(Bytes().U8(bad).Str("k"));
    EXPECT_TRUE(bad_client->ClosedByPeer()) << "query byte " << int(bad) << " did not close";
    EXPECT_TRUE(sink_.Contains("unrecognised request from ")) << sink_.All();
    EXPECT_TRUE(sink_.Contains(": query type " + std::to_string(bad) + " is unknown"))
        << sink_.All();
    EXPECT_FALSE(sink_.Contains("2.0 or 2.1")) << sink_.All();
  }
  other->Send(op().Get("k"));
  EXPECT_EQ(other->ReadStr("GET on the good connection"), "v");
  auto fresh = Client::Open(server_.port(), d());
  fresh->Send(op().Get("k"));
  EXPECT_EQ(fresh->ReadStr("GET on a new connection"), "v");
}

TEST_P(StoreServerDialect, AbsurdLengthClosesTheConnectionInsteadOfBufferingOrSpinning) {
  // A GET whose key length is 2^64 - 9: pos + length wraps around to 0. The server must not take
  // that as a complete request (it used to: an endless loop answering the same bytes).
  struct Case {
    const char* what;
    Bytes request;
  };
  const std::vector<Case> cases = {
      {"GET with key length 2^64-9", Bytes().U8(d().get).U64(~uint64_t{0} - 8)},
      {"SET with key length 2^63", Bytes().U8(d().set).U64(uint64_t{1} << 63)},
      {"SET with a 3 GiB value", Bytes().U8(d().set).Str("k").U64(uint64_t{3} << 30)},
      {"WAIT on 2^40 keys", Bytes().U8(d().wait).U64(uint64_t{1} << 40)},
      {"MULTI_SET of 2^40 items", Bytes().U8(d().multi_set).U64(uint64_t{1} << 40)},
  };
  for (const Case& c : cases) {
    auto bad = Client::Open(server_.port(), d());
    bad->Send(c.request);
    EXPECT_TRUE(bad->ClosedByPeer()) << c.what;
    auto good = Client::Open(server_.port(), d());
    good->Send(op().Add("alive", 1));
    EXPECT_GT(good->ReadI64(std::string("ADD after ") + c.what), 0) << c.what;
  }
  EXPECT_TRUE(sink_.Contains("bytes (at most")) << sink_.All();
  EXPECT_TRUE(sink_.Contains("a key count of 1099511627776")) << sink_.All();
}

TEST_P(StoreServerDialect, SetFollowedAtOnceByCloseIsNotLost) {
  // A client may SET (no reply) and exit: the request and the end of the stream can arrive in
  // the same read.
  constexpr int kClients = 40;
  std::vector<std::string> keys;
  for (int i = 0; i < kClients; ++i) {
    keys.push_back("exit/" + std::to_string(i));
    auto client = Client::Open(server_.port(), d());
    client->Send(op().Set(keys.back(), "bye"));
    client->Close();
  }
  auto checker = Client::Open(server_.port(), d());
  checker->Send(op().Wait(keys));
  EXPECT_EQ(checker->ReadU8("STOP_WAITING for keys set by clients that closed at once"),
            kStopWaiting);
  checker->Send(op().NumKeys());
  EXPECT_EQ(checker->ReadI64("GETNUMKEYS"), kClients);
}

TEST_P(StoreServerDialect, RequestsBeforeShutdownOfTheSendingSideAreAnswered) {
  auto client = Client::Open(server_.port(), d());
  client->Send(Bytes().Append(op().Set("k", "v")).Append(op().Get("k")).Append(op().Add("n", 2)));
  client->ShutdownSending();  // the server sees the end of the stream with the requests
  EXPECT_EQ(client->ReadStr("GET before the end of the stream"), "v");
  EXPECT_EQ(client->ReadI64("ADD before the end of the stream"), 2);
  EXPECT_TRUE(client->ClosedByPeer());
}

// ---- Lifetime, diagnostics, load ----

TEST(StoreServer, DestructionWithClientsConnectedAndWaitingDoesNotHang) {
  auto server = std::make_unique<runner::StoreServer>("127.0.0.1", 0);
  std::vector<std::unique_ptr<Client>> clients;
  for (const Dialect* d : {&kV113, &kV22, &kV113, &kV22}) {
    clients.push_back(Client::Open(server->port(), *d));
    clients.back()->Send(Ops{*d}.Wait({"never"}));
  }
  clients.push_back(Client::Connect(server->port()));
  clients.back()->Send(Ops{kV113}.Set("half", "x").data.substr(0, 5));  // half a request
  clients.push_back(Client::Connect(server->port()));                   // said nothing
  ASSERT_TRUE(Eventually([&] { return server->DescribeWaits().size() == 4; }));

  auto done = std::make_shared<std::promise<void>>();
  std::future<void> finished = done->get_future();
  std::thread([s = std::move(server), done]() mutable {
    s.reset();
    done->set_value();
  }).detach();
  ASSERT_EQ(finished.wait_for(5s), std::future_status::ready) << "~StoreServer hung";
  for (size_t i = 0; i < clients.size(); ++i) {
    EXPECT_TRUE(clients[i]->ClosedByPeer()) << "client " << i << " was not disconnected";
  }
}
TEST(StoreServer, SixtyFourConcurrentClients) {
  runner::StoreServer server("127.0.0.1", 0);
  constexpr int kClients = 64;
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kClients; ++i) {
    const Dialect& d = i % 2 ? kV22 : kV113;
    clients.push_back(Client::Open(server.port(), d));
    clients.back()->Send(Ops{d}.Wait({"go"}));
  }
  ASSERT_TRUE(Eventually([&] { return server.DescribeWaits().size() == kClients; }))
      << server.DescribeWaits().size() << " of " << kClients << " waiting";
  auto starter = Client::Open(server.port(), kV22);
  starter->Send(Ops{kV22}.Set("go", "1"));

  std::vector<std::thread> threads;
  std::vector<std::string> errors(kClients);
  std::vector<int64_t> counts(kClients);
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      try {
        Client& c = *clients[i];
        const Ops op{i % 2 ? kV22 : kV113};
        if (c.ReadU8("STOP_WAITING for go") != kStopWaiting)
          throw std::runtime_error("bad WAIT reply");
        const std::string key = "client/" + std::to_string(i);
        for (int round = 0; round < 20; ++round) {
          c.Send(Bytes()
                     .Append(op.Add("counter", 1))
                     .Append(op.Set(key, std::to_string(round)))
                     .Append(op.Get(key)));
          counts[i] = c.ReadI64("ADD counter");
          if (c.ReadStr("GET own key") != std::to_string(round))
            throw std::runtime_error("wrong own value");
        }
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kClients; ++i) EXPECT_EQ(errors[i], "") << "client " << i;
  starter->Send(Ops{kV22}.Get("counter"));
  EXPECT_EQ(starter->ReadStr("GET counter"), std::to_string(kClients * 20));
  EXPECT_EQ(server.NumKeys(), size_t{kClients + 2});
}

}  // namespace
}  // namespace store_test

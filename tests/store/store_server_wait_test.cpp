// runner::StoreServer's WAIT over sockets: replies only once the keys exist, from any writing
// operation, on several keys, CANCEL_WAIT, the stale WAIT of a 1.13 client, queue items waking
// one waiter, and DescribeWaits naming who waits for what.

#include <gtest/gtest.h>

#include <string>

#include "runner/store_server.h"
#include "tests/store/store_test_util.h"

namespace store_test {
namespace {

TEST_P(StoreServerDialect, WaitRepliesOnlyOnceAnotherConnectionSetsTheKey) {
  auto waiter = Client::Open(server_.port(), d());
  auto setter = Client::Open(server_.port(), d());
  waiter->Send(op().Wait({"later"}));
  EXPECT_EQ(Hex(waiter->Unexpected()), Hex("")) << "WAIT replied before the key existed";
  setter->Send(op().Set("later", "x"));
  EXPECT_EQ(waiter->ReadU8("STOP_WAITING after the other client's SET"), kStopWaiting);
  // And once it exists, WAIT answers at once.
  waiter->Send(op().Wait({"later"}));
  EXPECT_EQ(waiter->ReadU8("STOP_WAITING for an existing key"), kStopWaiting);
  EXPECT_EQ(Hex(waiter->Unexpected()), Hex(""));
}

TEST_P(StoreServerDialect, WaitIsEndedByAddCompareSetAppendAndMultiSet) {
  struct Case {
    const char* what;
    Bytes request;
    size_t reply_bytes;
  };
  const Ops o = op();
  const std::vector<Case> cases = {
      {"ADD", o.Add("k0", 1), 8},
      {"COMPARE_SET", o.CompareSet("k1", "", "v"), 9},
      {"APPEND", o.AppendOp("k2", "v"), 0},
      {"MULTI_SET", o.MultiSet({{"other", "1"}, {"k3", "v"}}), 0},
  };
  auto setter = Client::Open(server_.port(), d());
  for (size_t i = 0; i < cases.size(); ++i) {
    auto waiter = Client::Open(server_.port(), d());
    waiter->Send(o.Wait({"k" + std::to_string(i)}));
    EXPECT_EQ(Hex(waiter->Unexpected(50ms)), Hex("")) << cases[i].what;
    setter->Send(cases[i].request);
    if (cases[i].reply_bytes)
      setter->Read(cases[i].reply_bytes, std::string("reply to ") + cases[i].what);
    EXPECT_EQ(waiter->ReadU8(std::string("STOP_WAITING after ") + cases[i].what), kStopWaiting);
  }
}

TEST_P(StoreServerDialect, WaitOnSeveralKeysEndsWhenTheLastExists) {
  auto waiter = Client::Open(server_.port(), d());
  auto setter = Client::Open(server_.port(), d());
  setter->Send(op().Set("k1", "1"));
  waiter->Send(op().Wait({"k1", "k2", "k3"}));
  setter->Send(op().Set("k2", "2"));
  EXPECT_EQ(Hex(waiter->Unexpected()), Hex("")) << "replied with k3 still missing";
  setter->Send(op().Set("k2", "2 again"));  // a key already counted changes nothing
  EXPECT_EQ(Hex(waiter->Unexpected()), Hex("")) << "replied with k3 still missing";
  setter->Send(op().Set("k3", "3"));
  EXPECT_EQ(waiter->ReadU8("STOP_WAITING once k1, k2 and k3 exist"), kStopWaiting);
  EXPECT_EQ(Hex(waiter->Unexpected()), Hex(""));
}

TEST_P(StoreServerDialect, CancelWaitEndsThePendingWait) {
  auto waiter = Client::Open(server_.port(), d());
  auto setter = Client::Open(server_.port(), d());
  waiter->Send(op().Wait({"never"}));
  EXPECT_EQ(Hex(waiter->Unexpected(50ms)), Hex(""));
  waiter->Send(op().CancelWait());
  EXPECT_EQ(waiter->ReadU8("WAIT_CANCELED"), kWaitCanceled);
  EXPECT_TRUE(server_.DescribeWaits().empty());
  setter->Send(op().Set("never", "now"));
  setter->Send(op().Get("never"));
  EXPECT_EQ(setter->ReadStr("GET never"), "now");
  EXPECT_EQ(Hex(waiter->Unexpected()), Hex("")) << "a cancelled WAIT still replied";
  waiter->Send(op().Get("never"));
  EXPECT_EQ(waiter->ReadStr("GET after CANCEL_WAIT"), "now");
}

TEST(StoreServer, StaleWaitOf113ClientIsDroppedWhenItMovesOn) {
  // PyTorch 1.13's client gives up a WAIT on a socket timeout without telling the server, then
  // sends its next request. The reply to that request must not be a late STOP_WAITING byte.
  runner::StoreServer server("127.0.0.1", 0);
  const Ops op{kV113};
  auto client = Client::Open(server.port(), kV113);
  auto other = Client::Open(server.port(), kV113);
  client->Send(op.Set("exists", "value"));
  client->Send(op.Wait({"missing"}));
  EXPECT_EQ(Hex(client->Unexpected(100ms)), Hex(""));
  client->Send(op.Get("exists"));
  EXPECT_EQ(client->ReadStr("GET after a stale WAIT"), "value");
  EXPECT_TRUE(server.DescribeWaits().empty());
  other->Send(op.Set("missing", "late"));
  other->Send(op.Get("missing"));
  EXPECT_EQ(other->ReadStr("GET missing"), "late");
  EXPECT_EQ(Hex(client->Unexpected()), Hex("")) << "the dropped WAIT still replied";
  client->Send(op.Add("n", 1));
  EXPECT_EQ(client->ReadI64("ADD after everything"), 1);

  // The same with the stale WAIT and the next request in one write.
  client->Send(Bytes().Append(op.Wait({"missing2"})).Append(op.Get("exists")));
  EXPECT_EQ(client->ReadStr("pipelined GET after a stale WAIT"), "value");
  other->Send(op.Set("missing2", "x"));
  other->Send(op.NumKeys());
  EXPECT_EQ(other->ReadI64("GETNUMKEYS"), 4);
  EXPECT_EQ(Hex(client->Unexpected()), Hex(""));
}
TEST(StoreServer, QueuePushWakesOneWaiterOldestFirst) {
  runner::StoreServer server("127.0.0.1", 0);
  const Ops op{kV22};
  auto first = Client::Open(server.port(), kV22);
  auto second = Client::Open(server.port(), kV22);
  auto pusher = Client::Open(server.port(), kV22);
  first->Send(op.Wait({"jobs"}));
  ASSERT_TRUE(Eventually([&] { return server.DescribeWaits().size() == 1; }));
  second->Send(op.Wait({"jobs"}));
  ASSERT_TRUE(Eventually([&] { return server.DescribeWaits().size() == 2; }));
  pusher->Send(Bytes().U8(kV22QueuePush).Str("jobs").Str("1"));
  EXPECT_EQ(first->ReadU8("STOP_WAITING for the oldest waiter"), kStopWaiting);
  EXPECT_EQ(Hex(second->Unexpected()), Hex("")) << "one item woke two waiters";
  first->Send(Bytes().U8(kV22QueuePop).Str("jobs"));
  EXPECT_EQ(first->Read(8 + 8 + 1, "QUEUE_POP"), Bytes().I64(1).Str("1").data);
  pusher->Send(Bytes().U8(kV22QueuePush).Str("jobs").Str("2"));
  EXPECT_EQ(second->ReadU8("STOP_WAITING for the second waiter"), kStopWaiting);
}
TEST(StoreServer, DescribeWaitsNamesThePeerAndKeys) {
  runner::StoreServer server("127.0.0.1", 0);
  EXPECT_TRUE(server.DescribeWaits().empty());
  auto waiter = Client::Open(server.port(), kV22);
  auto setter = Client::Open(server.port(), kV22);
  setter->Send(Ops{kV22}.Set("present", "1"));
  waiter->Send(Ops{kV22}.Wait({"present", "rank/1/ready", "rank/2/ready"}));
  ASSERT_TRUE(Eventually([&] { return server.DescribeWaits().size() == 1; }));
  const std::string line = server.DescribeWaits().front();
  EXPECT_NE(line.find("127.0.0.1:" + std::to_string(waiter->LocalPort())), std::string::npos)
      << line;
  EXPECT_NE(line.find("rank/1/ready"), std::string::npos) << line;
  EXPECT_NE(line.find("rank/2/ready"), std::string::npos) << line;
  EXPECT_EQ(line.find("present"), std::string::npos) << "names a key that exists: " << line;
  setter->Send(Ops{kV22}.Set("rank/1/ready", "1"));
  ASSERT_TRUE(Eventually([&] {
    auto waits = server.DescribeWaits();
    return waits.size() == 1 && waits.front().find("rank/1/ready") == std::string::npos;
  })) << "a key that now exists is still listed";
  setter->Send(Ops{kV22}.Set("rank/2/ready", "1"));
  EXPECT_EQ(waiter->ReadU8("STOP_WAITING"), kStopWaiting);
  EXPECT_TRUE(server.DescribeWaits().empty());
  // A waiting client that disconnects is no longer listed.
  auto quitter = Client::Open(server.port(), kV22);
  quitter->Send(Ops{kV22}.Wait({"gone"}));
  ASSERT_TRUE(Eventually([&] { return server.DescribeWaits().size() == 1; }));
  quitter->Close();
  EXPECT_TRUE(Eventually([&] { return server.DescribeWaits().empty(); }));
}

}  // namespace
}  // namespace store_test

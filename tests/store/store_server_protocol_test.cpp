// runner::StoreServer's wire protocol in both dialects: every operation's exact reply, one request
// at a time, split into one-byte writes and pipelined; dialect detection and what only one dialect
// has (PING, queues, LIST, WATCH_KEY).

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "runner/store_server.h"
#include "tests/store/store_test_util.h"

namespace store_test {
namespace {

// ---- The table of requests and exact replies shared by several tests ----

struct Step {
  std::string what;
  Bytes request;
  Bytes reply;  // exact bytes expected; empty: the op has no reply
};

Bytes Str(const std::string& s) { return Bytes().Str(s); }
Bytes I64(int64_t v) { return Bytes().I64(v); }
Bytes U8(uint8_t v) { return Bytes().U8(v); }

std::vector<Step> EveryOpSteps(const Dialect& d) {
  const Ops op{d};
  return {
      {"SET a=1", op.Set("a", "1"), {}},
      {"GET a", op.Get("a"), Str("1")},
      {"SET a=one (overwrite)", op.Set("a", "one"), {}},
      {"GET a after overwrite", op.Get("a"), Str("one")},
      {"SET empty value", op.Set("empty", ""), {}},
      {"GET empty value", op.Get("empty"), Str("")},
      {"SET binary value", op.Set("bin", std::string("\0\xff\x01", 3)), {}},
      {"GET binary value", op.Get("bin"), Str(std::string("\0\xff\x01", 3))},
      {"ADD c 5 (new key)", op.Add("c", 5), I64(5)},
      {"ADD c -7", op.Add("c", -7), I64(-2)},
      {"ADD c 0", op.Add("c", 0), I64(-2)},
      {"GET c (decimal text)", op.Get("c"), Str("-2")},
      {"CHECK [a c] ready", op.Check({"a", "c"}), U8(kReady)},
      {"CHECK [a missing] not ready", op.Check({"a", "missing"}), U8(kNotReady)},
      {"CHECK [] ready", op.Check({}), U8(kReady)},
      {"WAIT [a] existing", op.Wait({"a"}), U8(kStopWaiting)},
      {"WAIT [a c] existing", op.Wait({"a", "c"}), U8(kStopWaiting)},
      {"GETNUMKEYS", op.NumKeys(), I64(4)},
      {"COMPARE_SET a one->two", op.CompareSet("a", "one", "two"), Str("two")},
      {"COMPARE_SET a mismatch", op.CompareSet("a", "one", "three"), Str("two")},
      {"COMPARE_SET new key, expected empty", op.CompareSet("cs", "", "created"), Str("created")},
      {"GET created by COMPARE_SET", op.Get("cs"), Str("created")},
      {"COMPARE_SET missing key, expected non-empty", op.CompareSet("nope", "x", "y"), Str("x")},
      {"CHECK key COMPARE_SET did not create", op.Check({"nope"}), U8(kNotReady)},
      {"APPEND a", op.AppendOp("a", "+x"), {}},
      {"GET appended", op.Get("a"), Str("two+x")},
      {"APPEND new key", op.AppendOp("ap", "z"), {}},
      {"GET new appended key", op.Get("ap"), Str("z")},
      {"MULTI_SET m1 m2", op.MultiSet({{"m1", "v1"}, {"m2", "v2"}}), {}},
      {"MULTI_GET m1 m2 missing", op.MultiGet({"m1", "m2", "missing"}),
       Bytes().Str("v1").Str("v2").Str("")},
      {"MULTI_GET []", op.MultiGet({}), {}},
      {"GETNUMKEYS after more keys", op.NumKeys(), I64(8)},
      {"DELETE_KEY a", op.Delete("a"), I64(1)},
      {"DELETE_KEY a again", op.Delete("a"), I64(0)},
      {"CHECK deleted key", op.Check({"a"}), U8(kNotReady)},
      {"GETNUMKEYS after delete", op.NumKeys(), I64(7)},
      {"CANCEL_WAIT with no WAIT pending", op.CancelWait(), U8(kWaitCanceled)},
  };
}

std::string AllRequests(const std::vector<Step>& steps) {
  std::string out;
  for (const Step& step : steps) out += step.request.data;
  return out;
}

void ExpectReply(Client& client, const Step& step) {
  if (step.reply.data.empty()) return;
  const std::string got = client.Read(step.reply.data.size(), "the reply to " + step.what);
  EXPECT_EQ(Hex(got), Hex(step.reply.data)) << step.what;
}

// ---- Tests run in both dialects ----

TEST_P(StoreServerDialect, EveryOpOneRequestAtATime) {
  auto client = Client::Open(server_.port(), d());
  for (const Step& step : EveryOpSteps(d())) {
    client->Send(step.request);
    ExpectReply(*client, step);
  }
  EXPECT_EQ(Hex(client->Unexpected()), Hex("")) << "bytes nobody asked for";
  EXPECT_EQ(server_.NumKeys(), 7u);
}

TEST_P(StoreServerDialect, EveryOpSplitIntoOneByteWrites) {
  auto client = Client::Connect(server_.port());
  if (d().validate) client->SendBytewise(Bytes().U8(kV22Validate).U32(kMagic).data);
  for (const Step& step : EveryOpSteps(d())) {
    client->SendBytewise(step.request.data);
    ExpectReply(*client, step);
  }
  EXPECT_EQ(Hex(client->Unexpected()), Hex(""));
}

TEST_P(StoreServerDialect, EveryOpPipelinedInOneWrite) {
  const std::vector<Step> steps = EveryOpSteps(d());
  auto client = Client::Connect(server_.port());
  std::string all = d().validate ? Bytes().U8(kV22Validate).U32(kMagic).data : std::string();
  all += AllRequests(steps);
  client->Send(all);
  for (const Step& step : steps) ExpectReply(*client, step);
  EXPECT_EQ(Hex(client->Unexpected()), Hex(""));
}
// Thousands of small requests in one write span many reads of the server's, some cut in two
// between them; each is answered once, in order.
TEST_P(StoreServerDialect, ThousandsPipelinedAcrossReads) {
  constexpr int kRequests = 20000;
  auto client = Client::Open(server_.port(), d());
  std::string all;
  const Ops op{d()};
  for (int i = 0; i < kRequests; ++i) all += op.Add("counter", 1).data;
  client->Send(all);
  for (int i = 1; i <= kRequests; ++i) {
    ASSERT_EQ(client->ReadI64("ADD #" + std::to_string(i)), i);
  }
  EXPECT_EQ(Hex(client->Unexpected()), Hex(""));
}
INSTANTIATE_TEST_SUITE_P(BothDialects, StoreServerDialect, ::testing::Values(kV113, kV22),
                         [](const ::testing::TestParamInfo<Dialect>& param) {
                           return std::string(param.param.name);
                         });

// ---- Dialect-specific behaviour ----

TEST(StoreServer, WrongValidationMagicClosesTheConnection) {
  LogSink sink;
  runner::StoreServer server("127.0.0.1", 0, sink.Fn());
  for (uint32_t magic : {0xDEADBEEFu, kMagic + 1, 0xFFFFFFFFu}) {
    auto client = Client::Connect(server.port());
    client->Send(Bytes().U8(kV22Validate).U32(magic).U8(kV22Ping).U32(7));
    EXPECT_TRUE(client->ClosedByPeer()) << std::hex << magic;
  }
  EXPECT_TRUE(sink.Contains("wrong validation number 0xDEADBEEF")) << sink.All();
  // A second VALIDATE with the wrong number on a validated connection closes it as well.
  auto client = Client::Open(server.port(), kV22);
  client->Send(Bytes().U8(kV22Ping).U32(42));
  EXPECT_EQ(client->ReadScalar<uint32_t>("PING echo"), 42u);
  client->Send(Bytes().U8(kV22Validate).U32(0x12345678));
  EXPECT_TRUE(client->ClosedByPeer());
  // The server goes on serving.
  auto good = Client::Open(server.port(), kV22);
  good->Send(Bytes().U8(kV22Ping).U32(9));
  EXPECT_EQ(good->ReadScalar<uint32_t>("PING echo after bad clients"), 9u);
}

TEST(StoreServer, V113SetAsFirstRequestIsNotMistakenForValidate) {
  // SET is byte 0 in 1.13, like VALIDATE in 2.2+: the next four bytes decide.
  runner::StoreServer server("127.0.0.1", 0);
  const Ops op{kV113};
  for (size_t key_size : {size_t{0}, size_t{1}, size_t{4096}}) {
    auto client = Client::Connect(server.port());
    const std::string key(key_size, 'k');
    client->SendBytewise(op.Set(key, "v").data.substr(0, 6));
    client->Send(op.Set(key, "v").data.substr(6));
    client->Send(op.Get(key));
    EXPECT_EQ(client->ReadStr("GET of a " + std::to_string(key_size) + "-byte key"), "v");
  }
}

TEST(StoreServer, V22PingQueuesAndList) {
  runner::StoreServer server("127.0.0.1", 0);
  const Ops op{kV22};
  auto client = Client::Open(server.port(), kV22);
  auto queue_push = [](const std::string& k, const std::string& v) {
    return Bytes().U8(kV22QueuePush).Str(k).Str(v);
  };
  const std::vector<Step> steps = {
      {"PING", Bytes().U8(kV22Ping).U32(0xA1B2C3D4), Bytes().U32(0xA1B2C3D4)},
      {"QUEUE_LEN of a missing queue", Bytes().U8(kV22QueueLen).Str("q"), I64(0)},
      {"QUEUE_POP of an empty queue", Bytes().U8(kV22QueuePop).Str("q"), I64(0)},
      {"CHECK an empty queue", op.Check({"q"}), U8(kNotReady)},
      {"QUEUE_PUSH 1", queue_push("q", "first"), {}},
      {"QUEUE_PUSH 2", queue_push("q", "second"), {}},
      {"QUEUE_LEN 2", Bytes().U8(kV22QueueLen).Str("q"), I64(2)},
      {"CHECK a non-empty queue", op.Check({"q"}), U8(kReady)},
      {"WAIT on a non-empty queue", op.Wait({"q"}), U8(kStopWaiting)},
      {"QUEUE_POP first", Bytes().U8(kV22QueuePop).Str("q"), Bytes().I64(2).Str("first")},
      {"QUEUE_POP second", Bytes().U8(kV22QueuePop).Str("q"), Bytes().I64(1).Str("second")},
      {"QUEUE_POP empty again", Bytes().U8(kV22QueuePop).Str("q"), I64(0)},
      {"GETNUMKEYS does not count queues", op.NumKeys(), I64(0)},
      {"SET b", op.Set("b", "1"), {}},
      {"SET a", op.Set("a", "2"), {}},
      {"LIST", Bytes().U8(kV22List), Bytes().I64(2).Str("a").Str("b")},
  };
  for (const Step& step : steps) {
    client->Send(step.request);
    ExpectReply(*client, step);
  }
  EXPECT_EQ(Hex(client->Unexpected()), Hex(""));
}
TEST(StoreServer, V113WatchKeyReportsCreateUpdateDelete) {
  runner::StoreServer server("127.0.0.1", 0);
  const Ops op{kV113};
  auto watcher = Client::Open(server.port(), kV113);
  auto writer = Client::Open(server.port(), kV113);
  watcher->Send(Bytes().U8(kV113WatchKey).Str("w"));
  EXPECT_EQ(watcher->ReadU8("KEY_CALLBACK_REGISTERED"), 3);
  auto expect_event = [&](uint8_t type, const std::string& old_value, const std::string& new_value,
                          const std::string& what) {
    EXPECT_EQ(watcher->ReadU8(what + " type"), type) << what;
    EXPECT_EQ(watcher->ReadStr(what + " key"), "w") << what;
    EXPECT_EQ(watcher->ReadStr(what + " old value"), old_value) << what;
    EXPECT_EQ(watcher->ReadStr(what + " new value"), new_value) << what;
  };
  writer->Send(op.Set("w", "1"));
  expect_event(1, "", "1", "KEY_CREATED");
  writer->Send(op.Add("w", 1));
  EXPECT_EQ(writer->ReadI64("ADD"), 2);
  expect_event(0, "1", "2", "KEY_UPDATED");
  writer->Send(op.Delete("w"));
  EXPECT_EQ(writer->ReadI64("DELETE_KEY"), 1);
  expect_event(2, "2", "", "KEY_DELETED");
  writer->Send(op.Set("unwatched", "x"));
  EXPECT_EQ(Hex(watcher->Unexpected()), Hex(""));
}

TEST(StoreServer, AddOfNonNumberCountsFromZeroAndWrapsOnOverflow) {
  LogSink sink;
  runner::StoreServer server("127.0.0.1", 0, sink.Fn());
  const Ops op{kV22};
  auto client = Client::Open(server.port(), kV22);
  client->Send(op.Set("text", "abc"));
  client->Send(op.Add("text", 3));
  EXPECT_EQ(client->ReadI64("ADD to a non-number"), 3);
  EXPECT_TRUE(sink.Contains("not a number")) << sink.All();
  client->Send(op.Add("big", std::numeric_limits<int64_t>::max()));
  EXPECT_EQ(client->ReadI64("ADD max"), std::numeric_limits<int64_t>::max());
  client->Send(op.Add("big", 1));
  EXPECT_EQ(client->ReadI64("ADD past max"), std::numeric_limits<int64_t>::min());
}

}  // namespace
}  // namespace store_test

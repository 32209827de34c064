// runner::StoreState, the store's state machine, without sockets: each operation's reply bytes,
// and which connections a change wakes. Connections are plain ids here.

#include "runner/store_state.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "runner/store_protocol.h"
#include "tests/store/store_test_util.h"

namespace runner {

std::string HexBytes(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    if (!out.empty()) out += ' ';
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out.empty() ? "(nothing)" : out;
}

void PrintTo(const StoreState::Reply& reply, std::ostream* os) {
  *os << "{to " << reply.to << ": " << HexBytes(reply.bytes) << "}";
}

}  // namespace runner

namespace {

using runner::ConnectionId;
using runner::StoreState;
using Replies = StoreState::Replies;
using Op = runner::store_protocol::Op;

constexpr ConnectionId kA = 3, kB = 4, kC = 5;

// Reply encoders (raw host-order integers, u64-length-prefixed strings), chainable.
using Wire = store_test::Bytes;
std::string U8(uint8_t v) { return Wire().U8(v).data; }
std::string I64(int64_t v) { return Wire().I64(v).data; }
std::string Str(const std::string& s) { return Wire().Str(s).data; }
std::string Event(uint8_t type, const std::string& key, const std::string& old_value,
                  const std::string& new_value) {
  return Wire().U8(type).Str(key).Str(old_value).Str(new_value).data;
}
const std::string kStop = U8(StoreState::kStopWaiting);

// One call on the state and the replies it must return.
struct Row {
  const char* what;
  std::function<Replies(StoreState&)> call;
  Replies expected;
};

void RunRows(StoreState& state, const std::vector<Row>& rows) {
  for (const Row& row : rows) EXPECT_EQ(row.call(state), row.expected) << row.what;
}

TEST(StoreState, EveryOperationFromOneConnection) {
  StoreState state;
  const std::string binary("\0\xff\x01", 3);
  RunRows(
      state,
      {
          {"SET a=1", [](StoreState& s) { return s.Set(kA, "a", "1"); }, {}},
          {"GET a", [](StoreState& s) { return s.Get(kA, "a"); }, {{kA, Str("1")}}},
          {"SET a=one", [](StoreState& s) { return s.Set(kA, "a", "one"); }, {}},
          {"GET a overwritten", [](StoreState& s) { return s.Get(kA, "a"); }, {{kA, Str("one")}}},
          {"SET binary", [&](StoreState& s) { return s.Set(kA, "bin", binary); }, {}},
          {"GET binary", [](StoreState& s) { return s.Get(kA, "bin"); }, {{kA, Str(binary)}}},
          {"GET missing", [](StoreState& s) { return s.Get(kA, "missing"); }, {{kA, Str("")}}},
          {"ADD c 5 (missing key)",
           [](StoreState& s) { return s.Add(kA, "c", 5); },
           {{kA, I64(5)}}},
          {"ADD c -7", [](StoreState& s) { return s.Add(kA, "c", -7); }, {{kA, I64(-2)}}},
          {"GET c (decimal)", [](StoreState& s) { return s.Get(kA, "c"); }, {{kA, Str("-2")}}},
          {"CHECK [a c]",
           [](StoreState& s) {
             return s.Check(kA, {"a", "c"});
           },
           {{kA, U8(StoreState::kReady)}}},
          {"CHECK [a missing]",
           [](StoreState& s) {
             return s.Check(kA, {"a", "missing"});
           },
           {{kA, U8(StoreState::kNotReady)}}},
          {"CHECK []",
           [](StoreState& s) { return s.Check(kA, {}); },
           {{kA, U8(StoreState::kReady)}}},
          {"WAIT [a c] existing",
           [](StoreState& s) {
             return s.Wait(kA, {"a", "c"});
           },
           {{kA, kStop}}},
          {"GETNUMKEYS", [](StoreState& s) { return s.NumKeys(kA); }, {{kA, I64(3)}}},
          {"APPEND a", [](StoreState& s) { return s.Append(kA, "a", "+x"); }, {}},
          {"GET appended", [](StoreState& s) { return s.Get(kA, "a"); }, {{kA, Str("one+x")}}},
          {"APPEND new key", [](StoreState& s) { return s.Append(kA, "ap", "z"); }, {}},
          {"GET new appended", [](StoreState& s) { return s.Get(kA, "ap"); }, {{kA, Str("z")}}},
          {"MULTI_SET",
           [](StoreState& s) {
             return s.MultiSet(kA, {{"m1", "v1"}, {"m2", "v2"}});
           },
           {}},
          {"MULTI_GET with a missing key",
           [](StoreState& s) {
             return s.MultiGet(kA, {"m1", "missing", "m2"});
           },
           {{kA, Wire().Str("v1").Str("").Str("v2").data}}},
          {"MULTI_GET []", [](StoreState& s) { return s.MultiGet(kA, {}); }, {}},
          {"DELETE_KEY m1", [](StoreState& s) { return s.DeleteKey(kA, "m1"); }, {{kA, I64(1)}}},
          {"DELETE_KEY m1 again",
           [](StoreState& s) { return s.DeleteKey(kA, "m1"); },
           {{kA, I64(0)}}},
          {"CHECK deleted",
           [](StoreState& s) { return s.Check(kA, {"m1"}); },
           {{kA, U8(StoreState::kNotReady)}}},
          {"GET deleted", [](StoreState& s) { return s.Get(kA, "m1"); }, {{kA, Str("")}}},
          {"PING",
           [](StoreState& s) { return s.Ping(kA, 0xA1B2C3D4); },
           {{kA, Wire().U32(0xA1B2C3D4).data}}},
          {"LIST (sorted)",
           [](StoreState& s) { return s.List(kA); },
           {{kA, Wire().I64(5).Str("a").Str("ap").Str("bin").Str("c").Str("m2").data}}},
          {"CANCEL_WAIT with none pending",
           [](StoreState& s) { return s.CancelWait(kA); },
           {{kA, U8(StoreState::kWaitCanceled)}}},
          {"WATCH_KEY",
           [](StoreState& s) { return s.WatchKey(kA, "w"); },
           {{kA, U8(StoreState::kCallbackRegistered)}}},
      });
  EXPECT_EQ(state.NumKeys(), 5u);
  EXPECT_TRUE(state.Waits().empty());
}

TEST(StoreState, Queues) {
  StoreState state;
  RunRows(
      state,
      {
          {"QUEUE_LEN missing", [](StoreState& s) { return s.QueueLen(kA, "q"); }, {{kA, I64(0)}}},
          {"QUEUE_POP empty", [](StoreState& s) { return s.QueuePop(kA, "q"); }, {{kA, I64(0)}}},
          {"CHECK empty queue",
           [](StoreState& s) { return s.Check(kA, {"q"}); },
           {{kA, U8(StoreState::kNotReady)}}},
          {"QUEUE_PUSH first", [](StoreState& s) { return s.QueuePush(kA, "q", "first"); }, {}},
          {"QUEUE_PUSH second", [](StoreState& s) { return s.QueuePush(kA, "q", "second"); }, {}},
          {"QUEUE_LEN 2", [](StoreState& s) { return s.QueueLen(kA, "q"); }, {{kA, I64(2)}}},
          {"CHECK non-empty queue",
           [](StoreState& s) { return s.Check(kA, {"q"}); },
           {{kA, U8(StoreState::kReady)}}},
          {"WAIT non-empty queue", [](StoreState& s) { return s.Wait(kA, {"q"}); }, {{kA, kStop}}},
          {"QUEUE_POP first",
           [](StoreState& s) { return s.QueuePop(kA, "q"); },
           {{kA, Wire().I64(2).Str("first").data}}},
          {"QUEUE_POP second",
           [](StoreState& s) { return s.QueuePop(kA, "q"); },
           {{kA, Wire().I64(1).Str("second").data}}},
          {"QUEUE_POP empty again",
           [](StoreState& s) { return s.QueuePop(kA, "q"); },
           {{kA, I64(0)}}},
          {"GETNUMKEYS without queues",
           [](StoreState& s) { return s.NumKeys(kA); },
           {{kA, I64(0)}}},
          {"LIST without queues", [](StoreState& s) { return s.List(kA); }, {{kA, I64(0)}}},
      });
}

TEST(StoreState, CompareSetFollowsC10dRules) {
  struct Case {
    const char* what;
    const char* initial;  // nullptr: the key is missing
    std::string expected, desired;
    std::string reply;
    const char* after;  // nullptr: still missing
  };
  const std::vector<Case> cases = {
      {"missing key, expected empty: created", nullptr, "", "new", "new", "new"},
      {"missing key, expected non-empty: left missing", nullptr, "x", "y", "x", nullptr},
      {"present key, expected matches", "old", "old", "new", "new", "new"},
      {"present key, expected differs", "old", "other", "new", "old", "old"},
      {"present key, expected empty differs", "old", "", "new", "old", "old"},
      {"present empty value, expected empty", "", "", "new", "new", "new"},
  };
  for (const Case& c : cases) {
    StoreState state;
    if (c.initial) {
      EXPECT_TRUE(state.Set(kA, "k", c.initial).empty()) << c.what;
    }
    EXPECT_EQ(state.CompareSet(kA, "k", c.expected, c.desired), Replies({{kA, Str(c.reply)}}))
        << c.what;
    const uint8_t exists = c.after ? StoreState::kReady : StoreState::kNotReady;
    EXPECT_EQ(state.Check(kA, {"k"}), Replies({{kA, U8(exists)}})) << c.what;
    if (c.after) {
      EXPECT_EQ(state.Get(kA, "k"), Replies({{kA, Str(c.after)}})) << c.what;
    }
  }
}

TEST(StoreState, AddCountsFromZeroForMissingOrNonNumberAndWraps) {
  std::vector<std::string> log;
  StoreState state([&](const std::string& line) { log.push_back(line); });
  EXPECT_EQ(state.Add(kA, "missing", 7), Replies({{kA, I64(7)}}));
  EXPECT_EQ(state.Get(kA, "missing"), Replies({{kA, Str("7")}}));
  EXPECT_TRUE(log.empty());
  EXPECT_TRUE(state.Set(kA, "text", "abc").empty());
  EXPECT_EQ(state.Add(kA, "text", 3), Replies({{kA, I64(3)}}));
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0], "store: ADD to key 'text' whose value is not a number; treated as 0");
  const int64_t max = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(state.Add(kA, "big", max), Replies({{kA, I64(max)}}));
  EXPECT_EQ(state.Add(kA, "big", 1), Replies({{kA, I64(std::numeric_limits<int64_t>::min())}}));
}

TEST(StoreState, WaitOnSeveralKeysCompletesWhenTheLastMissingOneAppears) {
  StoreState state;
  EXPECT_TRUE(state.Set(kB, "k1", "1").empty());
  EXPECT_TRUE(state.Wait(kA, {"k1", "k2", "k3"}).empty());
  EXPECT_EQ(state.Waits(), (std::map<ConnectionId, std::set<std::string>>{{kA, {"k2", "k3"}}}));
  EXPECT_TRUE(state.Set(kB, "k2", "2").empty()) << "woken with k3 still missing";
  EXPECT_TRUE(state.Set(kB, "k2", "2 again").empty()) << "a key already counted woke it";
  EXPECT_EQ(state.Waits(), (std::map<ConnectionId, std::set<std::string>>{{kA, {"k3"}}}));
  EXPECT_EQ(state.Set(kB, "k3", "3"), Replies({{kA, kStop}}));
  EXPECT_TRUE(state.Waits().empty());
  EXPECT_TRUE(state.Set(kB, "k3", "again").empty()) << "a finished wait woke twice";
}

TEST(StoreState, EveryWritingOperationEndsAWait) {
  const std::vector<Row> rows = {
      {"SET", [](StoreState& s) { return s.Set(kB, "k", "v"); }, {{kA, kStop}}},
      {"ADD", [](StoreState& s) { return s.Add(kB, "k", 1); }, {{kA, kStop}, {kB, I64(1)}}},
      {"COMPARE_SET",
       [](StoreState& s) { return s.CompareSet(kB, "k", "", "v"); },
       {{kA, kStop}, {kB, Str("v")}}},
      {"APPEND", [](StoreState& s) { return s.Append(kB, "k", "v"); }, {{kA, kStop}}},
      {"MULTI_SET",
       [](StoreState& s) {
         return s.MultiSet(kB, {{"other", "1"}, {"k", "v"}});
       },
       {{kA, kStop}}},
      {"QUEUE_PUSH", [](StoreState& s) { return s.QueuePush(kB, "k", "v"); }, {{kA, kStop}}},
  };
  for (const Row& row : rows) {
    StoreState state;
    EXPECT_TRUE(state.Wait(kA, {"k"}).empty()) << row.what;
    EXPECT_EQ(row.call(state), row.expected) << row.what;
    EXPECT_TRUE(state.Waits().empty()) << row.what;
  }
}

TEST(StoreState, QueuePushWakesOnlyTheOldestWaiterItCompletes) {
  StoreState state;
  EXPECT_TRUE(state.Wait(kA, {"jobs", "other"}).empty());  // oldest, but also misses "other"
  EXPECT_TRUE(state.Wait(kB, {"jobs"}).empty());
  EXPECT_TRUE(state.Wait(kC, {"jobs"}).empty());
  EXPECT_EQ(state.QueuePush(kA + 10, "jobs", "1"), Replies({{kB, kStop}}));
  EXPECT_EQ(state.Waits(),
            (std::map<ConnectionId, std::set<std::string>>{{kA, {"other"}}, {kC, {"jobs"}}}));
  EXPECT_EQ(state.QueuePop(kB, "jobs"), Replies({{kB, Wire().I64(1).Str("1").data}}));
  EXPECT_EQ(state.QueuePush(kA + 10, "jobs", "2"), Replies({{kC, kStop}}));
  EXPECT_EQ(state.Set(kA + 10, "other", "x"), Replies({{kA, kStop}}));
}

TEST(StoreState, CancelWaitEndsThePendingWait) {
  StoreState state;
  EXPECT_TRUE(state.Wait(kA, {"never"}).empty());
  EXPECT_EQ(state.CancelWait(kA), Replies({{kA, U8(StoreState::kWaitCanceled)}}));
  EXPECT_TRUE(state.Waits().empty());
  EXPECT_TRUE(state.Set(kB, "never", "now").empty()) << "a cancelled wait was woken";
}

TEST(StoreState, StaleWaitDroppedWithoutReplyIsNeverWoken) {
  // A 1.13 client gave up its WAIT on a socket timeout and moved on; the connection layer drops it.
  StoreState state;
  EXPECT_TRUE(state.Wait(kA, {"missing", "also"}).empty());
  EXPECT_TRUE(state.Wait(kB, {"missing"}).empty());
  state.DropWait(kA);
  state.DropWait(kC);  // no wait pending: nothing happens
  EXPECT_EQ(state.Waits(), (std::map<ConnectionId, std::set<std::string>>{{kB, {"missing"}}}));
  EXPECT_EQ(state.Set(kC, "missing", "late"), Replies({{kB, kStop}}));
  EXPECT_TRUE(state.Set(kC, "also", "late").empty());
  EXPECT_EQ(state.Get(kA, "missing"), Replies({{kA, Str("late")}}));
}

TEST(StoreState, ANewWaitReplacesThePendingOne) {
  StoreState state;
  EXPECT_TRUE(state.Wait(kA, {"first"}).empty());
  EXPECT_TRUE(state.Wait(kA, {"second"}).empty());
  EXPECT_TRUE(state.Set(kB, "first", "1").empty()) << "the replaced wait was woken";
  EXPECT_EQ(state.Set(kB, "second", "2"), Replies({{kA, kStop}}));
}

TEST(StoreState, WatchKeyReportsCreateUpdateDeleteToWatchersOnly) {
  StoreState state;
  EXPECT_EQ(state.WatchKey(kA, "w"), Replies({{kA, U8(StoreState::kCallbackRegistered)}}));
  EXPECT_EQ(state.Set(kB, "w", "1"), Replies({{kA, Event(StoreState::kKeyCreated, "w", "", "1")}}));
  EXPECT_EQ(state.Add(kB, "w", 1),
            Replies({{kA, Event(StoreState::kKeyUpdated, "w", "1", "2")}, {kB, I64(2)}}));
  EXPECT_EQ(state.DeleteKey(kB, "w"),
            Replies({{kA, Event(StoreState::kKeyDeleted, "w", "2", "")}, {kB, I64(1)}}));
  EXPECT_TRUE(state.Set(kB, "unwatched", "x").empty());
  // A watcher's own change reaches it before its reply.
  EXPECT_EQ(state.CompareSet(kA, "w", "", "mine"),
            Replies({{kA, Event(StoreState::kKeyCreated, "w", "", "mine")}, {kA, Str("mine")}}));
}

TEST(StoreState, DisconnectForgetsWaitsAndWatches) {
  StoreState state;
  EXPECT_EQ(state.WatchKey(kA, "w").size(), 1u);
  EXPECT_EQ(state.WatchKey(kA, "w2").size(), 1u);
  EXPECT_EQ(state.WatchKey(kB, "w2").size(), 1u);
  EXPECT_TRUE(state.Wait(kA, {"k"}).empty());
  EXPECT_TRUE(state.Wait(kB, {"k"}).empty());
  state.Disconnect(kA);
  EXPECT_EQ(state.Set(kC, "k", "v"), Replies({{kB, kStop}}));
  EXPECT_TRUE(state.Set(kC, "w", "v").empty()) << "a closed connection still watches";
  EXPECT_EQ(state.Set(kC, "w2", "v"),
            Replies({{kB, Event(StoreState::kKeyCreated, "w2", "", "v")}}))
      << "only the other watcher of the key is told";
  state.Disconnect(kB);
  EXPECT_TRUE(state.Set(kC, "w2", "again").empty());
}

TEST(StoreState, ApplyCallsTheMethodOfEachOperation) {
  using runner::store_protocol::Request;
  auto request = [](Op op, std::string key = "", std::string value = "") {
    Request r;
    r.op = op;
    r.key = std::move(key);
    r.value = std::move(value);
    return r;
  };
  Request compare_set = request(Op::kCompareSet, "k", "v");
  compare_set.desired = "w";
  Request add = request(Op::kAdd, "n");
  add.delta = 4;
  Request multi_set = request(Op::kMultiSet);
  multi_set.items = {{"m", "1"}};
  Request keys = request(Op::kMultiGet);
  keys.keys = {"k", "m"};
  Request ping = request(Op::kPing);
  ping.number = 9;
  Request check = keys, wait = keys;
  check.op = Op::kCheck;
  wait.op = Op::kWait;
  const std::vector<std::pair<Request, std::string>> rows = {
      {request(Op::kSet, "k", "v"), ""},
      {request(Op::kGet, "k"), Str("v")},
      {compare_set, Str("w")},
      {add, I64(4)},
      {multi_set, ""},
      {keys, Wire().Str("w").Str("1").data},
      {check, U8(StoreState::kReady)},
      {wait, kStop},
      {request(Op::kCancelWait), U8(StoreState::kWaitCanceled)},
      {request(Op::kNumKeys), I64(3)},
      {request(Op::kAppend, "k", "+"), ""},
      {request(Op::kWatchKey, "k"), U8(StoreState::kCallbackRegistered)},
      {request(Op::kDeleteKey, "m"), I64(1)},
      {ping, Wire().U32(9).data},
      {request(Op::kQueuePush, "q", "i"), ""},
      {request(Op::kQueueLen, "q"), I64(1)},
      {request(Op::kQueuePop, "q"), Wire().I64(1).Str("i").data},
      {request(Op::kList), Wire().I64(2).Str("k").Str("n").data},
      {request(Op::kValidate), ""},
      {request(Op::kUnknown), ""},
  };
  StoreState state;
  for (size_t i = 0; i < rows.size(); ++i) {
    Replies expected;
    if (!rows[i].second.empty()) expected.push_back({kA, rows[i].second});
    EXPECT_EQ(state.Apply(kA, rows[i].first), expected) << "row " << i;
  }
}

}  // namespace

// The store control plane's collectives and notices (runner/control_plane_store.h) with agents
// as threads over a real StoreServer on loopback: gather, scatter, broadcast and the max agree on
// every agent while moving O(agents) through the store, notices of any size reach every other
// agent, the done barrier, late notices.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "runner/control_plane.h"
#include "tests/unit/store_plane_job.h"

namespace runner {
namespace {

using namespace std::chrono_literals;
using testing_support::Job;

TEST(StoreControlPlaneTest, CollectivesGiveEveryAgentTheSameAnswers) {
  Job job;
  const auto results = job.Run<std::string>(3, [](ControlPlane& c) {
    std::string out = c.Scatter(c.rank() == 0 ? std::vector<std::string>{"a0", "a1", "a2"}
                                              : std::vector<std::string>{"ignored"}) +
                      ",";
    out += c.Broadcast(c.rank() == 0 ? "root says hi" : "ignored") + ",";
    out += std::to_string(c.AllReduceMax(10 * c.rank())) + ",";
    const std::vector<std::string> gathered = c.Gather(std::string(c.rank() * 5000, 'x'));
    out += std::to_string(gathered.size());
    if (c.rank() == 0) out += ":" + std::to_string(gathered[2].size());
    return out;
  });
  EXPECT_EQ(results[0], "a0,root says hi,20,3:10000");
  EXPECT_EQ(results[1], "a1,root says hi,20,0");
  EXPECT_EQ(results[2], "a2,root says hi,20,0");
}

// What the collectives move through node 0's store is O(agents): node 0 reads every agent's value
// in a gather, each agent reads only its own item of a scatter, and AllReduceMax is a gather and
// a broadcast. With 32 agents and 1 KiB values, an allgather would answer 32 x 32 KiB.
TEST(StoreControlPlaneTest, NoAgentReadsEveryAgentsValue) {
  constexpr int kAgents = 32;
  Job job;
  std::atomic<uint64_t> before{0};
  const auto results = job.Run<std::string>(kAgents, [&](ControlPlane& c) {
    (void)c.AllReduceMax(0);  // everyone has joined
    if (c.rank() == 0) before = job.store->Stats().reply_bytes;
    (void)c.AllReduceMax(0);
    const std::vector<std::string> got = c.Gather(std::string(1024, char('a' + c.rank() % 26)));
    std::vector<std::string> items;
    for (const std::string& value : got)
      items.push_back(value + "/" + std::to_string(items.size()));
    const std::string mine = c.Scatter(items);
    const int agreed = c.AllReduceMax(c.rank());
    return mine.substr(1020) + " " + std::to_string(agreed);
  });
  const uint64_t moved = job.store->Stats().reply_bytes - before;
  for (int r = 0; r < kAgents; ++r) {
    EXPECT_EQ(results[static_cast<size_t>(r)], std::string(4, char('a' + r % 26)) + "/" +
                                                   std::to_string(r) + " " +
                                                   std::to_string(kAgents - 1));
  }
  // Gather and scatter: 2 x 32 KiB, plus the liveness rounds meanwhile.
  EXPECT_LT(moved, 200u * 1024u) << "the collectives moved " << moved << " B through the store";
}

// Each agent sends a notice (one of 20 KiB), sees the others' and never its own; the barrier
// completes once all are done; a notice sent just before the barrier is returned by EndAttempt
// when it was not polled in time.
// Enters the done barrier and collects every notice until it completes (5 s at most), the late
// ones included; each cut to `keep` characters. Returns them sorted, ';'-terminated.
std::string CollectUntilDone(ControlPlane& c, std::multiset<std::string>& got,
                             size_t keep = std::string::npos) {
  c.EnterDone();
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!c.PollDone() && std::chrono::steady_clock::now() < deadline) {
    while (std::optional<std::string> n = c.PollNotice()) got.insert(n->substr(0, keep));
    std::this_thread::sleep_for(5ms);
  }
  for (const std::string& n : c.EndAttempt()) got.insert(n.substr(0, keep));
  std::string out;
  for (const std::string& n : got) out += n + ";";
  return out;
}

TEST(StoreControlPlaneTest, NoticesOfAnySizeReachEveryOtherAgentAndLateOnesAreCollected) {
  Job job;
  const auto results = job.Run<std::string>(3, [](ControlPlane& c) {
    std::multiset<std::string> got;
    std::string out;
    for (int attempt = 0; attempt < 2; ++attempt) {
      c.BeginAttempt(attempt);
      const std::string mine = "from " + std::to_string(c.rank()) + " attempt " +
                               std::to_string(attempt) +
                               (c.rank() == 1 ? std::string(20000, '.') : "");
      c.Notify(mine);
      (void)c.AllReduceMax(0);  // everyone has sent
      out = CollectUntilDone(c, got, 16);
    }
    return out;
  });
  EXPECT_EQ(results[0], "from 1 attempt 0;from 1 attempt 1;from 2 attempt 0;from 2 attempt 1;");
  EXPECT_EQ(results[1], "from 0 attempt 0;from 0 attempt 1;from 2 attempt 0;from 2 attempt 1;");
  EXPECT_EQ(results[2], "from 0 attempt 0;from 0 attempt 1;from 1 attempt 0;from 1 attempt 1;");
}

// Notices to agent 0 alone reach only it; what it forwards from agent 1 reaches every agent but
// 1 and itself.
TEST(StoreControlPlaneTest, NoticesToAgentZeroAndItsForwardsReachOnlyTheirAgents) {
  Job job;
  const auto results = job.Run<std::string>(3, [](ControlPlane& c) {
    c.BeginAttempt(0);
    c.NotifyFirst("to 0 from " + std::to_string(c.rank()));  // nothing from agent 0 itself
    (void)c.AllReduceMax(0);
    std::multiset<std::string> got;
    if (c.rank() == 0) {
      const auto deadline = std::chrono::steady_clock::now() + 5s;
      while (got.size() < 2 && std::chrono::steady_clock::now() < deadline) {
        while (std::optional<std::string> n = c.PollNotice()) got.insert(*n);
        std::this_thread::sleep_for(5ms);
      }
      c.Forward("forwarded from 1", 1);
    }
    (void)c.AllReduceMax(0);
    return CollectUntilDone(c, got);
  });
  EXPECT_EQ(results[0], "to 0 from 1;to 0 from 2;");
  EXPECT_EQ(results[1], "");
  EXPECT_EQ(results[2], "forwarded from 1;");
}

TEST(StoreControlPlaneTest, TheDoneBarrierWaitsForTheLastAgent) {
  Job job;
  const auto results = job.Run<int>(2, [](ControlPlane& c) {
    c.BeginAttempt(0);
    if (c.rank() == 1) std::this_thread::sleep_for(300ms);
    c.EnterDone();
    int polls_before = 0;
    while (!c.PollDone()) {
      ++polls_before;
      std::this_thread::sleep_for(10ms);
    }
    (void)c.EndAttempt();
    return polls_before;
  });
  EXPECT_GT(results[0], 5);  // node 0 waited for node 1
}

// An abort record from another agent ends every other agent with that agent's code and reason.

}  // namespace
}  // namespace runner

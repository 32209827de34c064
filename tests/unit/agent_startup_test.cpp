// Small parts of the agent's start: where its start-up time went (runner/startup_record.h) and
// the heartbeat directories of agents that are gone (runner/watchdog_setup.h).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "runner/startup_record.h"
#include "runner/store_client.h"
#include "runner/store_server.h"
#include "runner/watchdog_setup.h"
#include "tests/unit/temp_dir.h"

namespace runner {
namespace {

TEST(StartupRecord, StepsAddUpInWallAndCpuSecondsWithWhatEachMoved) {
  StartupRecord record({100.0, 2.0});
  record.Mark("control plane", {100.25, 2.125});
  record.Mark("rendezvous", {100.75, 2.25},
              StartupRecord::Moved("allgather", {std::string(100, 'a'), std::string(20000, 'b')}) +
                  "; broadcast 90 B");
  record.Mark("job files", {101.0, 2.5}, StartupRecord::Moved("gather", {}));
  EXPECT_EQ(record.Line(),
            "start-up 1.000 s (cpu 0.500 s): control plane 0.250 s (cpu 0.125 s), rendezvous "
            "0.500 s (cpu 0.125 s; allgather 2 records, 20 KiB; broadcast 90 B), job files "
            "0.250 s (cpu 0.250 s; gather 0 records, 0 B)");
  EXPECT_EQ(record.Json(),
            R"({"total_s":1,"cpu_s":0.5,"steps":[{"step":"control plane","s":0.25,"cpu_s":0.125},)"
            R"({"step":"rendezvous","s":0.5,"cpu_s":0.125,)"
            R"("moved":"allgather 2 records, 20 KiB; broadcast 90 B"},)"
            R"({"step":"job files","s":0.25,"cpu_s":0.25,"moved":"gather 0 records, 0 B"}]})");
  EXPECT_EQ(StartupRecord({5.0, 1.0}).Line("attempt end"), "attempt end 0.000 s (cpu 0.000 s):");
}

// Node 0's steps also count what its store answered: from 0 in the step the store came up in.
TEST(StartupRecord, StepsOnNode0CountTheirStoreReplies) {
  StartupRecord record({0.0, 0.0});
  record.Mark("control plane", {1.0, 0.5});
  record.Mark("rendezvous", {2.0, 1.0, true, 10, 2048});
  record.Mark("job files", {3.0, 1.5, true, 11, 20480}, "gather 2 records, 10 B");
  EXPECT_EQ(record.Line(),
            "start-up 3.000 s (cpu 1.500 s): control plane 1.000 s (cpu 0.500 s), rendezvous "
            "1.000 s (cpu 0.500 s; store 10 replies, 2048 B), job files 1.000 s (cpu 0.500 s; "
            "gather 2 records, 10 B; store 1 reply, 18 KiB)");
  EXPECT_NE(record.Json().find(R"("step":"rendezvous","s":1,"cpu_s":0.5,"store_replies":10,)"
                               R"("store_bytes":2048})"),
            std::string::npos)
      << record.Json();

  StoreServer store("127.0.0.1", 0);
  const StepClock before = StepClock::Now(&store);
  StoreClient client("127.0.0.1", store.port(), 5, 5, "the test's store");
  client.Set("k", "value");
  EXPECT_EQ(client.Get("k"), "value");
  const StepClock after = StepClock::Now(&store);
  EXPECT_TRUE(after.store);
  EXPECT_GE(after.store_replies - before.store_replies, 1u);  // the GET's (and a handshake's)
  EXPECT_GE(after.store_reply_bytes - before.store_reply_bytes, 5u);
  EXPECT_FALSE(StepClock::Now().store);
}

// The process clock counts this process's CPU, every thread's: a thread that spins moves it,
// one that sleeps does not move it by as much as the wall clock.
TEST(StepClock, CountsTheCpuOfEveryThreadOfTheProcess) {
  const StepClock before = StepClock::Now();
  std::thread([] {
    const StepClock start = StepClock::Now();
    volatile double sink = 0;
    while (StepClock::Now().cpu - start.cpu < 0.05) sink = sink + 1;
  }).join();
  const StepClock after = StepClock::Now();
  EXPECT_GE(after.cpu - before.cpu, 0.05);
  EXPECT_GE(after.wall, before.wall);
  StartupRecord record(before);
  record.Mark("spin", after);
  EXPECT_NE(record.Json().find(R"("cpu_s":)"), std::string::npos);
}

}  // namespace
}  // namespace runner

namespace runner {
namespace {

using testing_support::TempDir;

TEST(HeartbeatDirs, ThoseOfAgentsThatAreGoneFromThisPidNamespaceAreRemoved) {
  const TempDir base;
  const pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);  // a pid that no longer exists
  const uint64_t ns = 4026531836;
  const std::string gone = std::to_string(child);
  const std::string dead = base.path() + "/runner-j-0-1-" + gone + "-ns" + std::to_string(ns);
  const std::string alive =
      base.path() + "/runner-j-0-0-" + std::to_string(getpid()) + "-ns" + std::to_string(ns);
  // Another container's (its pids are not ours to judge), one without a namespace, others.
  const std::string elsewhere =
      base.path() + "/runner-j-0-2-" + gone + "-ns" + std::to_string(ns + 1);
  const std::string untagged = base.path() + "/runner-j-0-3-" + gone;
  const std::string other = base.path() + "/runner-notes-x";
  const std::string foreign = base.path() + "/other-" + gone + "-ns" + std::to_string(ns);
  for (const std::string& dir : {dead, alive, elsewhere, untagged, other, foreign}) {
    std::filesystem::create_directory(dir);
    std::ofstream(dir + "/rank-0") << "record";
  }
  EXPECT_EQ(RemoveStaleHeartbeatDirs(base.path(), ns), 1);
  EXPECT_FALSE(std::filesystem::exists(dead));
  for (const std::string& dir : {alive, elsewhere, untagged, other, foreign})
    EXPECT_TRUE(std::filesystem::exists(dir)) << dir;
  EXPECT_EQ(RemoveStaleHeartbeatDirs(base.path() + "/missing", ns), 0);
}

}  // namespace
}  // namespace runner

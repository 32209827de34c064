// The shared-memory segment names (common/shm_name.h), the sweep of the names that killed agents
// left, and the agent's removal of its attempt's name (runner/attempt_shm.h).

#include "common/shm_name.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "runner/attempt_shm.h"
#include "temp_dir.h"

namespace common {
namespace {

const std::string kToken = "0123456789abcdef0123456789abcdef";

TEST(ShmSegmentName, DiffersPerJobAttemptAndNodeAndHidesTheToken) {
  const std::string a = ShmSegmentName(kToken, "job-1", 0, 0);
  EXPECT_EQ(a, ShmSegmentName(kToken, "job-1", 0, 0));
  EXPECT_NE(a, ShmSegmentName(kToken, "job-1", 1, 0));
  EXPECT_NE(a, ShmSegmentName(kToken, "job-1", 0, 1));
  EXPECT_NE(a, ShmSegmentName(kToken, "job-2", 0, 0));
  EXPECT_NE(a, ShmSegmentName("fedcba9876543210fedcba9876543210", "job-1", 0, 0));
  EXPECT_EQ(a.find(kToken), std::string::npos);
  EXPECT_EQ(a.rfind("/runner-", 0), 0u) << a;
  EXPECT_EQ(a.find('/', 1), std::string::npos) << a;
  // The hash is what it always was: names of running jobs must not change with an upgrade.
  EXPECT_EQ(ShmSegmentName("t", "r", 2, 3), "/runner-96326f5173cf594d-a2-n3");
  EXPECT_EQ(ShmSegmentName("t", "r", 2, 3, 4711, 4026531836),
            "/runner-96326f5173cf594d-a2-n3-p4711-ns4026531836");
  EXPECT_EQ(ShmSegmentName("t", "r", 2, 3, 4711, 0), "/runner-96326f5173cf594d-a2-n3");
}

TEST(ShmSegmentName, TheContractNamesItAsTheTrainerAndTheAgentAgree) {
  WorkerContract c;
  c.token = kToken;
  c.run_id = "77";
  c.master_addr = "10.0.0.1";
  c.master_port = 4000;
  c.restart_count = 1;
  c.node_rank = 2;
  c.node_agent_pid = 1234;
  ASSERT_NE(PidNamespace(), 0u);
  EXPECT_EQ(ShmSegmentName(c),
            ShmSegmentName(kToken, "77@10.0.0.1:4000", 1, 2, 1234, PidNamespace()));
  EXPECT_LE(ShmSegmentName(kToken, "x", 1 << 20, 1 << 20, 1 << 30, ~0ULL >> 1).size(), 80u);
}

TEST(ShmSegmentName, TheOwnerIsReadBack) {
  struct Row {
    std::string name;
    int pid;
    uint64_t pid_namespace;
  };
  const Row rows[] = {
      {"/runner-0123456789abcdef-a0-n0-p42-ns7", 42, 7},
      {"runner-0123456789abcdef-a12-n3-p123456-ns4026531836", 123456, 4026531836},
      {"runner-0123456789abcdef-a0-n0", 0, 0},                             // not under the runner
      {"runner-0123456789abcdef-a0-n0-p42", 0, 0},                         // no namespace
      {"runner-0123456789abcdef-a0-n0-p0-ns7", 0, 0},                      // no pid
      {"runner-0123456789abcdef-a0-n0-p42-ns7x", 0, 0},                    // not ours
      {"runner-0123456789ABCDEF-a0-n0-p42-ns7", 0, 0},                     // not ours
      {"runner-77-0-0-42", 0, 0},                                          // a heartbeat directory
      {"runner-test-1-2-n0", 0, 0},                                        // a test's
      {"runner-0123456789abcdef-a0-n0-p42-ns7/x", 0, 0},                   // not a name
      {"runner-0123456789abcdef-a0-n0-p42-ns99999999999999999999", 0, 0},  // too long
  };
  for (const Row& row : rows) {
    const ShmSegmentOwner owner = ShmSegmentOwnerOf(row.name);
    EXPECT_EQ(owner.pid, row.pid) << row.name;
    EXPECT_EQ(owner.pid_namespace, row.pid_namespace) << row.name;
  }
}

int DeadPid() {
  const pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);
  return static_cast<int>(child);
}

std::set<std::string> Names(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    names.insert(entry.path().filename().string());
  return names;
}

TEST(ShmSegmentName, TheSweepRemovesOnlyTheNamesOfAgentsThatAreGone) {
  testing_support::TempDir dir;
  const std::string ns = "-ns" + std::to_string(PidNamespace());
  const std::string dead = std::to_string(DeadPid());
  const std::string live = std::to_string(getpid());
  const std::string stale = "runner-0123456789abcdef-a0-n0-p" + dead + ns;
  const std::string alive = "runner-fedcba9876543210-a1-n0-p" + live + ns;
  const std::string unowned = "runner-0123456789abcdef-a1-n0";
  // Another pid namespace (a container sharing /dev/shm): its pids cannot be checked from here.
  const std::string elsewhere =
      "runner-0123456789abcdef-a3-n0-p" + dead + "-ns" + std::to_string(PidNamespace() + 1);
  const std::string heartbeat = "runner-77-0-0-" + dead;
  for (const std::string& name : {stale, alive, unowned, elsewhere}) dir.Write(name, "");
  ASSERT_EQ(mkdir((dir.path() + "/" + heartbeat).c_str(), 0700), 0);
  const std::string folder = "runner-0123456789abcdef-a2-n0-p" + dead + ns;  // not a segment
  ASSERT_EQ(mkdir((dir.path() + "/" + folder).c_str(), 0700), 0);
  EXPECT_EQ(RemoveStaleShmSegments(dir.path()), 1);
  EXPECT_EQ(Names(dir.path()),
            (std::set<std::string>{alive, unowned, elsewhere, heartbeat, folder}));
  EXPECT_EQ(RemoveStaleShmSegments(dir.path() + "/missing"), 0);
}

TEST(AttemptShmSegment, TheAttemptsNameGoesWhenItEndsAndStaleOnesWhenItStarts) {
  testing_support::TempDir dir;
  runner::WorkerLaunch launch;
  launch.contract.token = kToken;
  launch.contract.run_id = "77";
  launch.contract.master_addr = "127.0.0.1";
  launch.contract.master_port = 4000;
  launch.contract.node_agent_pid = static_cast<int>(getpid());
  const std::string mine = ShmSegmentName(launch.contract).substr(1);
  const std::string stale = "runner-0123456789abcdef-a0-n0-p" + std::to_string(DeadPid()) + "-ns" +
                            std::to_string(PidNamespace());
  dir.Write(stale, "");
  {
    const runner::AttemptShmSegment segment({launch}, dir.path());
    EXPECT_EQ(segment.path(), dir.path() + "/" + mine);
    EXPECT_EQ(Names(dir.path()), std::set<std::string>{});
    dir.Write(mine, "");  // local rank 0 made it; a rank was killed before all had opened it
  }
  EXPECT_EQ(Names(dir.path()), std::set<std::string>{});
  const runner::AttemptShmSegment none({}, dir.path());  // no workers here: nothing to remove
  EXPECT_EQ(none.path(), "");
}

}  // namespace
}  // namespace common

// The supervision policy (runner/supervision_policy.h) driven through scripted event sequences on
// invented time, one or several agents (tests/unit/supervision_sim.h). Each row lists what must
// appear in the trace, in order ("!text": must appear nowhere). A failing row prints its trace.

#include "runner/supervision_policy.h"

#include <gtest/gtest.h>

#include <csignal>
#include <string>
#include <vector>

#include "tests/unit/supervision_sim.h"

namespace runner {
namespace {

using testing_support::SimOptions;
using testing_support::Simulate;

struct PolicyCase {
  const char* name;
  SimOptions options;
  std::vector<std::string> script;
  std::vector<std::string> expect;
};

void PrintTo(const PolicyCase& c, std::ostream* out) { *out << c.name; }

const SimOptions kOne{};
const SimOptions kTwoAgents{2, 2, 0.002, 15, 60};
const SimOptions kTwoAgentsSlowNotices{2, 2, 0.05, 15, 60};
const SimOptions kProbed{1, 2, 0.002, 15, 60, true};

const std::vector<PolicyCase> kCases = {
    {"a hang verdict stops with 13: SIGTERM and SIGCONT, SIGKILL after 5 s",
     kOne,
     {"ignore-term a0 w1", "1.000 a0 hang"},
     {"1.000 a0 log stopping this node's workers: the job is hung: HANG at step 7 (SIGTERM now, "
      "SIGKILL after 5 s)",
      "1.000 a0 SIGTERM w1", "1.000 a0 SIGCONT w1", "6.000 a0 SIGKILL w1",
      "a0 outcome 13: the job is hung: HANG at step 7", "!notify"}},
    {"a worker failing after a hang verdict is part of that stop",
     kOne,
     {"term-exit a0 w0 1", "1.000 a0 hang"},
     {"a0 log worker rank 0 exited with code 1 (while stopping)", "a0 outcome 13"}},
    {"all workers succeed",
     kOne,
     {"1.000 a0 exit w0 0", "1.000 a0 exit w1 0"},
     {"1.000 a0 done", "a0 outcome 0: all workers of this node exited with code 0",
      "job 0 no failure", "!SIGTERM", "!notify"}},
    {"a non-zero exit is the root cause",
     kOne,
     {"2.000 a0 exit w1 3"},
     {"2.000 a0 notify worker rank 1 on a0 exited with code 3", "2.000 a0 SIGTERM w0",
      "a0 outcome 20 failure rank 1 time 2.000 exit 3: worker rank 1 exited with code 3",
      "job 20 first rank 1 on a0"}},
    {"a crash is a signalled worker (21)",
     kOne,
     {"2.000 a0 killed w0 SEGV"},
     {"2.000 a0 SIGTERM w1",
      "a0 outcome 21 failure rank 0 time 2.000 SIGSEGV: worker rank 0 killed by signal 11"}},
    {"two failures 10 ms apart on different agents: both root causes, the first wins",
     kTwoAgentsSlowNotices,
     {"1.000 a0 exit w0 1", "1.010 a1 exit w0 2"},
     {"1.000 a0 notify worker rank 0 on a0", "1.010 a1 notify worker rank 2 on a1",
      "a0 outcome 20 failure rank 0 time 1.000", "a1 outcome 20 failure rank 2 time 1.010",
      "job 20 first rank 0 on a0"}},
    {"a failure after the other agent's notice is part of the stop",
     kTwoAgents,
     {"1.000 a0 exit w0 1", "1.010 a1 exit w0 2"},
     {"1.002 a1 SIGTERM w0", "a1 log worker rank 2 exited with code 2 (while stopping)",
      "a1 outcome 12: stopped because worker rank 0 on a0 exited with code 1",
      "job 20 first rank 0 on a0", "!a1 notify"}},
    {"an exit-5 echo followed by the real failure",
     kOne,
     {"1.000 a0 exit w1 5", "1.300 a0 exit w0 1"},
     {"1.000 a0 log worker rank 1 exited with code 5 (a communication error): waiting 1000 ms",
      "1.300 a0 notify worker rank 0 on a0 exited with code 1",
      "a0 log worker rank 1 exited with code 5 (while stopping)",
      "a0 outcome 20 failure rank 0 time 1.300 exit 1", "!notify worker rank 1"}},
    {"an exit-5 echo not followed is the root cause after the window, with its own time",
     kOne,
     {"1.000 a0 exit w1 5"},
     {"!1.000 a0 notify", "2.000 a0 notify worker rank 1 on a0 exited with code 5",
      "2.000 a0 SIGTERM w0", "a0 outcome 20 failure rank 1 time 1.000 exit 5"}},
    {"a SIGTERM death nobody sent, with no stop after it, is the root cause",
     kOne,
     {"1.000 a0 killed w0 TERM"},
     {"1.000 a0 log worker rank 0 killed by signal 15 (SIGTERM), a signal this agent did not send",
      "2.000 a0 notify worker rank 0", "a0 outcome 21 failure rank 0 time 1.000 SIGTERM"}},
    {"Slurm's order: a worker dies of SIGTERM just before its agent's SIGTERM",
     kOne,
     {"1.000 a0 killed w0 TERM", "1.200 a0 signal TERM"},
     {"1.200 a0 notify agent on a0 received SIGTERM", "1.200 a0 SIGTERM w1",
      "a0 outcome 10: this agent received SIGTERM", "!failure rank", "!notify worker"}},
    {"exit 143 (a shell's SIGTERM) waits for the stop like the signal",
     kOne,
     {"1.000 a0 exit w0 143", "1.500 a0 signal TERM"},
     {"1.500 a0 SIGTERM w1", "a0 outcome 10: this agent received SIGTERM", "!failure rank"}},
    {"SIGTERM to the agent stops every worker cleanly",
     kOne,
     {"3.000 a0 signal TERM"},
     {"3.000 a0 notify agent on a0 received SIGTERM", "3.000 a0 SIGTERM w0", "3.000 a0 SIGTERM w1",
      "a0 outcome 10: this agent received SIGTERM", "job 10 no failure", "!SIGKILL w"}},
    {"a worker that ignores SIGTERM is killed after the grace period",
     kOne,
     {"ignore-term a0 w1", "1.000 a0 signal TERM"},
     {"1.000 a0 SIGTERM w1", "!15.950 a0 SIGKILL",
      "16.000 a0 log worker rank 1 still running after the grace period: SIGKILL",
      "16.000 a0 SIGKILL w1",
      "a0 outcome 21 failure rank 1 time 16.001 -: worker rank 1 killed by signal 9 (SIGKILL) "
      "while stopping"}},
    {"a second SIGTERM during the grace period kills at once",
     kOne,
     {"ignore-term a0 w0", "ignore-term a0 w1", "1.000 a0 signal TERM", "3.000 a0 signal TERM"},
     {"3.000 a0 log received SIGTERM again while stopping: killing the workers that have not "
      "finished now",
      "3.000 a0 log worker rank 0 has not finished: SIGKILL", "3.000 a0 SIGKILL w0",
      "3.000 a0 SIGKILL w1", "!16.000", "!grace period: SIGKILL"}},
    {"a second SIGTERM spares a worker that has saved its work and is exiting",
     kOne,
     {"term-save a0 w0 0.1 0.3", "term-save a0 w1 0.1 0.3", "1.000 a0 signal TERM",
      "1.200 a0 signal TERM"},
     {"1.100 a0 w0 saved", "1.100 a0 w1 saved",
      "1.200 a0 log worker rank 0 has saved its work and is exiting: left to finish",
      "1.400 a0 log worker rank 0 exited with code 10 (stopped, checkpointed)",
      "a0 outcome 10: this agent received SIGTERM", "job 10 no failure", "!SIGKILL w",
      "!may not be saved"}},
    {"a second SIGTERM kills only the worker that has not saved yet",
     kOne,
     {"term-save a0 w0 0.1 0.3", "term-save a0 w1 0.5 0.3", "1.000 a0 signal TERM",
      "1.200 a0 signal TERM"},
     {"1.200 a0 log worker rank 0 has saved its work and is exiting",
      "1.200 a0 log worker rank 1 has not finished: SIGKILL", "1.200 a0 SIGKILL w1", "!SIGKILL w0",
      "a0 outcome 21 failure rank 1"}},
    {"a worker that saved but hangs while exiting is killed at the grace period, still a stop",
     kOne,
     {"term-save a0 w0 0.1 60", "1.000 a0 signal TERM", "1.200 a0 signal TERM"},
     {"16.000 a0 log worker rank 0 still running after the grace period: SIGKILL",
      "16.000 a0 SIGKILL w0",
      "a0 log worker rank 0 killed by signal 9 (SIGKILL) while exiting, after it had saved its "
      "work",
      "a0 outcome 10"}},
    {"the first SIGTERM after another agent's stop notice is the same stop, not a second one",
     kOne,
     {"ignore-term a0 w0", "1.000 a0 notice stop b", "1.005 a0 signal TERM"},
     {"1.005 a0 log received SIGTERM while already stopping", "16.000 a0 SIGKILL w0",
      "!1.005 a0 SIGKILL", "!notify"}},
    {"a relayed USR1 is held for a worker younger than 5 s",
     kOne,
     {"2.000 a0 signal USR1"},
     {"2.000 a0 log relaying SIGUSR1 to the workers",
      "2.000 a0 log worker rank 0 started less than 5 s ago: SIGUSR1 held until then",
      "5.000 a0 SIGUSR1 w0", "5.000 a0 SIGUSR1 w1", "!2.000 a0 SIGUSR1"}},
    {"with the handler probe, a relayed USR1 waits for each worker's handler, not for an age",
     kProbed,
     {"handler a0 w0 1.5", "handler a0 w1 7.0", "1.000 a0 signal USR1"},
     {"1.000 a0 log worker rank 0 has no SIGUSR1 handler yet (still starting): SIGUSR1 held "
      "until it has one (at most 30 s after its start)",
      "1.500 a0 SIGUSR1 w0", "7.000 a0 SIGUSR1 w1", "!5.000 a0 SIGUSR1"}},
    {"with the handler probe, a worker that never installs one gets the signal at 30 s",
     kProbed,
     {"handler a0 w0 0.5", "2.000 a0 signal USR2"},
     {"2.000 a0 SIGUSR2 w0", "30.000 a0 SIGUSR2 w1", "!2.000 a0 SIGUSR2 w1"}},
    {"a relayed USR2 reaches old workers at once",
     kOne,
     {"6.000 a0 signal USR2", "7.000 a0 exit w0 0", "7.000 a0 exit w1 0"},
     {"6.000 a0 SIGUSR2 w0", "6.000 a0 SIGUSR2 w1", "a0 outcome 0"}},
    {"a held signal is dropped when the worker ends first",
     kOne,
     {"2.000 a0 signal USR2", "3.000 a0 exit w0 0", "3.000 a0 exit w1 0"},
     {"3.000 a0 done", "!SIGUSR2 w"}},
    {"preemption: USR1 relayed, the workers checkpoint and exit 11",
     kOne,
     {"usr-exit a0 w0 11", "usr-exit a0 w1 11", "6.000 a0 signal USR1"},
     {"6.000 a0 SIGUSR1 w0",
      "a0 log worker rank 0 exited with code 11 (checkpointed for a requeue)",
      "a0 outcome 11: workers checkpointed after the preemption signal", "job 11", "!SIGTERM"}},
    {"a worker's own agreed stop (10) is a stop, not a failure",
     kOne,
     {"1.000 a0 exit w0 10", "1.000 a0 exit w1 10"},
     {"a0 outcome 10: workers stopped and checkpointed", "!notify", "!SIGTERM"}},
    {"a stop notice from another agent is the job's stop (10)",
     kOne,
     {"term-exit a0 w0 10", "term-exit a0 w1 10", "1.000 a0 notice stop b"},
     {"1.000 a0 log notice from another agent: agent on b received SIGTERM", "1.000 a0 SIGTERM w0",
      "a0 outcome 10: stopped because agent on b received SIGTERM"}},
    {"a failure notice from another agent is collateral (12), agreed stops after it too",
     kOne,
     {"term-exit a0 w0 10", "1.000 a0 notice failure 7 b"},
     {"1.000 a0 SIGTERM w0", "1.000 a0 SIGTERM w1",
      "a0 outcome 12: stopped because worker rank 7 on b exited with code 1", "job 12 no failure"}},
    {"a worker failing during an intended stop makes it a failure",
     kOne,
     {"1.000 a0 signal TERM", "1.005 a0 exit w1 1"},
     {"1.005 a0 log worker rank 1 exited with code 1 while stopping: the stop did not complete",
      "a0 outcome 20 failure rank 1 time 1.005 -: worker rank 1 exited with code 1 while "
      "stopping"}},
    {"an echo while stopping is part of the stop",
     kOne,
     {"1.000 a0 notice failure 5 b", "1.003 a0 exit w0 5"},
     {"1.003 a0 log worker rank 0 exited with code 5 (while stopping)", "a0 outcome 12",
      "!notify"}},
    {"a worker that cannot start is the root cause (127)",
     kOne,
     {"0.000 a0 start w0", "0.000 a0 startfail w1"},
     {"0.000 a0 log rank 1: no such file: ./missing",
      "0.000 a0 notify worker rank 1 on a0 could not start", "0.000 a0 SIGTERM w0",
      "a0 outcome 20 failure rank 1 time 0.000 exit 127: rank 1 could not start"}},
    {"every agent's view: a failure on one agent",
     kTwoAgents,
     {"2.000 a1 exit w1 4"},
     {"2.000 a1 notify worker rank 3 on a1 exited with code 4", "2.002 a0 SIGTERM w0",
      "a0 outcome 12: stopped because worker rank 3 on a1 exited with code 4",
      "a1 outcome 20 failure rank 3 time 2.000 exit 4", "job 20 first rank 3 on a1"}},
    {"scancel reaches two agents at different moments: one clean stop",
     kTwoAgents,
     {"1.000 a0 signal TERM", "1.300 a1 signal TERM"},
     {"1.002 a1 SIGTERM w0", "1.300 a1 log received SIGTERM while already stopping",
      "a0 outcome 10: this agent received SIGTERM",
      "a1 outcome 10: stopped because agent on a0 received SIGTERM", "job 10 no failure",
      "!SIGKILL w"}},
    {"a failure elsewhere after this node's workers finished",
     kTwoAgents,
     {"1.000 a0 exit w0 0", "1.000 a0 exit w1 0", "2.000 a1 exit w0 1"},
     {"1.000 a0 done", "a0 outcome 12", "a1 outcome 20 failure rank 2",
      "job 20 first rank 2 on a1"}},
    {"the barrier waits for a judgement still pending",
     kOne,
     {"1.000 a0 exit w0 5", "1.000 a0 exit w1 0"},
     {"!1.000 a0 done", "2.000 a0 notify worker rank 0", "2.000 a0 done"}},
    {"SIGINT and SIGHUP stop like SIGTERM",
     kOne,
     {"1.000 a0 signal INT", "2.000 a0 signal HUP"},
     {"1.000 a0 notify agent on a0 received SIGINT", "a0 outcome 10: this agent received SIGINT",
      "!notify agent on a0 received SIGHUP"}},
};

class SupervisionPolicyTest : public ::testing::TestWithParam<PolicyCase> {};

std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& line : lines) out += "  " + line + "\n";
  return out;
}

TEST_P(SupervisionPolicyTest, Trace) {
  const PolicyCase& c = GetParam();
  const std::vector<std::string> trace = Simulate(c.options, c.script);
  size_t next = 0;
  for (const std::string& want : c.expect) {
    if (want[0] == '!') {
      for (const std::string& line : trace) {
        EXPECT_EQ(line.find(want.substr(1)), std::string::npos)
            << c.name << ": '" << want.substr(1) << "' must not appear, but: " << line
            << "\ntrace:\n"
            << Join(trace);
      }
      continue;
    }
    while (next < trace.size() && trace[next].find(want) == std::string::npos) ++next;
    ASSERT_LT(next, trace.size()) << c.name << ": '" << want
                                  << "' not found (in this order) in the trace:\n"
                                  << Join(trace);
    ++next;
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, SupervisionPolicyTest, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<PolicyCase>& row) {
                           std::string name;
                           for (const char* p = row.param.name; *p != '\0'; ++p) {
                             name += std::isalnum(static_cast<unsigned char>(*p)) ? *p : '_';
                           }
                           return std::to_string(row.index) + "_" + name.substr(0, 60);
                         });

}  // namespace
}  // namespace runner

namespace runner {
namespace {

PolicyOptions HostOptions() {
  PolicyOptions o;
  o.host = "h";
  return o;
}

// The states themselves, through one stop that ends in SIGKILL.
TEST(SupervisionPolicyStates, WorkerAndAttemptStatesFollowAStop) {
  SupervisionPolicy policy(HostOptions(), {{0, "rank-0.log"}, {1, "rank-1.log"}});
  EXPECT_EQ(policy.worker_state(0), WorkerState::kNotStarted);
  policy.OnStarted(0, 100, {0, 1000});
  policy.OnStarted(1, 101, {0, 1000});
  EXPECT_EQ(policy.worker_state(0), WorkerState::kRunning);
  EXPECT_EQ(policy.state(), AttemptState::kRunning);
  policy.OnSignal(SIGTERM, {1, 1001});
  EXPECT_EQ(policy.state(), AttemptState::kStopping);
  EXPECT_EQ(policy.worker_state(1), WorkerState::kStopRequested);
  policy.OnExit(0, SIGTERM, {}, {1.1, 1001.1});
  EXPECT_EQ(policy.worker_state(0), WorkerState::kSignalled);
  policy.OnTick({15.9, 1015.9});
  EXPECT_EQ(policy.worker_state(1), WorkerState::kStopRequested);
  policy.OnTick({16, 1016});
  EXPECT_EQ(policy.state(), AttemptState::kKilling);
  EXPECT_EQ(policy.worker_state(1), WorkerState::kKillSent);
  policy.OnExit(1, SIGKILL, {}, {16.01, 1016.01});
  EXPECT_FALSE(policy.entered_done());
  policy.OnTick({16.05, 1016.05});
  EXPECT_EQ(policy.state(), AttemptState::kDraining);
  EXPECT_TRUE(policy.entered_done());
}

TEST(SupervisionPolicyStates, AnEchoWaitsUnjudgedUntilTheWindowEnds) {
  SupervisionPolicy policy(HostOptions(), {{0, "rank-0.log"}});
  policy.OnStarted(0, 100, {0, 1000});
  policy.OnExit(0, 5 << 8, {}, {2, 1002});
  EXPECT_EQ(policy.worker_state(0), WorkerState::kEndedUnjudged);
  EXPECT_EQ(policy.state(), AttemptState::kRunning);
  policy.OnTick({2.5, 1002.5});
  EXPECT_EQ(policy.worker_state(0), WorkerState::kEndedUnjudged);
  policy.OnTick({3, 1003});
  EXPECT_EQ(policy.worker_state(0), WorkerState::kExited);
  EXPECT_EQ(policy.Finish().code, 20);
}

}  // namespace
}  // namespace runner

// The supervisor's shell (runner/supervisor.h) over an in-memory WorkerRunner and clock: what it
// starts, what it tells the runner, what it writes to events.jsonl, and when the attempt ends.
// The policy itself is tested in supervision_policy_test.cpp; real processes in tests/integration.

#include "runner/supervisor.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <map>
#include <set>

#include "common/errors.h"

namespace runner {
namespace {

class FakeClock : public Clock {
 public:
  Moment Now() override { return {now, 1000 + now}; }
  double now = 0;
};

// Workers that end when the script says, or 10 ms after a SIGTERM unless told to ignore it.
class FakeRunner : public WorkerRunner {
 public:
  explicit FakeRunner(FakeClock& clock) : clock_(clock) {}

  void OpenLog(int worker, int /*rank*/, const std::string& path, bool mirror) override {
    calls.push_back("open " + std::to_string(worker) + " " + path + (mirror ? " mirrored" : ""));
  }
  int Start(int worker, const SpawnRequest& request) override {
    if (fail_start.count(worker)) throw common::EnvironmentError("cannot run " + request.argv[0]);
    calls.push_back("start " + std::to_string(worker) + " RANK=" + request.env.at("RANK"));
    return 100 + worker;
  }
  void Signal(int worker, int signal) override {
    calls.push_back("signal " + std::to_string(worker) + " " + SignalName(signal));
    if (signal == SIGKILL || (signal == SIGTERM && !ignore_term.count(worker))) {
      end_at.emplace(clock_.now + 0.01, EndedWorker{worker, signal, {}});
    }
  }
  void Note(int worker, const std::string& line) override {
    calls.push_back("note " + std::to_string(worker) + " " + line.substr(0, 30));
  }
  WaitResult Wait(double timeout_s) override {
    clock_.now += timeout_s;
    WaitResult result;
    if (!signals.empty() && signals.begin()->first <= clock_.now) {
      result.signals.terminate = true;
      result.signals.terminate_signal = signals.begin()->second;
      signals.erase(signals.begin());
    }
    while (!end_at.empty() && end_at.begin()->first <= clock_.now) {
      const int worker = end_at.begin()->second.worker;
      if (!ended.count(worker)) result.ended.push_back(end_at.begin()->second);
      ended.insert(worker);
      end_at.erase(end_at.begin());
    }
    return result;
  }

  std::vector<std::string> calls;
  std::set<int> fail_start;
  std::set<int> ignore_term;
  std::multimap<double, EndedWorker> end_at;
  std::multimap<double, int> signals;  // to the agent

 private:
  FakeClock& clock_;
  std::set<int> ended;
};

struct Fixture {
  Fixture() : runner(clock), control(MakeLocalControlPlane()) {
    for (int rank = 0; rank < 3; ++rank) {
      WorkerLaunch w;
      w.contract.rank = rank;
      w.contract.world_size = 3;
      w.argv = {"./train", "--fast"};
      w.log_path = "rank-" + std::to_string(rank) + ".log";
      launches.push_back(w);
    }
  }
  AttemptOutcome Run() {
    spdlog::logger log("test", std::make_shared<spdlog::sinks::null_sink_mt>());
    SupervisorOptions options;
    options.grace_period_s = 15;
    options.host = "n1";
    options.hang.timeout_s = 0;  // the watchdog has its own tests
    Supervisor supervisor(
        *control, log, [this](const common::JsonObject& e) { events.push_back(e.str()); }, clock,
        options);
    return supervisor.RunAttempt(2, launches, {{"PATH", "/usr/bin"}}, runner);
  }
  bool Called(const std::string& call) const {
    return std::find(runner.calls.begin(), runner.calls.end(), call) != runner.calls.end();
  }
  FakeClock clock;
  FakeRunner runner;
  std::unique_ptr<ControlPlane> control;
  std::vector<WorkerLaunch> launches;
  std::vector<std::string> events;
};

TEST(SupervisorTest, StartsEveryWorkerWithItsContractAndBannerAndEndsWhenTheyHaveEnded) {
  Fixture f;
  for (int w = 0; w < 3; ++w) f.runner.end_at.emplace(1.0, EndedWorker{w, 0, {}});
  const AttemptOutcome outcome = f.Run();
  EXPECT_TRUE(f.Called("open 0 rank-0.log mirrored"));
  EXPECT_TRUE(f.Called("open 1 rank-1.log"));
  EXPECT_TRUE(f.Called("start 2 RANK=2"));
  EXPECT_TRUE(f.Called("note 1 rank 1/3 local_rank 0 node 0 h"));
  EXPECT_EQ(outcome.code, 0);
  EXPECT_EQ(outcome.reason, "all workers of this node exited with code 0");
  ASSERT_EQ(outcome.workers.size(), 3u);
  EXPECT_EQ(outcome.workers[2].pid, 102);
  EXPECT_NEAR(f.clock.now, 1.0, 0.11);  // ended at the first tick after the last worker
  ASSERT_GE(f.events.size(), 6u);
  EXPECT_NE(f.events[0].find("\"event\":\"worker_started\",\"attempt\":2"), std::string::npos);
  EXPECT_NE(f.events.back().find("\"event\":\"worker_exited\""), std::string::npos);
}

TEST(SupervisorTest, AStartFailureStopsTheStartedWorkersAndStartsNoMore) {
  Fixture f;
  f.runner.fail_start.insert(1);
  const AttemptOutcome outcome = f.Run();
  EXPECT_TRUE(f.Called("start 0 RANK=0"));
  EXPECT_TRUE(f.Called("note 1 could not start: cannot run ./"));
  EXPECT_TRUE(f.Called("signal 0 SIGTERM"));
  EXPECT_FALSE(f.Called("start 2 RANK=2"));
  EXPECT_EQ(outcome.code, 20);
  ASSERT_TRUE(outcome.failure);
  EXPECT_EQ(outcome.failure->rank, 1);
  EXPECT_EQ(outcome.failure->exit_code, 127);
  EXPECT_EQ(outcome.failure->status, "could not start: cannot run ./train");
}

TEST(SupervisorTest, AFailureIsCarriedOutAsSignalsAndARecordedRootCause) {
  Fixture f;
  f.runner.end_at.emplace(0.5, EndedWorker{1, 3 << 8, {"Traceback", "[runner] worker exited"}});
  const AttemptOutcome outcome = f.Run();
  EXPECT_TRUE(f.Called("signal 0 SIGTERM"));
  EXPECT_TRUE(f.Called("signal 2 SIGTERM"));
  EXPECT_FALSE(f.Called("signal 1 SIGTERM"));
  EXPECT_EQ(outcome.code, 20);
  ASSERT_TRUE(outcome.failure);
  EXPECT_EQ(outcome.failure->pid, 101);
  EXPECT_EQ(outcome.failure->log_path, "rank-1.log");
  EXPECT_EQ(outcome.failure->last_lines.front(), "Traceback");
  bool stopping_event = false;
  for (const std::string& e : f.events) {
    stopping_event |=
        e.find("\"event\":\"stopping\"") != std::string::npos &&
        e.find("\"reason\":\"worker rank 1 exited with code 3\"") != std::string::npos;
  }
  EXPECT_TRUE(stopping_event);
}

TEST(SupervisorTest, AWorkerIgnoringSigtermIsKilledWhenTheGracePeriodEnds) {
  Fixture f;
  f.runner.ignore_term = {0, 1, 2};
  f.runner.signals.emplace(1.0, SIGTERM);
  const AttemptOutcome outcome = f.Run();
  EXPECT_TRUE(f.Called("signal 2 SIGKILL"));
  EXPECT_GE(f.clock.now, 16.0);
  EXPECT_LT(f.clock.now, 16.2);
  EXPECT_EQ(outcome.code, 21);  // killed while stopping: the stop did not complete cleanly
}

}  // namespace
}  // namespace runner

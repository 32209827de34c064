#include "runner/supervisor.h"

#include <csignal>

#include "common/errors.h"
#include "common/logging.h"
#include "common/version.h"
#include "runner/job_dir.h"

namespace runner {

std::string RankBanner(const WorkerContract& c, const std::string& host, int pid, int attempt,
                       const std::vector<std::string>& argv) {
  std::string command;
  for (const std::string& arg : argv) command += (command.empty() ? "" : " ") + arg;
  return "rank " + std::to_string(c.rank) + "/" + std::to_string(c.world_size) + " local_rank " +
         std::to_string(c.local_rank) + " node " + std::to_string(c.node_rank) + " host " + host +
         " pid " + std::to_string(pid) + " device " +
         (c.device.empty() ? std::string("cpu") : "cuda (CUDA_VISIBLE_DEVICES=" + c.device + ")") +
         " attempt " + std::to_string(attempt) + " runner " + common::kProjectVersion + ": " +
         command;
}

common::JsonObject Supervisor::Event(const std::string& name) const {
  return EventHeader(name, attempt_, options_.agent, options_.host, options_.node);
}

void Supervisor::StartWorkers(const std::vector<WorkerLaunch>& launches,
                              const std::map<std::string, std::string>& agent_env,
                              WorkerRunner& runner, SupervisionPolicy& policy) {
  for (size_t i = 0; i < launches.size(); ++i) {
    const WorkerLaunch& launch = launches[i];
    const int index = static_cast<int>(i);
    const WorkerContract& c = launch.contract;
    SpawnRequest request{launch.argv, BuildWorkerEnv(agent_env, c), ""};
    runner.OpenLog(index, c.rank, launch.log_path, c.rank == 0);
    try {
      const int pid = runner.Start(index, request);
      log_.info("started worker rank {} (local rank {}, pid {}{}): {}", c.rank, c.local_rank, pid,
                c.device.empty() ? "" : ", CUDA_VISIBLE_DEVICES=" + c.device, launch.argv.front());
      runner.Note(index, RankBanner(c, options_.host, pid, attempt_, launch.argv));
      events_(Event("worker_started").Add("rank", c.rank).Add("pid", pid));
      policy.OnStarted(index, pid, clock_.Now());
    } catch (const common::Error& e) {
      runner.Note(index, std::string("could not start: ") + e.what());
      policy.OnStartFailed(index, e.what(), clock_.Now());
      Carry(policy, runner);
      return;  // a start failure is this node's root cause: start no more
    }
  }
}

void Supervisor::Carry(SupervisionPolicy& policy, WorkerRunner& runner) {
  for (PolicyAction& action : policy.TakeActions()) {
    switch (action.kind) {
      case PolicyAction::Kind::kSignal:
        runner.Signal(action.worker, action.signal);
        break;
      case PolicyAction::Kind::kNotify:
        control_.Notify(action.notice.Serialize());
        break;
      case PolicyAction::Kind::kLog:
        if (action.level == PolicyAction::Level::kError) {
          log_.error("{}", action.text);
        } else if (action.level == PolicyAction::Level::kWarn) {
          log_.warn("{}", action.text);
        } else {
          log_.info("{}", action.text);
        }
        break;
      case PolicyAction::Kind::kEvent:
        events_(Event(action.text).Extend(action.fields));
        break;
      case PolicyAction::Kind::kEnterDone:
        control_.EnterDone();
        break;
    }
  }
}

AttemptOutcome Supervisor::RunAttempt(int attempt, const std::vector<WorkerLaunch>& launches,
                                      const std::map<std::string, std::string>& agent_env,
                                      WorkerRunner& runner) {
  attempt_ = attempt;
  control_.BeginAttempt(attempt);
  std::vector<WorkerSlot> slots;
  for (const WorkerLaunch& launch : launches)
    slots.push_back({launch.contract.rank, launch.log_path});
  SupervisionPolicy policy(
      {options_.grace_period_s, options_.relay_age_s, options_.stop_signal_window_s, options_.host,
       options_.node, control_.size()},
      std::move(slots));
  StartWorkers(launches, agent_env, runner, policy);
  while (!policy.entered_done() || !control_.PollDone()) {
    WaitResult waited = runner.Wait(options_.tick_s);
    if (waited.signals.terminate) policy.OnSignal(waited.signals.terminate_signal, clock_.Now());
    if (waited.signals.usr1) policy.OnSignal(SIGUSR1, clock_.Now());
    if (waited.signals.usr2) policy.OnSignal(SIGUSR2, clock_.Now());
    Carry(policy, runner);
    for (EndedWorker& ended : waited.ended) {
      policy.OnExit(ended.worker, ended.status, std::move(ended.last_lines), clock_.Now());
      Carry(policy, runner);
    }
    while (std::optional<std::string> text = control_.PollNotice()) {
      policy.OnNotice(Notice::Parse(*text), clock_.Now());
      Carry(policy, runner);
    }
    policy.OnTick(clock_.Now());
    Carry(policy, runner);
  }
  for (const std::string& text : control_.EndAttempt()) {
    const Notice notice = Notice::Parse(text);
    log_.info("late notice from another agent: {} on {} {}",
              notice.kind == Notice::Kind::kStop ? "stop" : "failure", notice.host, notice.status);
  }
  return policy.Finish();
}

}  // namespace runner

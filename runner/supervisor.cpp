#include "runner/supervisor.h"

#include <sys/stat.h>

#include <csignal>

#include "common/atomic_file.h"
#include "common/errors.h"
#include "common/heartbeat.h"
#include "common/logging.h"
#include "common/version.h"
#include "runner/background_file.h"
#include "runner/job_dir.h"
#include "runner/proc_probe.h"
#include "runner/stack_capture.h"

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

namespace {

// The watchdog's outputs, carried out: this agent's log, events.jsonl, the other agents, the
// progress file.
class SupervisorHangSink : public HangSink {
 public:
  SupervisorHangSink(spdlog::logger& log, ControlPlane& control,
                     std::function<void(const std::string&, const common::JsonObject&)> event,
                     std::string progress_path)
      : log_(log), control_(control), event_(std::move(event)) {
    // Written by a thread of its own: a stalled disk never stalls the loop (said once).
    if (!progress_path.empty()) {
      progress_.emplace(std::move(progress_path),
                        [&log, said = false](const std::string& e) mutable {
                          if (!said) log.warn("cannot write the progress file: {}", e);
                          said = true;
                        });
    }
  }
  void Warn(const std::string& line) override { log_.warn("{}", line); }
  void Info(const std::string& line) override { log_.info("{}", line); }
  void Event(const std::string& name, const common::JsonObject& fields) override {
    event_(name, fields);
  }
  void Send(const std::string& message) override {
    if (control_.size() > 1) control_.Notify(message);
  }
  void SendFirst(const std::string& message) override { control_.NotifyFirst(message); }
  void Progress(const std::string& json) override {
    // The progress file is for people; one that cannot be written is said once, not fatal.
    if (progress_) progress_->Write(json);
  }

 private:
  spdlog::logger& log_;
  ControlPlane& control_;
  std::function<void(const std::string&, const common::JsonObject&)> event_;
  std::optional<BackgroundFile> progress_;
};

}  // namespace

std::string RankStackFile(int rank) { return "diagnosis/rank-" + std::to_string(rank) + ".txt"; }

std::string Supervisor::AttemptFile(const std::string& relative) const {
  return options_.attempt_dir.empty() ? "" : options_.attempt_dir + "/" + relative;
}

common::JsonObject Supervisor::Event(const std::string& name) const {
  return EventHeader(name, attempt_, options_.agent, options_.host, options_.node);
}

void Supervisor::StartWorkers(const std::vector<WorkerLaunch>& launches,
                              const std::map<std::string, std::string>& agent_env,
                              WorkerRunner& runner, SupervisionPolicy& policy,
                              HangMonitor& monitor) {
  for (size_t i = 0; i < launches.size(); ++i) {
    const WorkerLaunch& launch = launches[i];
    const int index = static_cast<int>(i);
    const WorkerContract& c = launch.contract;
    SpawnRequest request{launch.argv, BuildWorkerEnv(agent_env, c), ""};
    runner.OpenLog(index, c.rank, launch.log_path, c.rank == 0);
    try {
      if (!launch.heartbeat_path.empty()) {
        common::CreateHeartbeat(launch.heartbeat_path);
        request.env[common::kHeartbeatFileEnv] = launch.heartbeat_path;
      }
      const int pid = runner.Start(index, request);
      log_.info("started worker rank {} (local rank {}, pid {}{}): {}", c.rank, c.local_rank, pid,
                c.device.empty() ? "" : ", CUDA_VISIBLE_DEVICES=" + c.device, launch.argv.front());
      runner.Note(index, RankBanner(c, options_.host, pid, attempt_, launch.argv));
      events_(Event("worker_started").Add("rank", c.rank).Add("pid", pid));
      policy.OnStarted(index, pid, clock_.Now());
      monitor.watch().Add(index,
                          {c.rank, c.local_rank, pid, launch.heartbeat_path, launch.log_path},
                          clock_.Now().steady);
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
        Tell(action.notice);
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

// Agent 0 tells every agent; the others tell agent 0, which forwards the attempt's first notice.
void Supervisor::Tell(const Notice& notice) {
  if (options_.agent != 0) return control_.NotifyFirst(notice.Serialize());
  control_.Notify(notice.Serialize());
  told_ = true;
}

void Supervisor::OnMessage(const std::string& text, SupervisionPolicy& policy, HangMonitor& monitor,
                           HangSink& sink) {
  if (std::optional<HangMessage> message = HangMessage::Parse(text)) {
    monitor.OnMessage(*message, sink);
    return;
  }
  const Notice notice = Notice::Parse(text);
  // One notice stops every agent; the later ones would only say so again.
  if (options_.agent == 0 && !told_) {
    control_.Forward(text, notice.agent);
    told_ = true;
  }
  policy.OnNotice(notice, clock_.Now());
}

void Supervisor::OnHang(const HangVerdict& verdict, const HangMonitor& monitor,
                        SupervisionPolicy& policy) {
  for (const std::string& line : verdict.lines) log_.error("{}", line);
  events_(Event("hang").Add("lines", verdict.lines));
  std::vector<StackRequest> requests;
  std::vector<std::string> stack_files;
  const std::string diagnosis = AttemptFile("diagnosis");
  if (!diagnosis.empty()) ::mkdir(diagnosis.c_str(), 0750);
  for (const RankView& v : verdict.laggards) stack_files.push_back(RankStackFile(v.rank));
  for (const RankView& v : verdict.waiting) stack_files.push_back(RankStackFile(v.rank));
  for (const RankView& v : monitor.watch().Views(clock_.Now().steady)) {
    if (v.ended || diagnosis.empty()) continue;
    requests.push_back({v.rank, v.pid, AttemptFile(RankStackFile(v.rank)),
                        "rank " + std::to_string(v.rank) + " on " + v.host + ", pid " +
                            std::to_string(v.pid) + ", " + v.State() + ", " + v.Where() +
                            " at step " + std::to_string(v.step) + "\n" + verdict.lines.front()});
  }
  if (!requests.empty()) {
    log_.info("capturing the stacks of this node's {} worker(s) into {}", requests.size(),
              diagnosis);
    for (const std::string& line : CaptureStacks(requests, options_.stack_timeout_s))
      log_.info("stack of {}", line);
  }
  if (options_.agent == 0 && !diagnosis.empty()) {
    const std::string json = HangVerdictJson(verdict, options_.hang.timeout_s, stack_files);
    if (std::optional<common::FileError> e =
            common::WriteFileAtomic(diagnosis + "/diagnosis.json", json)) {
      log_.error("cannot write diagnosis.json: {}; the verdict is above", e->Describe());
    }
  }
  policy.OnHang(verdict.lines.front(), verdict.lines, clock_.Now());
}

namespace {

// Workers whose heartbeat says their work is saved and they are exiting (common/heartbeat.h).
void NoteSavedWorkers(const std::vector<WorkerLaunch>& launches, SupervisionPolicy& policy) {
  for (size_t i = 0; i < launches.size(); ++i) {
    if (launches[i].heartbeat_path.empty()) continue;
    const std::optional<common::Heartbeat> beat = common::ReadHeartbeat(launches[i].heartbeat_path);
    if (beat && beat->phase == common::kPhaseExiting) policy.OnWorkSaved(static_cast<int>(i));
  }
}

}  // namespace

AttemptOutcome Supervisor::RunAttempt(int attempt, const std::vector<WorkerLaunch>& launches,
                                      const std::map<std::string, std::string>& agent_env,
                                      WorkerRunner& runner) {
  attempt_ = attempt;
  told_ = false;
  control_.BeginAttempt(attempt);
  std::vector<WorkerSlot> slots;
  for (const WorkerLaunch& launch : launches)
    slots.push_back({launch.contract.rank, launch.log_path});
  PolicyOptions policy_options;
  policy_options.grace_period_s = options_.grace_period_s;
  policy_options.relay_age_s = options_.relay_age_s;
  policy_options.stop_signal_window_s = options_.stop_signal_window_s;
  policy_options.host = options_.host;
  policy_options.node = options_.node;
  policy_options.agent = options_.agent;
  policy_options.agents = control_.size();
  policy_options.catches = CatchesSignal;
  SupervisionPolicy policy(policy_options, std::move(slots));
  HangMonitor monitor(options_.hang, attempt, options_.agent, control_.size(), options_.node,
                      options_.host);
  SupervisorHangSink sink(
      log_, control_,
      [this](const std::string& name, const common::JsonObject& fields) {
        events_(Event(name).Extend(fields));
      },
      AttemptFile("progress/agent-" + std::to_string(options_.agent) + ".json"));
  if (!options_.attempt_dir.empty()) {
    ::mkdir(AttemptFile("progress").c_str(), 0750);
    // NCCL's flight recorder dumps there on a collective timeout (runner/worker_env.h).
    for (const WorkerLaunch& launch : launches) {
      if (!launch.contract.device.empty()) ::mkdir(AttemptFile("diagnosis").c_str(), 0750);
    }
  }
  WorkerProbe& probe = options_.probe != nullptr ? *options_.probe : SystemWorkerProbe();
  StartWorkers(launches, agent_env, runner, policy, monitor);
  while (!policy.entered_done() || !control_.PollDone()) {
    WaitResult waited = runner.Wait(options_.tick_s);
    if (waited.signals.terminate) {
      // A second stop signal kills only what has not finished: read who has.
      NoteSavedWorkers(launches, policy);
      policy.OnSignal(waited.signals.terminate_signal, clock_.Now());
    }
    if (waited.signals.usr1) policy.OnSignal(SIGUSR1, clock_.Now());
    if (waited.signals.usr2) policy.OnSignal(SIGUSR2, clock_.Now());
    Carry(policy, runner);
    for (EndedWorker& ended : waited.ended) {
      monitor.watch().Ended(ended.worker, DescribeWaitStatus(ended.status), clock_.Now().steady);
      policy.OnExit(ended.worker, ended.status, std::move(ended.last_lines), clock_.Now());
      Carry(policy, runner);
    }
    while (std::optional<std::string> text = control_.PollNotice()) {
      OnMessage(*text, policy, monitor, sink);
      Carry(policy, runner);
    }
    const Moment now = clock_.Now();
    monitor.Tick(probe, now.steady, now.unix, policy.stopping(), AttemptStateName(policy.state()),
                 sink);
    if (std::optional<HangVerdict> verdict = monitor.TakeVerdict())
      OnHang(*verdict, monitor, policy);
    policy.OnTick(clock_.Now());
    Carry(policy, runner);
  }
  monitor.WriteProgress(clock_.Now().steady, clock_.Now().unix, "ended", sink);
  for (const std::string& text : control_.EndAttempt()) {
    if (HangMessage::Parse(text)) continue;  // the verdict, if any, was reached already
    const Notice notice = Notice::Parse(text);
    log_.info("late notice from another agent: {} on {} {}",
              notice.kind == Notice::Kind::kStop ? "stop" : "failure", notice.host, notice.status);
  }
  return policy.Finish();
}

}  // namespace runner

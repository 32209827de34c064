#pragma once
// One attempt of this agent's workers, the shell around runner/supervision_policy.h: it starts
// the workers through a WorkerRunner, feeds the policy what happens (ended workers, signals to
// the agent, notices from the other agents, the time) and carries out what the policy decides
// (signals, notices, log lines, events.jsonl), until every local worker has ended and every agent
// is done. No process of a worker's process group outlives the attempt. It also runs the hang
// watchdog (runner/hang_monitor.h): samples, messages to the other agents, and on a verdict the
// stacks (runner/stack_capture.h), diagnosis/ and a stop with common::kExitHung.

#include <spdlog/logger.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/json.h"
#include "runner/control_plane.h"
#include "runner/hang_monitor.h"
#include "runner/supervision_policy.h"
#include "runner/worker_env.h"
#include "runner/worker_runner.h"

namespace runner {

struct WorkerLaunch {
  WorkerContract contract;
  std::vector<std::string> argv;
  std::string log_path;        // rank-<R>.log
  std::string heartbeat_path;  // created before the start, named by RUNNER_HEARTBEAT_FILE; "": none
};

struct SupervisorOptions {
  double grace_period_s = 15;
  std::string host;
  int agent = 0;
  int node = 0;
  // A relayed SIGUSR1/SIGUSR2 kills a worker that has not installed its handler yet (the default
  // action), and loading LibTorch alone takes seconds: younger workers get it at this age.
  double relay_age_s = 5;
  // Slurm (scancel, a time limit, a requeue) signals every process of the step, the workers
  // included, in no set order: a worker can die of SIGTERM a moment before its agent's own
  // SIGTERM (or another agent's stop notice) arrives. Such a death is the root cause only if no
  // stop follows within this window.
  double stop_signal_window_s = 1;
  double tick_s = 0.05;  // how often the other agents' notices are polled
  HangOptions hang;      // the hang watchdog (runner/hang_monitor.h)
  // Where progress/agent-<A>.json and diagnosis/ go; "": nowhere (tests).
  std::string attempt_dir;
  double stack_timeout_s = 30;   // for capturing a hung node's stacks, all ranks at once
  WorkerProbe* probe = nullptr;  // null: the real one (heartbeat page, /proc, log mtime)
};

class Supervisor {
 public:
  using EventSink = std::function<void(const common::JsonObject&)>;  // events.jsonl

  Supervisor(ControlPlane& control, spdlog::logger& log, EventSink events, Clock& clock,
             SupervisorOptions options)
      : control_(control),
        log_(log),
        events_(std::move(events)),
        clock_(clock),
        options_(std::move(options)) {}

  // Where the next attempt's progress/ and diagnosis/ go.
  void SetAttemptDir(std::string dir) { options_.attempt_dir = std::move(dir); }

  // Runs the attempt to its end (all local workers reaped, every agent done) and returns what
  // happened here.
  [[nodiscard]] AttemptOutcome RunAttempt(int attempt, const std::vector<WorkerLaunch>& workers,
                                          const std::map<std::string, std::string>& agent_env,
                                          WorkerRunner& runner);

 private:
  void StartWorkers(const std::vector<WorkerLaunch>& launches,
                    const std::map<std::string, std::string>& agent_env, WorkerRunner& runner,
                    SupervisionPolicy& policy, HangMonitor& monitor);
  void Carry(SupervisionPolicy& policy, WorkerRunner& runner);
  void Tell(const Notice& notice);
  void OnMessage(const std::string& text, SupervisionPolicy& policy, HangMonitor& monitor,
                 HangSink& sink);
  void OnHang(const HangVerdict& verdict, const HangMonitor& monitor, SupervisionPolicy& policy);
  [[nodiscard]] std::string AttemptFile(const std::string& relative) const;
  [[nodiscard]] common::JsonObject Event(const std::string& name) const;

  ControlPlane& control_;
  spdlog::logger& log_;
  EventSink events_;
  Clock& clock_;
  SupervisorOptions options_;
  int attempt_ = 0;
  bool told_ = false;  // agent 0: the other agents have had a notice this attempt
};

// "diagnosis/rank-<R>.txt", relative to the attempt directory.
[[nodiscard]] std::string RankStackFile(int rank);

// The one-line banner that opens every rank log, so the log makes sense alone.
[[nodiscard]] std::string RankBanner(const WorkerContract& contract, const std::string& host,
                                     int pid, int attempt, const std::vector<std::string>& argv);

}  // namespace runner

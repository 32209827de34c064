#pragma once
// What one agent decides while its workers run one attempt, as a pure state machine: events go
// in with the time they happened (a worker started or ended, a signal reached the agent, a notice
// came from another agent, time passed), actions come out (signal a worker, notify the other
// agents, log, append an event, enter the "my workers have ended" barrier). Nothing here touches
// a process, a pipe, a clock or MPI: runner/supervisor.cpp does, and the tests drive this class
// directly with invented times (tests/unit/supervision_policy_test.cpp).
//
// The rules (README.md, "What happens when something fails"):
// - The first worker that ends abnormally before any stop is the root cause: its failure is
//   recorded, every other agent is told (a failure notice), and the local workers are stopped.
// - A worker that ends by a stop signal nobody here sent (Slurm signals the whole step) or with
//   exit code 5 (a communication error: usually the echo of another rank's failure) is judged
//   only after `stop_signal_window_s`, unless a stop begins first; then it is part of the stop.
// - A stop is SIGTERM to every running worker, then SIGKILL after `grace_period_s`. A second
//   SIGTERM/SIGINT/SIGHUP to this agent kills at once what has not finished: a worker that has
//   said its work is saved and it is exiting (OnWorkSaved: the bundled trainer's heartbeat phase
//   "exiting") keeps the rest of its grace period to exit. The first one that arrives while a
//   stop is already under way is the same stop reaching this agent, not a second request.
// - SIGUSR1/SIGUSR2 are relayed. Before its handler exists the signal would kill a worker, so
//   one that does not catch it yet (PolicyOptions::catches, the shell's look at /proc) gets it
//   once it does, or at `relay_max_age_s`; without that probe, once it is `relay_age_s` old.
// - Exit codes 10 and 11 from a worker are its agreed stops (checkpoint written). A worker that
//   fails while an intended stop (10/11) is under way makes the attempt a failure.
// - A stop notice from another agent is the job's stop (10); a failure notice is collateral (12).
// - A hang verdict stops the workers with 13; how they then end is part of that stop.

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/json.h"
#include "runner/notice.h"

namespace runner {

// The two clocks an event is stamped with: steady for deadlines, Unix time for the record
// (the first failure across nodes is found by comparing Unix times).
struct Moment {
  double steady = 0;
  double unix = 0;
};

enum class WorkerState {
  kNotStarted,
  kRunning,
  kStopRequested,  // SIGTERM sent
  kKillSent,       // SIGKILL sent
  kEndedUnjudged,  // ended by a stop signal or exit 5; waits for the window or a stop
  kExited,         // ended with an exit code
  kSignalled,      // ended by a signal
  kFailedToStart,
};

enum class AttemptState {
  kRunning,   // workers run, no stop asked for
  kStopping,  // SIGTERM sent, grace period running
  kKilling,   // SIGKILL sent to whatever still ran
  kDraining,  // every local worker has ended; waiting for the other agents (EnterDone)
};

[[nodiscard]] const char* WorkerStateName(WorkerState state);
[[nodiscard]] const char* AttemptStateName(AttemptState state);

// The root cause (or a failed stop), as outcome.json shows it.
struct WorkerFailure {
  int rank = -1;
  std::string host;
  int node = 0;
  int pid = 0;                   // 0: no process (could not start)
  std::string status;            // "exited with code 3", "could not start: ..."
  std::optional<int> exit_code;  // exited (127: could not start)
  std::optional<int> signal;     // killed by a signal
  std::string signal_name;       // "SIGKILL"
  double time = 0;               // Unix seconds of the end
  std::string log_path;          // rank-<R>.log; "" when none was written
  std::vector<std::string> last_lines;
};

struct WorkerSummary {
  int rank = 0;
  int pid = 0;
  std::string status;
};

// What one agent saw in one attempt.
struct AttemptOutcome {
  int code = 0;        // common::ExitCode: 0, 10 stopped, 11 requeue, 12 collateral, 20, 21
  std::string reason;  // one line for people
  std::optional<WorkerFailure> failure;  // the root cause when it was on this node
  std::vector<WorkerSummary> workers;
  std::vector<std::string> hang;  // the hang verdict's lines when the job was judged hung
};

struct PolicyAction {
  enum class Kind { kSignal, kNotify, kLog, kEvent, kEnterDone };
  enum class Level { kInfo, kWarn, kError };
  Kind kind = Kind::kLog;
  int worker = -1;  // kSignal: the worker's index
  int signal = 0;   // kSignal
  Notice notice;    // kNotify
  Level level = Level::kInfo;
  std::string text;           // kLog: the line; kEvent: the event's name
  common::JsonObject fields;  // kEvent: its fields beyond time, attempt, agent, host, node
};

struct PolicyOptions {
  double grace_period_s = 15;
  double relay_age_s = 5;
  double stop_signal_window_s = 1;
  std::string host;
  int node = 0;
  int agent = 0;            // this agent (its notices name it)
  int agents = 1;           // agents in the job (only for what the log says)
  double hang_grace_s = 5;  // SIGTERM to SIGKILL after a hang verdict (at most grace_period_s)
  // Whether process `pid` has a handler for `signal` now; empty: judge by age (relay_age_s).
  std::function<bool(int pid, int signal)> catches;
  double relay_max_age_s = 30;  // with `catches`: relayed at this age even without a handler
};

// The most of one output line that the outcome quotes (the rank log keeps it whole).
inline constexpr size_t kMaxQuotedLineBytes = 2048;

struct WorkerSlot {
  int rank = 0;
  std::string log_path;
};

class SupervisionPolicy {
 public:
  SupervisionPolicy(PolicyOptions options, std::vector<WorkerSlot> workers);

  void OnStarted(int worker, int pid, Moment now);
  void OnStartFailed(int worker, const std::string& error, Moment now);
  void OnSignal(int signal, Moment now);  // a signal to this agent
  // `status` is the raw wait status; `last_lines` the end of its log (for the record).
  void OnExit(int worker, int status, std::vector<std::string> last_lines, Moment now);
  void OnNotice(const Notice& notice, Moment now);
  // The worker says its work is saved and it is exiting (what is left is tearing down).
  void OnWorkSaved(int worker);
  // The job was judged hung (runner/hang_monitor.h): a stop with common::kExitHung, the workers
  // continued (a stopped one could not act on SIGTERM) and killed after hang_grace_s.
  void OnHang(const std::string& headline, std::vector<std::string> lines, Moment now);
  // Time passed: held signals, judgements after the window, the SIGKILL deadline, the barrier.
  void OnTick(Moment now);

  // The actions decided since the last call, in order.
  [[nodiscard]] std::vector<PolicyAction> TakeActions();

  [[nodiscard]] bool stopping() const { return stopping_; }
  [[nodiscard]] bool entered_done() const { return entered_done_; }
  [[nodiscard]] AttemptState state() const;
  [[nodiscard]] WorkerState worker_state(int worker) const;
  // The outcome with every worker's summary and a reason when nothing went wrong.
  [[nodiscard]] AttemptOutcome Finish() const;

 private:
  struct Worker {
    WorkerSlot slot;
    WorkerState state = WorkerState::kNotStarted;
    int pid = 0;
    double started = 0;
    int status = 0;
    bool saved = false;  // said its work is saved and it is exiting
    double ended_unix = 0;
    std::vector<int> held;
    std::vector<std::string> last_lines;
  };

  void BeginStop(int code, const std::string& reason, Moment now);
  void Judge(Worker& w, Moment now, bool after_window);
  void RecordRootCause(Worker& w, Moment now);
  void FailedStop(Worker& w, const std::string& how, Moment now);
  void RelaySignal(int signal, Moment now);
  [[nodiscard]] bool ReadyFor(const Worker& w, int signal, Moment now) const;
  void OnTerminate(int signal, Moment now);
  void KillUnfinished();
  void Log(PolicyAction::Level level, std::string text);
  void Event(const std::string& name, common::JsonObject fields = {});
  void Signal(Worker& w, int signal);
  [[nodiscard]] static bool Running(const Worker& w);

  PolicyOptions options_;
  std::vector<Worker> workers_;
  std::vector<PolicyAction> actions_;
  AttemptOutcome outcome_;
  bool stopping_ = false;
  bool killed_ = false;
  bool escalated_ = false;  // a second stop signal: kill what has not finished
  bool entered_done_ = false;
  double kill_at_ = 0;
  int own_terminates_ = 0;
  std::vector<int> unjudged_;  // worker indexes, in the order they ended
  double judge_at_ = 0;
};

}  // namespace runner

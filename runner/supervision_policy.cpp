#include "runner/supervision_policy.h"

#include <sys/wait.h>

#include <algorithm>
#include <csignal>
#include <cstring>

#include "common/errors.h"
#include "common/exit_codes.h"
#include "common/utf8.h"
#include "runner/process.h"

namespace runner {

namespace {

// A worker that died of a stop signal (or exited 128+signal, as shells do).
bool EndedByStopSignal(int status) {
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT}) {
    if ((WIFSIGNALED(status) && WTERMSIG(status) == sig) ||
        (WIFEXITED(status) && WEXITSTATUS(status) == 128 + sig)) {
      return true;
    }
  }
  return false;
}

std::string Seconds(double s) {
  char text[32];
  std::snprintf(text, sizeof(text), "%g", s);
  return text;
}

}  // namespace

SupervisionPolicy::SupervisionPolicy(PolicyOptions options, std::vector<WorkerSlot> workers)
    : options_(std::move(options)) {
  for (WorkerSlot& slot : workers) {
    Worker w;
    w.slot = std::move(slot);
    workers_.push_back(std::move(w));
  }
}

bool SupervisionPolicy::Running(const Worker& w) {
  return w.state == WorkerState::kRunning || w.state == WorkerState::kStopRequested ||
         w.state == WorkerState::kKillSent;
}

AttemptState SupervisionPolicy::state() const {
  if (entered_done_) return AttemptState::kDraining;
  if (killed_) return AttemptState::kKilling;
  return stopping_ ? AttemptState::kStopping : AttemptState::kRunning;
}

WorkerState SupervisionPolicy::worker_state(int worker) const {
  return workers_.at(static_cast<size_t>(worker)).state;
}

std::vector<PolicyAction> SupervisionPolicy::TakeActions() {
  std::vector<PolicyAction> out;
  out.swap(actions_);
  return out;
}

void SupervisionPolicy::Log(PolicyAction::Level level, std::string text) {
  PolicyAction action;
  action.kind = PolicyAction::Kind::kLog;
  action.level = level;
  action.text = std::move(text);
  actions_.push_back(std::move(action));
}

void SupervisionPolicy::Event(const std::string& name, common::JsonObject fields) {
  PolicyAction action;
  action.kind = PolicyAction::Kind::kEvent;
  action.text = name;
  action.fields = std::move(fields);
  actions_.push_back(std::move(action));
}

void SupervisionPolicy::Signal(Worker& w, int signal) {
  PolicyAction action;
  action.kind = PolicyAction::Kind::kSignal;
  action.worker = static_cast<int>(&w - workers_.data());
  action.signal = signal;
  actions_.push_back(std::move(action));
  if (signal == SIGTERM && w.state == WorkerState::kRunning) w.state = WorkerState::kStopRequested;
  if (signal == SIGKILL) w.state = WorkerState::kKillSent;
}

void SupervisionPolicy::OnStarted(int worker, int pid, Moment now) {
  Worker& w = workers_.at(static_cast<size_t>(worker));
  w.state = WorkerState::kRunning;
  w.pid = pid;
  w.started = now.steady;
}

void SupervisionPolicy::OnStartFailed(int worker, const std::string& error, Moment now) {
  Worker& w = workers_.at(static_cast<size_t>(worker));
  w.state = WorkerState::kFailedToStart;
  const std::string rank = std::to_string(w.slot.rank);
  Log(PolicyAction::Level::kError, "rank " + rank + ": " + error);
  WorkerFailure failure;
  failure.rank = w.slot.rank;
  failure.host = options_.host;
  failure.node = options_.node;
  failure.status = "could not start: " + error;
  failure.exit_code = 127;
  failure.time = now.unix;
  outcome_.failure = std::move(failure);
  PolicyAction notify;
  notify.kind = PolicyAction::Kind::kNotify;
  notify.notice = {Notice::Kind::kFailure, w.slot.rank, options_.host, "could not start",
                   options_.agent};
  actions_.push_back(std::move(notify));
  BeginStop(common::kExitWorkerFailed, "rank " + rank + " could not start", now);
}

void SupervisionPolicy::BeginStop(int code, const std::string& reason, Moment now) {
  if (stopping_) return;
  stopping_ = true;
  outcome_.code = code;
  outcome_.reason = reason;
  const double grace = code == common::kExitHung
                           ? std::min(options_.grace_period_s, options_.hang_grace_s)
                           : options_.grace_period_s;
  Log(PolicyAction::Level::kWarn, "stopping this node's workers: " + reason +
                                      " (SIGTERM now, SIGKILL after " + Seconds(grace) + " s)");
  Event("stopping", common::JsonObject().Add("reason", reason));
  for (Worker& w : workers_) {
    if (Running(w)) Signal(w, SIGTERM);
  }
  kill_at_ = now.steady + grace;
}

void SupervisionPolicy::OnHang(const std::string& headline, std::vector<std::string> lines,
                               Moment now) {
  if (stopping_) return;
  BeginStop(common::kExitHung, "the job is hung: " + headline, now);
  outcome_.hang = std::move(lines);
  // Stuck workers have nothing to save (a short grace), and a stopped one acts on SIGTERM only
  // once continued.
  for (Worker& w : workers_) {
    if (Running(w)) Signal(w, SIGCONT);
  }
}

void SupervisionPolicy::OnSignal(int signal, Moment now) {
  if (signal == SIGUSR1 || signal == SIGUSR2) {
    RelaySignal(signal, now);
  } else {
    OnTerminate(signal, now);
  }
}

void SupervisionPolicy::RelaySignal(int signal, Moment now) {
  const std::string name = SignalName(signal);
  Log(PolicyAction::Level::kInfo, "relaying " + name + " to the workers");
  Event("signal", common::JsonObject().Add("signal", name).Add("relayed", true));
  for (Worker& w : workers_) {
    if (!Running(w)) continue;
    if (ReadyFor(w, signal, now)) {
      Signal(w, signal);
    } else {
      w.held.push_back(signal);
      Log(PolicyAction::Level::kInfo,
          "worker rank " + std::to_string(w.slot.rank) +
              (options_.catches ? " has no " + name + " handler yet (still starting): " + name +
                                      " held until it has one (at most " +
                                      Seconds(options_.relay_max_age_s) + " s after its start)"
                                : " started less than " + Seconds(options_.relay_age_s) +
                                      " s ago: " + name + " held until then"));
    }
  }
}

bool SupervisionPolicy::ReadyFor(const Worker& w, int signal, Moment now) const {
  const double age = now.steady - w.started;
  if (!options_.catches) return age >= options_.relay_age_s;
  return age >= options_.relay_max_age_s || options_.catches(w.pid, signal);
}

void SupervisionPolicy::OnExit(int worker, int status, std::vector<std::string> last_lines,
                               Moment now) {
  Worker& w = workers_.at(static_cast<size_t>(worker));
  if (!Running(w)) return;
  w.status = status;
  w.ended_unix = now.unix;
  // A worker may print anything: a megabyte on one line must not make a megabyte outcome.
  w.last_lines.clear();
  for (const std::string& line : last_lines)
    w.last_lines.push_back(common::CutLine(line, kMaxQuotedLineBytes, w.slot.log_path));
  w.state = WIFEXITED(status) ? WorkerState::kExited : WorkerState::kSignalled;
  w.held.clear();
  const int exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  const bool failed =
      exit_code != 0 && exit_code != common::kExitStopped && exit_code != common::kExitRequeued;
  Event("worker_exited", common::JsonObject()
                             .Add("rank", w.slot.rank)
                             .Add("status", DescribeWaitStatus(status))
                             .Add("failed", failed));
  Judge(w, now, /*after_window=*/false);
}

void SupervisionPolicy::Judge(Worker& w, Moment now, bool after_window) {
  const std::string how = DescribeWaitStatus(w.status);
  const std::string rank = std::to_string(w.slot.rank);
  const int exit_code = WIFEXITED(w.status) ? WEXITSTATUS(w.status) : -1;
  // 10 and 11 are the trainer's agreed stops (checkpoint written): stopped, or preempted.
  const bool agreed_stop = exit_code == common::kExitStopped || exit_code == common::kExitRequeued;
  if (exit_code == 0 || agreed_stop) {
    Log(PolicyAction::Level::kInfo,
        "worker rank " + rank + " " + how +
            (!agreed_stop                         ? ""
             : exit_code == common::kExitRequeued ? " (checkpointed for a requeue)"
                                                  : " (stopped, checkpointed)"));
    if (agreed_stop && outcome_.code < exit_code && outcome_.code != common::kExitCollateral) {
      outcome_.code = exit_code;
      outcome_.reason = exit_code == common::kExitRequeued
                            ? "workers checkpointed after the preemption signal"
                            : "workers stopped and checkpointed";
    }
    return;
  }
  if (stopping_) {
    // A stop that a worker did not finish cleanly (it crashed, or was killed after the grace
    // period) may have lost its checkpoint: that is a failure, not "stopped, work saved".
    const bool stop_intended =
        outcome_.code == common::kExitStopped || outcome_.code == common::kExitRequeued;
    if (stop_intended && w.saved) {
      Log(PolicyAction::Level::kInfo,
          "worker rank " + rank + " " + how + " while exiting, after it had saved its work");
    } else if (stop_intended && !EndedByStopSignal(w.status)) {
      FailedStop(w, how, now);
    } else {
      Log(PolicyAction::Level::kInfo, "worker rank " + rank + " " + how + " (while stopping)");
    }
    return;
  }
  // A communication error (exit 5) is usually the echo of another rank's failure: its peers see
  // the connection drop within milliseconds. Like a stop signal nobody sent, it waits a moment
  // for the real root cause before it is taken for one.
  const bool echo = exit_code == common::kExitRendezvous;
  if (!after_window && (EndedByStopSignal(w.status) || echo)) {
    if (unjudged_.empty()) judge_at_ = now.steady + options_.stop_signal_window_s;
    unjudged_.push_back(static_cast<int>(&w - workers_.data()));
    w.state = WorkerState::kEndedUnjudged;
    Log(PolicyAction::Level::kWarn,
        "worker rank " + rank + " " + how +
            (echo ? " (a communication error)" : ", a signal this agent did not send") +
            ": waiting " + std::to_string(static_cast<int>(options_.stop_signal_window_s * 1000)) +
            " ms for " + (echo ? "another rank's failure" : "a stop") +
            " before taking it for the root cause");
    return;
  }
  RecordRootCause(w, now);
}

void SupervisionPolicy::FailedStop(Worker& w, const std::string& how, Moment now) {
  const std::string rank = std::to_string(w.slot.rank);
  Log(PolicyAction::Level::kError, "worker rank " + rank + " " + how +
                                       " while stopping: the stop did not complete cleanly, so "
                                       "its work may not be saved");
  outcome_.code = WIFEXITED(w.status) ? common::kExitWorkerFailed : common::kExitWorkerSignaled;
  outcome_.reason = "worker rank " + rank + " " + how + " while stopping";
  if (outcome_.failure) return;
  WorkerFailure failure;
  failure.rank = w.slot.rank;
  failure.host = options_.host;
  failure.node = options_.node;
  failure.status = how + " while stopping";
  failure.time = now.unix;
  failure.log_path = w.slot.log_path;
  failure.last_lines = w.last_lines;
  outcome_.failure = std::move(failure);
}

void SupervisionPolicy::RecordRootCause(Worker& w, Moment now) {
  const std::string how = DescribeWaitStatus(w.status);
  const std::string rank = std::to_string(w.slot.rank);
  Log(PolicyAction::Level::kError,
      "worker rank " + rank + " " + how + ": it is the root cause; stopping the job on every node");
  for (const std::string& line : w.last_lines) {
    Log(PolicyAction::Level::kError, "  rank " + rank + " | " + common::PrintableText(line));
  }
  WorkerFailure failure;
  failure.rank = w.slot.rank;
  failure.host = options_.host;
  failure.node = options_.node;
  failure.pid = w.pid;
  failure.status = how;
  if (WIFEXITED(w.status)) {
    failure.exit_code = WEXITSTATUS(w.status);
  } else {
    failure.signal = WTERMSIG(w.status);
    failure.signal_name = SignalName(WTERMSIG(w.status));
  }
  failure.time = w.state == WorkerState::kEndedUnjudged ? w.ended_unix : now.unix;
  failure.log_path = w.slot.log_path;
  failure.last_lines = w.last_lines;
  outcome_.failure = std::move(failure);
  PolicyAction notify;
  notify.kind = PolicyAction::Kind::kNotify;
  notify.notice = {Notice::Kind::kFailure, w.slot.rank, options_.host, how, options_.agent};
  actions_.push_back(std::move(notify));
  BeginStop(WIFEXITED(w.status) ? common::kExitWorkerFailed : common::kExitWorkerSignaled,
            "worker rank " + rank + " " + how, now);
}

void SupervisionPolicy::OnNotice(const Notice& notice, Moment now) {
  const std::string who = notice.Describe();
  Log(PolicyAction::Level::kWarn, "notice from another agent: " + who);
  Event("notice", common::JsonObject().Add("from", who));
  // A stop asked for on any node is the job's stop (10), not a failure elsewhere (12).
  BeginStop(notice.kind == Notice::Kind::kStop ? common::kExitStopped : common::kExitCollateral,
            "stopped because " + who, now);
}

void SupervisionPolicy::OnTick(Moment now) {
  for (Worker& w : workers_) {
    if (!Running(w) || w.held.empty()) continue;
    std::vector<int> still;
    for (int sig : w.held) {
      if (ReadyFor(w, sig, now)) {
        Signal(w, sig);
      } else {
        still.push_back(sig);
      }
    }
    w.held.swap(still);
  }
  if (!unjudged_.empty() && (stopping_ || now.steady >= judge_at_)) {
    // While stopping they are part of the stop; otherwise the first is the root cause.
    std::vector<int> late;
    late.swap(unjudged_);
    for (int index : late) {
      Worker& w = workers_[static_cast<size_t>(index)];
      Judge(w, now, /*after_window=*/true);
      w.state = WIFEXITED(w.status) ? WorkerState::kExited : WorkerState::kSignalled;
    }
  }
  if (stopping_ && !killed_ && now.steady >= kill_at_) {
    killed_ = true;
    for (Worker& w : workers_) {
      if (!Running(w) || w.state == WorkerState::kKillSent) continue;
      Log(PolicyAction::Level::kWarn, "worker rank " + std::to_string(w.slot.rank) +
                                          " still running after the grace period: SIGKILL");
      Signal(w, SIGKILL);
    }
  }
  bool all_ended = unjudged_.empty();
  for (const Worker& w : workers_) all_ended = all_ended && !Running(w);
  if (all_ended && !entered_done_) {
    entered_done_ = true;
    PolicyAction done;
    done.kind = PolicyAction::Kind::kEnterDone;
    actions_.push_back(std::move(done));
    if (options_.agents > 1) {
      Log(PolicyAction::Level::kInfo,
          "this node's workers have ended; waiting for the other agents");
    }
  }
}

AttemptOutcome SupervisionPolicy::Finish() const {
  AttemptOutcome out = outcome_;
  out.workers.clear();
  for (const Worker& w : workers_) {
    if (w.state == WorkerState::kNotStarted || w.state == WorkerState::kFailedToStart) continue;
    out.workers.push_back({w.slot.rank, w.pid, DescribeWaitStatus(w.status)});
  }
  if (out.reason.empty()) out.reason = "all workers of this node exited with code 0";
  return out;
}

}  // namespace runner

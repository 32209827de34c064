// SupervisionPolicy's answer to the stop requests that reach this agent itself (SIGTERM, SIGINT,
// SIGHUP, SIGQUIT), once and again (runner/supervision_policy.h has the rules).

#include <csignal>

#include "common/exit_codes.h"
#include "runner/process.h"
#include "runner/supervision_policy.h"

namespace runner {

void SupervisionPolicy::OnTerminate(int signal, Moment now) {
  const std::string name = SignalName(signal);
  Event("signal", common::JsonObject().Add("signal", name));
  ++own_terminates_;
  if (!stopping_) {
    PolicyAction notify;
    notify.kind = PolicyAction::Kind::kNotify;
    notify.notice = {Notice::Kind::kStop, -1, options_.host, "received " + name, options_.agent};
    actions_.push_back(std::move(notify));
    BeginStop(common::kExitStopped, "this agent received " + name, now);
  } else if (own_terminates_ == 1) {
    // Already stopping (another agent's notice, or a failure): this is the same stop reaching
    // this agent too, not an impatient second request.
    Log(PolicyAction::Level::kInfo, "received " + name + " while already stopping");
  } else if (!killed_ && !escalated_) {
    Log(PolicyAction::Level::kWarn, "received " + name +
                                        " again while stopping: killing the workers that have "
                                        "not finished now");
    escalated_ = true;
    KillUnfinished();
  }
}

void SupervisionPolicy::KillUnfinished() {
  for (Worker& w : workers_) {
    if (!Running(w) || w.state == WorkerState::kKillSent) continue;
    const std::string rank = std::to_string(w.slot.rank);
    if (w.saved) {
      Log(PolicyAction::Level::kInfo, "worker rank " + rank +
                                          " has saved its work and is exiting: left to finish "
                                          "(SIGKILL only when the grace period ends)");
    } else {
      Log(PolicyAction::Level::kWarn, "worker rank " + rank + " has not finished: SIGKILL");
      Signal(w, SIGKILL);
    }
  }
}

void SupervisionPolicy::OnWorkSaved(int worker) {
  Worker& w = workers_.at(static_cast<size_t>(worker));
  if (Running(w)) w.saved = true;
}

}  // namespace runner

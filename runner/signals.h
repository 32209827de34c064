#pragma once
// Signal discipline for the agent. From the start (InstallStartupSignalHandlers) the stop signals
// only set a flag, nothing is blocked: the runner checks its config and environment, reports an
// error it finds there first, and else ends at once with kExitStopped (StopIfRequested). Once the
// agent runs (InstallSignalHandlers) the handled signals stay blocked except while the wait loop
// sleeps in ppoll(2) with WaitMask(); handlers only set flags, the loop acts on them.
// Install before MPI starts its threads, so they inherit the blocked mask.

#include <signal.h>

namespace runner {

struct PendingSignals {
  bool terminate = false;  // SIGTERM, SIGINT, SIGHUP or SIGQUIT
  int terminate_signal = 0;
  bool usr1 = false;
  bool usr2 = false;
  bool child = false;  // SIGCHLD
};

// Handlers that set flags; blocks nothing (config and environment checks).
void InstallStartupSignalHandlers();
// The supervision's discipline: blocks the handled signals (see WaitMask).
void InstallSignalHandlers();
// The stop signal received so far, or pending while blocked (0: none); does not clear it.
[[nodiscard]] int StopSignalReceived();
// Throws common::Error(kExitStopped) naming the signal and `phase` when a stop signal came. The
// waits before the supervision loop (the TCP rendezvous) call it, so a stop ends them at once.
void StopIfRequested(const char* phase);
// The mask to sleep with: the original mask without the handled signals.
[[nodiscard]] const sigset_t& WaitMask();
// Takes (and clears) what arrived since the last call.
[[nodiscard]] PendingSignals TakeSignals();

}  // namespace runner

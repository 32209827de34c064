#pragma once
// Signal discipline for the agent: the handled signals stay blocked except while the wait loop
// sleeps in ppoll(2) with WaitMask(); handlers only set flags, the loop acts on them.
// Install before MPI starts its threads, so they inherit the blocked mask.

#include <signal.h>

namespace runner {

struct PendingSignals {
  bool terminate = false;  // SIGTERM, SIGINT or SIGHUP
  int terminate_signal = 0;
  bool usr1 = false;
  bool usr2 = false;
  bool child = false;  // SIGCHLD
};

void InstallSignalHandlers();
// The mask to sleep with: the original mask without the handled signals.
[[nodiscard]] const sigset_t& WaitMask();
// Takes (and clears) what arrived since the last call.
[[nodiscard]] PendingSignals TakeSignals();

}  // namespace runner

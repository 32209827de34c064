#pragma once
// The trainer's signals: SIGTERM/SIGINT/SIGHUP ask it to stop, the preempt signal (SIGUSR1 or
// SIGUSR2, launch.preempt_signal) to checkpoint for a requeue. Handlers only set flags; the
// training loop reads them at step boundaries, where the ranks agree on them. Receiving one twice
// (from Slurm and relayed by the runner) is the same as once.

namespace trainer {

struct StopRequests {
  bool stop = false;
  bool preempt = false;
};

// preempt_signal: "USR1" or "USR2". The other of the two (the runner relays both) is ignored by
// design, with a line on stderr (the rank log) saying so. Also ignores SIGXFSZ, so a file-size
// limit is an error to report, not a crash.
void InstallStopHandlers(const char* preempt_signal);
[[nodiscard]] StopRequests PendingStops();

}  // namespace trainer

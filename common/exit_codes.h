#pragma once
// Every exit code the runner and the trainer can end with, in one place.
//
// The values are ordered so that Slurm's "highest exit code wins" rule (srun, sbatch) reports the
// root cause of a failed job: a worker's own failure outranks the collateral stops of the agents
// that only shut down because of it, and every failure outranks a clean stop.
// README.md ("Exit codes") documents the same table; keep them in step.

namespace common {

enum ExitCode : int {
  kExitOk = 0,
  // Every worker succeeded, but lines of the job's logs could not be written (a full or failing
  // disk under job.log_root; outcome.json's log_write_errors says which files and how much). The
  // lowest code: anything else that went wrong outranks it, and it is given only when the agreed
  // code would have been 0. Not 0, so a pipeline that checks the code learns the logs have gaps.
  kExitLogsIncomplete = 1,
  kExitUsage = 2,          // bad command line: unknown flag, malformed key=value override
  kExitConfig = 3,         // bad job config: file, environment override or command-line override
  kExitEnvironment = 4,    // scheduler environment missing, malformed or contradictory
  kExitRendezvous = 5,     // agents or workers could not meet (MPI, store, timeouts)
  kExitDiverged = 6,       // training diverged: the loss became NaN or infinite
  kExitStopped = 10,       // stopped on request (SIGTERM/SIGINT), work saved
  kExitRequeued = 11,      // preempted and requeued; the job will come back by itself
  kExitCollateral = 12,    // stopped because a worker or an agent elsewhere failed
  kExitHung = 13,          // no rank advanced for launch.hang_timeout_s: judged hung, stacks saved
  kExitWorkerFailed = 20,  // a worker of this node exited non-zero (the root cause)
  kExitWorkerSignaled = 21,  // a worker of this node was killed by a signal (the root cause)
  kExitInternal = 70,        // a bug: an invariant did not hold; please report it
};

// A one-line description of `code` for logs and --help ("config error").
const char* ExitCodeName(int code);

}  // namespace common

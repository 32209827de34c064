#pragma once
// One attempt of this agent's workers: start them, copy their output into rank-<R>.log, and watch
// them until they have all ended. Fail-fast: the first worker that exits non-zero or by a signal
// is the root cause; the other local workers are stopped (SIGTERM, the grace period, SIGKILL) and
// every other agent is told, which stops theirs. SIGTERM/SIGINT/SIGHUP to the agent stop the
// workers the same way (and the other agents); SIGUSR1/SIGUSR2 are relayed to the workers.
// No process of a worker's process group outlives the attempt.

#include <spdlog/logger.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "runner/control_plane.h"
#include "runner/job_dir.h"
#include "runner/worker_env.h"

namespace runner {

struct WorkerLaunch {
  WorkerContract contract;
  std::vector<std::string> argv;
  std::string log_path;  // rank-<R>.log
};

struct SupervisorOptions {
  double grace_period_s = 15;
  std::string shim;  // the runner executable (exec shim); "" runs workers directly
  std::string host;
  int agent = 0;
  int node = 0;
};

// What one agent saw in one attempt.
struct AttemptOutcome {
  int code = 0;        // common::ExitCode: 0, 10 stopped, 12 collateral, 20, 21
  std::string reason;  // one line for people
  // The root cause when it was on this node: which rank, how it ended, when, its last lines.
  std::optional<std::string> failure_json;
  double failure_time = 0;   // Unix seconds, to find the first failure across nodes
  std::string workers_json;  // [{"rank":..,"pid":..,"status":..}, ...]
};

class Supervisor {
 public:
  Supervisor(ControlPlane& control, spdlog::logger& log, const JobDir& job_dir,
             SupervisorOptions options)
      : control_(control), log_(log), job_dir_(job_dir), options_(std::move(options)) {}

  // Runs the attempt to its end (all local workers reaped, every agent done) and returns what
  // happened here. Throws common::Error only when workers cannot be started at all.
  [[nodiscard]] AttemptOutcome RunAttempt(int attempt, const std::vector<WorkerLaunch>& workers,
                                          const std::map<std::string, std::string>& agent_env);

 private:
  ControlPlane& control_;
  spdlog::logger& log_;
  const JobDir& job_dir_;
  SupervisorOptions options_;
};

}  // namespace runner

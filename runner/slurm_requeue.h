#pragma once
// Slurm's requeue, after the workers checkpointed on the preemption signal: the node-0 agent runs
// `scontrol requeue <job>` (array-aware) when launch.requeue allows, and every agent returns the
// same code: 11 when the job will come back, else 10 (stopped, checkpoint written).

#include <spdlog/logger.h>

#include <functional>
#include <string>

#include "common/json.h"
#include "runner/job_dir.h"
#include "runner/launch_env.h"

namespace runner {

// The job to requeue: "<array job>_<task>" for an array task, else the job id; "" when the job
// is not a Slurm job (its id did not come from SLURM_JOB_ID).
[[nodiscard]] std::string RequeueTarget(const LaunchEnvironment& launch);

struct RequeueRequest {
  bool enabled = false;  // launch.requeue
  std::string target;    // RequeueTarget
  bool node_zero = false;
  std::function<common::JsonObject(const std::string&)> event;  // an events.jsonl line
};

// Returns kExitRequeued or kExitStopped for this agent (only node 0's answer counts; the caller
// broadcasts it).
[[nodiscard]] int RequeueSlurmJob(const RequeueRequest& request, spdlog::logger& log,
                                  const JobDir& dir);

}  // namespace runner

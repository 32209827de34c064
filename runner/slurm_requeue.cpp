#include "runner/slurm_requeue.h"

#include <unistd.h>

#include <chrono>
#include <csignal>

#include "common/environment.h"
#include "common/errors.h"
#include "common/exit_codes.h"
#include "runner/process.h"

namespace runner {

namespace {

// Runs `scontrol requeue target` for at most 30 s; returns its wait status (-1: did not finish)
// and its output.
int RunScontrol(const std::string& target, std::string* output) {
  // scontrol signals this job's tasks (this agent included) as part of the requeue: the handlers
  // only set flags now, and nothing is left to stop.
  SpawnRequest request{{"scontrol", "requeue", target}, {}, ""};
  for (const auto& [name, value] : common::ProcessEnvironment().All()) request.env[name] = value;
  int status = -1;
  try {
    ChildProcess child = ChildProcess::Spawn(request);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    char buffer[4096];
    while (!child.TryReap(&status)) {
      ssize_t n = child.output_fd() >= 0 ? read(child.output_fd(), buffer, sizeof(buffer)) : 0;
      if (n > 0) output->append(buffer, static_cast<size_t>(n));
      if (std::chrono::steady_clock::now() > deadline) {
        child.Signal(SIGKILL);
        *output += " (timed out after 30 s)";
        status = -1;
        break;
      }
      usleep(20000);
    }
  } catch (const common::Error& e) {
    *output = e.what();
  }
  while (!output->empty() && output->back() == '\n') output->pop_back();
  return status;
}

}  // namespace

std::string RequeueTarget(const LaunchEnvironment& launch) {
  if (launch.job_id.source != "SLURM_JOB_ID") return "";
  if (launch.array_job_id) return launch.array_job_id->value + "_" + launch.array_task_id->value;
  return launch.job_id.value;
}

int RequeueSlurmJob(const RequeueRequest& request, spdlog::logger& log, const JobDir& dir) {
  if (!request.enabled || request.target.empty()) {
    log.warn("workers checkpointed after the preemption signal; not requeueing ({})",
             request.enabled ? "not a Slurm job" : "launch.requeue is false");
    return common::kExitStopped;
  }
  if (!request.node_zero) return common::kExitRequeued;
  std::string output;
  const int status = RunScontrol(request.target, &output);
  if (status == 0) {
    log.warn("requeued Slurm job {} (scontrol requeue); it resumes from {}/checkpoints/latest",
             request.target, dir.path());
    dir.AppendEvent(request.event("requeue").Add("job", request.target));
    return common::kExitRequeued;
  }
  log.error(
      "scontrol requeue {} failed ({}): {}; the checkpoint is written, resubmit the job to resume",
      request.target, status < 0 ? std::string("did not finish") : DescribeWaitStatus(status),
      output);
  dir.AppendEvent(request.event("requeue_failed").Add("job", request.target).Add("output", output));
  return common::kExitStopped;
}

}  // namespace runner

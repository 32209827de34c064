#pragma once
// Small facts the agent needs while it sets up a job: the job token and a local job id, a name
// safe for a directory, where the bundled trainer is, and the scheduler variables the manifest
// records (secret-looking names redacted), and where node 0 writes outcome.json.

#include <spdlog/logger.h>

#include <cstddef>
#include <map>
#include <string>

#include "common/config.h"
#include "common/log_writer.h"
#include "runner/launch_env.h"
#include "runner/rendezvous.h"

namespace runner {

// `bytes` random bytes from /dev/urandom as hex. Throws common::EnvironmentError without it.
[[nodiscard]] std::string RandomHex(size_t bytes);
// A job id when the scheduler gives none: sortable local time plus randomness.
[[nodiscard]] std::string LocalJobId();
// A name safe for a directory: what is not [A-Za-z0-9._-] becomes '_', and so does a leading '.'
// (no hidden directory, never "." or ".."); "" becomes "job".
[[nodiscard]] std::string SafeName(const std::string& name);

// The job directory's <name> and <id> (<log_root>/<name>-<id>), one rule for `--dry-run` and the
// run itself: `configured_name` (job.name, checked when the config loaded) when set, else the
// scheduler's name (SLURM_JOB_NAME) made safe (SafeName) and cut to kMaxJobNameLength bytes, else
// "job"; the scheduler's id (SLURM_JOB_ID, TORCHELASTIC_RUN_ID) made safe and cut to
// kMaxJobIdLength bytes, "" when there is none (the node-0 agent picks one at the rendezvous).
struct JobDirNames {
  std::string name;
  std::string id;
};
[[nodiscard]] JobDirNames ResolveJobDirNames(const std::string& configured_name,
                                             const std::string& scheduler_name,
                                             const std::string& scheduler_id);
// The trainer next to the runner (installed) or in the build tree. Throws
// common::EnvironmentError naming both places when neither has it.
[[nodiscard]] std::string TrainerPath();
// The SLURM_/NCCL_/CUDA_/OMPI_/PMIX_/TORCH/OMP_/MASTER_ variables as a JSON object.
[[nodiscard]] std::string EnvironmentJson(const std::map<std::string, std::string>& env);

// The rank logs' writer from job.log_buffer_mib and job.log_flush_timeout_s.
[[nodiscard]] common::LogWriterOptions LogWriterOptionsFrom(const common::Config& config);

// manifest.json's `nodes`: each node's index, host and worker count, as a JSON array.
[[nodiscard]] std::string NodesJson(const Layout& layout);

// This agent's log file name in the attempt directory: runner-<host>.log, with the agent's index
// among its node's agents when the node has more than one.
[[nodiscard]] std::string RunnerLogName(const AgentPlace& place, const std::string& host);

class JobDir;
// Node 0: outcome.json (`json`) in the attempt's directory and in the job's. A full or failing
// disk must not lose how the job ended: the error and the JSON go to `log` instead.
void WriteOutcomeFiles(const JobDir& dir, int attempt, const std::string& json,
                       spdlog::logger& log);

class ControlPlane;
// The control plane's world against the scheduler's view (agent count, this agent's rank).
// Throws common::EnvironmentError naming both and the likely launch mistake.
void CheckWorld(const ControlPlane& control, const LaunchEnvironment& launch);

}  // namespace runner

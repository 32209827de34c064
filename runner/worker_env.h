#pragma once
// The worker contract: torchrun's environment variables plus the runner's own, built from the
// agent's environment with the MPI runtime's variables scrubbed (a worker must never believe it
// is an MPI rank) and the RUNNER_<SECTION>__<KEY> overrides removed (job.yaml already holds the
// resolved config).

#include <map>
#include <string>

namespace runner {

struct WorkerContract {
  int rank = 0;
  int local_rank = 0;
  int world_size = 1;
  int local_world_size = 1;
  int node_rank = 0;
  int node_count = 1;
  std::string master_addr;
  int master_port = 0;
  int restart_count = 0;  // TORCHELASTIC_RESTART_COUNT: the attempt number
  int max_restarts = 0;
  std::string run_id;  // the job id
  std::string job_dir;
  std::string attempt_dir;
  std::string config_path;  // job.yaml
  std::string token;        // random per job
  std::string device;       // CUDA_VISIBLE_DEVICES; "" on CPU (then the variable is removed)
  int omp_threads = 1;      // used only when OMP_NUM_THREADS is not set already
};

[[nodiscard]] std::map<std::string, std::string> BuildWorkerEnv(
    const std::map<std::string, std::string>& agent_env, const WorkerContract& contract);

// True for variables that belong to the MPI runtime (OMPI_*, PMIX_*, PMI_*, ORTE_*, PRTE_*).
[[nodiscard]] bool IsMpiRuntimeVariable(const std::string& name);

}  // namespace runner

#include "runner/worker_env.h"

#include "common/config_schema.h"

namespace runner {

bool IsMpiRuntimeVariable(const std::string& name) {
  for (const char* prefix : {"OMPI_", "PMIX_", "PMI_", "ORTE_", "PRTE_", "OPAL_"}) {
    if (name.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

std::map<std::string, std::string> BuildWorkerEnv(
    const std::map<std::string, std::string>& agent_env, const WorkerContract& c) {
  std::map<std::string, std::string> env;
  for (const auto& [name, value] : agent_env) {
    if (IsMpiRuntimeVariable(name)) continue;
    if (name.rfind(common::kEnvPrefix, 0) == 0 && name.find("__") != std::string::npos) continue;
    env[name] = value;
  }
  env["RANK"] = std::to_string(c.rank);
  env["LOCAL_RANK"] = std::to_string(c.local_rank);
  env["WORLD_SIZE"] = std::to_string(c.world_size);
  env["LOCAL_WORLD_SIZE"] = std::to_string(c.local_world_size);
  env["GROUP_RANK"] = std::to_string(c.node_rank);
  env["NODE_RANK"] = std::to_string(c.node_rank);
  env["GROUP_WORLD_SIZE"] = std::to_string(c.node_count);
  env["ROLE_NAME"] = "default";
  env["ROLE_RANK"] = std::to_string(c.rank);
  env["ROLE_WORLD_SIZE"] = std::to_string(c.world_size);
  env["MASTER_ADDR"] = c.master_addr;
  env["MASTER_PORT"] = std::to_string(c.master_port);
  env["TORCHELASTIC_USE_AGENT_STORE"] = "True";
  env["TORCHELASTIC_RESTART_COUNT"] = std::to_string(c.restart_count);
  env["TORCHELASTIC_MAX_RESTARTS"] = std::to_string(c.max_restarts);
  env["TORCHELASTIC_RUN_ID"] = c.run_id;
  env["RUNNER_JOB_DIR"] = c.job_dir;
  env["RUNNER_ATTEMPT_DIR"] = c.attempt_dir;
  env["RUNNER_CONFIG"] = c.config_path;
  env["RUNNER_JOB_TOKEN"] = c.token;
  if (c.device.empty()) {
    // A CPU worker sees no GPU, whatever the agent saw.
    env["CUDA_VISIBLE_DEVICES"] = "";
  } else {
    env["CUDA_VISIBLE_DEVICES"] = c.device;
  }
  if (!env.count("OMP_NUM_THREADS")) env["OMP_NUM_THREADS"] = std::to_string(c.omp_threads);
  // Spinning OpenMP threads fight BLAS threads and the other workers for cores: on 2 cores the
  // CNN ran 10x slower with 2 threads and the default (active) policy (bench/README.md).
  if (!env.count("OMP_WAIT_POLICY")) env["OMP_WAIT_POLICY"] = "PASSIVE";
  // Python workers: lines reach rank-<R>.log as they are printed, not at exit.
  if (!env.count("PYTHONUNBUFFERED")) env["PYTHONUNBUFFERED"] = "1";
  return env;
}

}  // namespace runner

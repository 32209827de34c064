#include "runner/worker_env.h"

#include "common/config_schema.h"

namespace runner {

bool IsMpiRuntimeVariable(const std::string& name) {
  for (const char* prefix : {"OMPI_", "PMIX_", "PMI_", "ORTE_", "PRTE_", "OPAL_"}) {
    if (name.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

void AddNcclDiagnostics(const std::string& attempt_dir, std::map<std::string, std::string>& env) {
  // A failed or timed-out NCCL collective aborts the communicator and ends the process (instead
  // of leaving it hung), and the flight recorder's record of the last collectives is dumped on a
  // timeout, into the job directory (PyTorch's default is /tmp on the node, lost with it).
  const std::map<std::string, std::string> defaults = {
      {"TORCH_NCCL_ASYNC_ERROR_HANDLING", "1"},
      {"TORCH_NCCL_TRACE_BUFFER_SIZE", "2000"},
      {"TORCH_NCCL_DUMP_ON_TIMEOUT", "1"},
      {"TORCH_NCCL_DEBUG_INFO_TEMP_FILE", attempt_dir + "/diagnosis/nccl_trace_rank_"},
  };
  for (const auto& [name, value] : defaults) {
    if (!env.count(name) && !(name == "TORCH_NCCL_DEBUG_INFO_TEMP_FILE" && attempt_dir.empty()))
      env[name] = value;
  }
}

std::map<std::string, std::string> BuildWorkerEnv(
    const std::map<std::string, std::string>& agent_env, const WorkerContract& c) {
  std::map<std::string, std::string> env;
  for (const auto& [name, value] : agent_env) {
    if (IsMpiRuntimeVariable(name)) continue;
    if (name.rfind(common::kEnvPrefix, 0) == 0 && name.find("__") != std::string::npos) continue;
    env[name] = value;
  }
  common::WriteContract(c, env);
  if (!env.count("OMP_NUM_THREADS")) env["OMP_NUM_THREADS"] = std::to_string(c.omp_threads);
  // Spinning OpenMP threads fight BLAS threads and the other workers for cores: on 2 cores the
  // CNN ran 10x slower with 2 threads and the default (active) policy (bench/README.md).
  if (!env.count("OMP_WAIT_POLICY")) env["OMP_WAIT_POLICY"] = "PASSIVE";
  // Python workers: lines reach rank-<R>.log as they are printed, not at exit.
  if (!env.count("PYTHONUNBUFFERED")) env["PYTHONUNBUFFERED"] = "1";
  if (!c.device.empty()) AddNcclDiagnostics(c.attempt_dir, env);
  return env;
}

}  // namespace runner

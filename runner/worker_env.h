#pragma once
// A worker's environment: the agent's own, with the MPI runtime's variables scrubbed (a worker
// must never believe it is an MPI rank) and the RUNNER_<SECTION>__<KEY> overrides removed
// (job.yaml already holds the resolved config), then the worker contract
// (common/worker_contract.h) and the runner's thread defaults on top.

#include <map>
#include <string>

#include "common/worker_contract.h"

namespace runner {

// The contract plus what only the runner decides: the worker's OpenMP thread default.
struct WorkerContract : common::WorkerContract {
  int omp_threads = 1;  // used only when OMP_NUM_THREADS is not set already
};

[[nodiscard]] std::map<std::string, std::string> BuildWorkerEnv(
    const std::map<std::string, std::string>& agent_env, const WorkerContract& contract);

// GPU workers: NCCL's asynchronous error handling and flight recorder, the dumps written to
// <attempt_dir>/diagnosis/nccl_trace_rank_<R> (the variables a user set are kept).
void AddNcclDiagnostics(const std::string& attempt_dir, std::map<std::string, std::string>& env);

// True for variables that belong to the MPI runtime (OMPI_*, PMIX_*, PMI_*, ORTE_*, PRTE_*).
[[nodiscard]] bool IsMpiRuntimeVariable(const std::string& name);

}  // namespace runner

#pragma once
// What the scheduler says about this agent, read strictly from the environment.
//
// One precedence chain (docs/ARCHITECTURE.md, "Environments"):
//   1. OpenMPI's mpirun (OMPI_COMM_WORLD_SIZE set): identity from OMPI_COMM_WORLD_*; inside a Slurm
//      allocation mpirun's ranks all see SLURM_PROCID=0, so only job-level facts come from SLURM_*.
//   2. Slurm (SLURM_JOB_ID set): identity from SLURM_PROCID/NODEID/LOCALID, the step's nodelist and
//      tasks per node (SLURM_STEP_* inside srun, the job's otherwise).
//   3. torchrun-style (NNODES or NODE_RANK set): one agent per node, MASTER_ADDR/MASTER_PORT given.
//   4. Nothing: a single agent on this machine.
// Identity is never defaulted: a missing or malformed variable throws common::EnvironmentError that
// names the variable and its raw value; contradictions (nodelist length vs node count, the sum of
// tasks per node vs the task count, an id out of range) are errors too. Every value records the
// variable it came from, for `runner --dry-run` and the manifest.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/environment.h"

namespace runner {

enum class Scheduler { kOpenMpi, kSlurm, kTorchrun, kLocal };
[[nodiscard]] const char* SchedulerName(Scheduler scheduler);

template <typename T>
struct Sourced {
  T value{};
  std::string source;  // "SLURM_PROCID", "hostname", "single-node fallback", ...
};

// Facts about this machine that are not in the environment (a fake in tests).
struct HostFacts {
  std::string hostname;
  int nvidia_device_files = 0;  // /dev/nvidia<N> count; the runner never touches CUDA itself
  int online_cpus = 1;
};

struct LaunchEnvironment {
  Scheduler scheduler = Scheduler::kLocal;
  std::string reason;  // why this scheduler was chosen, for --dry-run

  Sourced<std::string> job_id;    // "" when the node-0 agent picks one at rendezvous
  Sourced<std::string> job_name;  // "" when the scheduler gives none

  Sourced<int> agent_rank;  // this agent among all agents
  Sourced<int> agent_count;
  Sourced<int> local_agent_rank;  // this agent among the agents on its host
  Sourced<int> local_agent_count;
  // Known before the rendezvous under Slurm, torchrun-style and local; nullopt under mpirun.
  std::optional<Sourced<int>> node_rank;
  std::optional<Sourced<int>> node_count;
  std::optional<Sourced<std::vector<std::string>>> hosts;  // one per node, node order
  std::optional<Sourced<std::vector<int>>> agents_per_node;

  std::optional<Sourced<std::string>> master_addr;  // torchrun-style only
  std::optional<Sourced<int>> master_port;

  std::string hostname;
  // GPUs visible to this node's agents as CUDA_VISIBLE_DEVICES names them; empty: CPU only.
  Sourced<std::vector<std::string>> devices;
  std::optional<Sourced<int>> cpus_per_task;
  int online_cpus = 1;

  Sourced<int> restart_count;                    // 0 unless requeued/restarted
  std::optional<Sourced<int64_t>> job_end_time;  // Unix seconds (SLURM_JOB_END_TIME)
  std::optional<Sourced<std::string>> array_job_id;
  std::optional<Sourced<std::string>> array_task_id;

  std::vector<std::string> warnings;  // odd but not fatal; printed and logged
};

[[nodiscard]] LaunchEnvironment DetectLaunchEnvironment(const common::Environment& env,
                                                        const HostFacts& host);

// The command line's torchrun-style flags: --nnodes N, --node-rank R, --master HOST:PORT.
struct LaunchFlags {
  std::optional<std::string> nnodes;
  std::optional<std::string> node_rank;
  std::optional<std::string> master;
};

// DetectLaunchEnvironment with the flags laid over NNODES, NODE_RANK, MASTER_ADDR and
// MASTER_PORT; the values they gave name the flag as their source. Throws common::UsageError for
// a --master without HOST:PORT, and for flags given to an agent srun or mpirun started.
[[nodiscard]] LaunchEnvironment DetectLaunchEnvironment(const common::Environment& env,
                                                        const HostFacts& host,
                                                        const LaunchFlags& flags);

// The real machine's facts (hostname, /dev/nvidia* count, online CPUs).
[[nodiscard]] HostFacts ReadHostFacts();

}  // namespace runner

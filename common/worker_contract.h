#pragma once
// The worker contract: what the runner tells each worker through its environment (torchrun's
// variables plus the runner's own), written by the runner (WriteContract) and read by the
// trainer (ReadContract). The variable names are declared once, here.
//
// Reading is strict: a worker never guesses its identity. A variable that is set must parse, and
// the error names it with its raw value. With none of RANK, WORLD_SIZE, MASTER_ADDR set the
// reader returns a standalone contract (world of one, no process group), handy for a quick check
// on a laptop.

#include <map>
#include <string>

#include "common/environment.h"

namespace common {

// The contract's environment variables.
namespace contract_env {
inline constexpr char kRank[] = "RANK";                        // global rank, 0..WORLD_SIZE-1
inline constexpr char kLocalRank[] = "LOCAL_RANK";             // rank on this node
inline constexpr char kWorldSize[] = "WORLD_SIZE";             // workers in the job
inline constexpr char kLocalWorldSize[] = "LOCAL_WORLD_SIZE";  // workers on this node
inline constexpr char kGroupRank[] = "GROUP_RANK";             // node index (torchrun's name)
inline constexpr char kNodeRank[] = "NODE_RANK";               // node index, read first
inline constexpr char kGroupWorldSize[] = "GROUP_WORLD_SIZE";  // nodes in the job
inline constexpr char kRoleName[] = "ROLE_NAME";               // always "default"
inline constexpr char kRoleRank[] = "ROLE_RANK";               // = RANK (one role)
inline constexpr char kRoleWorldSize[] = "ROLE_WORLD_SIZE";    // = WORLD_SIZE (one role)
inline constexpr char kMasterAddr[] = "MASTER_ADDR";           // the job's store (c10d TCPStore)
inline constexpr char kMasterPort[] = "MASTER_PORT";
inline constexpr char kUseAgentStore[] = "TORCHELASTIC_USE_AGENT_STORE";  // always "True"
inline constexpr char kRestartCount[] = "TORCHELASTIC_RESTART_COUNT";     // the attempt number
inline constexpr char kMaxRestarts[] = "TORCHELASTIC_MAX_RESTARTS";
inline constexpr char kRunId[] = "TORCHELASTIC_RUN_ID";      // the job id
inline constexpr char kJobDir[] = "RUNNER_JOB_DIR";          // the job directory
inline constexpr char kAttemptDir[] = "RUNNER_ATTEMPT_DIR";  // this attempt's directory
inline constexpr char kConfig[] = "RUNNER_CONFIG";           // the resolved job.yaml
inline constexpr char kJobToken[] = "RUNNER_JOB_TOKEN";      // random per job
// The pid of the node's first agent: it owns the node's shared-memory segment names
// (common/shm_name.h), so a name whose agent is gone can be removed.
inline constexpr char kNodeAgentPid[] = "RUNNER_NODE_AGENT_PID";
inline constexpr char kDevices[] = "CUDA_VISIBLE_DEVICES";  // the worker's GPU; "" on CPU
}  // namespace contract_env

struct WorkerContract {
  bool standalone = false;  // read only: no contract variables at all (the writer never sets it)
  int rank = 0;
  int local_rank = 0;
  int world_size = 1;
  int local_world_size = 1;
  int node_rank = 0;
  int node_count = 1;  // GROUP_WORLD_SIZE
  std::string master_addr;
  int master_port = 0;
  int restart_count = 0;  // TORCHELASTIC_RESTART_COUNT: the attempt number
  int max_restarts = 0;
  std::string run_id;       // the job id
  std::string job_dir;      // "" when not under the runner
  std::string attempt_dir;  // where rank 0 writes train.log and friends
  std::string config_path;  // job.yaml
  std::string token;        // random per job
  int node_agent_pid = 0;   // RUNNER_NODE_AGENT_PID; 0: not set (not under the runner)
  std::string device;       // CUDA_VISIBLE_DEVICES; "" on CPU (a CPU worker sees no GPU)
};

// Sets every contract variable in `env` (replacing what was there).
void WriteContract(const WorkerContract& contract, std::map<std::string, std::string>& env);

// Reads the contract. Throws common::EnvironmentError naming the variable (and its raw value)
// when one is missing, malformed or out of range.
[[nodiscard]] WorkerContract ReadContract(const Environment& env);

}  // namespace common

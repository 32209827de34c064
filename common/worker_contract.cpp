#include "common/worker_contract.h"

#include <optional>

#include "common/errors.h"
#include "common/parse_int.h"

namespace common {

namespace {

namespace v = contract_env;

int RequireInt(const Environment& env, const std::string& name, int min, int max) {
  std::optional<std::string> text = env.Get(name);
  if (!text) {
    throw EnvironmentError(name +
                           " is not set; the trainer needs the worker contract "
                           "(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) "
                           "together: start it with the runner, or set none of them to "
                           "train alone");
  }
  std::optional<int64_t> value = ParseInt64(*text);
  if (!value || *value < min || *value > max) {
    throw EnvironmentError(name + "='" + *text + "' is not an integer in " + std::to_string(min) +
                           ".." + std::to_string(max));
  }
  return static_cast<int>(*value);
}

// The variables torchrun and the runner set but a worker can do without: strict when set.
int OptionalInt(const Environment& env, const std::string& name, int min, int max, int unset) {
  return env.Get(name) ? RequireInt(env, name, min, max) : unset;
}

}  // namespace

void WriteContract(const WorkerContract& c, std::map<std::string, std::string>& env) {
  env[v::kRank] = std::to_string(c.rank);
  env[v::kLocalRank] = std::to_string(c.local_rank);
  env[v::kWorldSize] = std::to_string(c.world_size);
  env[v::kLocalWorldSize] = std::to_string(c.local_world_size);
  env[v::kGroupRank] = std::to_string(c.node_rank);
  env[v::kNodeRank] = std::to_string(c.node_rank);
  env[v::kGroupWorldSize] = std::to_string(c.node_count);
  env[v::kRoleName] = "default";
  env[v::kRoleRank] = std::to_string(c.rank);
  env[v::kRoleWorldSize] = std::to_string(c.world_size);
  env[v::kMasterAddr] = c.master_addr;
  env[v::kMasterPort] = std::to_string(c.master_port);
  env[v::kUseAgentStore] = "True";
  env[v::kRestartCount] = std::to_string(c.restart_count);
  env[v::kMaxRestarts] = std::to_string(c.max_restarts);
  env[v::kRunId] = c.run_id;
  env[v::kJobDir] = c.job_dir;
  env[v::kAttemptDir] = c.attempt_dir;
  env[v::kConfig] = c.config_path;
  env[v::kJobToken] = c.token;
  env[v::kNodeAgentPid] = std::to_string(c.node_agent_pid);
  // Set even when empty: a CPU worker sees no GPU, whatever the agent saw.
  env[v::kDevices] = c.device;
}

WorkerContract ReadContract(const Environment& env) {
  WorkerContract c;
  c.job_dir = env.Get(v::kJobDir).value_or("");
  c.attempt_dir = env.Get(v::kAttemptDir).value_or("");
  c.config_path = env.Get(v::kConfig).value_or("");
  c.token = env.Get(v::kJobToken).value_or("");
  c.run_id = env.Get(v::kRunId).value_or("");
  c.device = env.Get(v::kDevices).value_or("");
  if (!env.Get(v::kRank) && !env.Get(v::kWorldSize) && !env.Get(v::kMasterAddr)) {
    c.standalone = true;
    return c;
  }
  c.world_size = RequireInt(env, v::kWorldSize, 1, 1 << 24);
  c.rank = RequireInt(env, v::kRank, 0, c.world_size - 1);
  c.local_world_size = RequireInt(env, v::kLocalWorldSize, 1, c.world_size);
  c.local_rank = RequireInt(env, v::kLocalRank, 0, c.local_world_size - 1);
  c.node_rank = env.Get(v::kNodeRank) ? RequireInt(env, v::kNodeRank, 0, 1 << 20)
                                      : RequireInt(env, v::kGroupRank, 0, 1 << 20);
  std::optional<std::string> addr = env.Get(v::kMasterAddr);
  if (!addr || addr->empty()) {
    throw EnvironmentError(
        "MASTER_ADDR is not set (or empty); the runner sets it to the "
        "store's address");
  }
  c.master_addr = *addr;
  c.master_port = RequireInt(env, v::kMasterPort, 1, 65535);
  c.restart_count = OptionalInt(env, v::kRestartCount, 0, 1 << 20, 0);
  c.node_count = OptionalInt(env, v::kGroupWorldSize, 1, 1 << 20, 1);
  c.max_restarts = OptionalInt(env, v::kMaxRestarts, 0, 1 << 30, 0);
  c.node_agent_pid = OptionalInt(env, v::kNodeAgentPid, 0, 1 << 30, 0);
  return c;
}

}  // namespace common

#include "trainer/contract.h"

#include <charconv>

#include "common/errors.h"

namespace trainer {

namespace {

int RequireInt(const common::Environment& env, const std::string& name, int min, int max) {
  std::optional<std::string> text = env.Get(name);
  if (!text) {
    throw common::EnvironmentError(name +
                                   " is not set; the trainer needs the worker contract "
                                   "(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) "
                                   "together: start it with the runner, or set none of them to "
                                   "train alone");
  }
  int value = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (text->empty() || ec != std::errc() || end != text->data() + text->size() || value < min ||
      value > max) {
    throw common::EnvironmentError(name + "='" + *text + "' is not an integer in " +
                                   std::to_string(min) + ".." + std::to_string(max));
  }
  return value;
}

}  // namespace

Contract ReadContract(const common::Environment& env) {
  Contract c;
  c.job_dir = env.Get("RUNNER_JOB_DIR").value_or("");
  c.attempt_dir = env.Get("RUNNER_ATTEMPT_DIR").value_or("");
  c.device = env.Get("CUDA_VISIBLE_DEVICES").value_or("");
  if (!env.Get("RANK") && !env.Get("WORLD_SIZE") && !env.Get("MASTER_ADDR")) {
    c.standalone = true;
    return c;
  }
  c.world_size = RequireInt(env, "WORLD_SIZE", 1, 1 << 24);
  c.rank = RequireInt(env, "RANK", 0, c.world_size - 1);
  c.local_world_size = RequireInt(env, "LOCAL_WORLD_SIZE", 1, c.world_size);
  c.local_rank = RequireInt(env, "LOCAL_RANK", 0, c.local_world_size - 1);
  c.node_rank = env.Get("NODE_RANK") ? RequireInt(env, "NODE_RANK", 0, 1 << 20)
                                     : RequireInt(env, "GROUP_RANK", 0, 1 << 20);
  std::optional<std::string> addr = env.Get("MASTER_ADDR");
  if (!addr || addr->empty()) {
    throw common::EnvironmentError(
        "MASTER_ADDR is not set (or empty); the runner sets it to the "
        "store's address");
  }
  c.master_addr = *addr;
  c.master_port = RequireInt(env, "MASTER_PORT", 1, 65535);
  c.restart_count = env.Get("TORCHELASTIC_RESTART_COUNT")
                        ? RequireInt(env, "TORCHELASTIC_RESTART_COUNT", 0, 1 << 20)
                        : 0;
  return c;
}

}  // namespace trainer

#pragma once
// The worker contract (torchrun's variables, set by the runner), read strictly: a worker never
// guesses its identity. With none of RANK, WORLD_SIZE, MASTER_ADDR set the trainer runs alone
// (world of one, no process group), which is handy for a quick check on a laptop.

#include <optional>
#include <string>

#include "common/environment.h"

namespace trainer {

struct Contract {
  bool standalone = false;  // no contract variables at all
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  int node_rank = 0;
  std::string master_addr;
  int master_port = 0;
  int restart_count = 0;    // TORCHELASTIC_RESTART_COUNT: the attempt
  std::string job_dir;      // RUNNER_JOB_DIR ("" when not under the runner)
  std::string attempt_dir;  // RUNNER_ATTEMPT_DIR
  std::string device;       // CUDA_VISIBLE_DEVICES as given ("" = none)
};

// Throws common::EnvironmentError naming the variable and its raw value.
[[nodiscard]] Contract ReadContract(const common::Environment& env);

}  // namespace trainer

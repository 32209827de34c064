#pragma once
// The trainer program as a function of its inputs.
//   trainer [--config FILE] [key.path=value ...]
// The runner starts it with the worker contract in the environment and RUNNER_CONFIG set.

#include <iosfwd>
#include <string>
#include <vector>

#include "common/environment.h"

namespace trainer {

// Returns the exit code (common/exit_codes.h). Never throws.
[[nodiscard]] int RunTrainer(const std::vector<std::string>& args, const common::Environment& env,
                             std::ostream& out, std::ostream& err);

}  // namespace trainer

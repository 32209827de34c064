#pragma once
// The runner program as a function of its inputs, so tests run it without a process.

#include <iosfwd>
#include <string>
#include <vector>

#include "common/environment.h"
#include "runner/launch_env.h"

namespace runner {

// Runs `runner args...`; writes normal output to `out`, errors to `err`; returns the exit code
// (common/exit_codes.h). Never throws.
[[nodiscard]] int RunRunner(const std::vector<std::string>& args, const common::Environment& env,
                            const HostFacts& host, std::ostream& out, std::ostream& err);

}  // namespace runner

#pragma once
// `runner --dry-run`: the resolved topology in a form people read, every value with its source.

#include <string>

#include "common/config.h"
#include "runner/launch_env.h"
#include "runner/topology.h"

namespace runner {

[[nodiscard]] std::string FormatDryRun(const LaunchEnvironment& env, const AgentPlan& plan,
                                       const common::Config& config);

}  // namespace runner

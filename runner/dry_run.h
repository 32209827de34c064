#pragma once
// `runner --dry-run`: the resolved topology in a form people read, every value with its source.

#include <map>
#include <string>

#include "common/config.h"
#include "runner/launch_env.h"
#include "runner/topology.h"

namespace runner {

// `vars`: the process environment (GLOO_SOCKET_IFNAME, NCCL_SOCKET_IFNAME: the network row).
[[nodiscard]] std::string FormatDryRun(const LaunchEnvironment& env, const AgentPlan& plan,
                                       const common::Config& config,
                                       const std::map<std::string, std::string>& vars);

}  // namespace runner

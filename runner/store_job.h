#pragma once
// The job's store options: the node-0 agent builds them after the rendezvous, from what the agents
// reported and the job's config, and hands them to its StoreServer.

#include <string>
#include <vector>

#include "common/config.h"
#include "runner/rendezvous.h"
#include "runner/store_server.h"

namespace runner {

// Allows loopback, every address an agent reported (`agents`, the job's hosts), `store_addr` and
// launch.store_allow; caps connections at launch.store_max_connections; the rest as
// StoreServerOptions' defaults. Throws common::ConfigError naming a bad launch.store_allow entry.
[[nodiscard]] StoreServerOptions JobStoreOptions(const std::vector<AgentInfo>& agents,
                                                 const std::string& store_addr,
                                                 const common::Config& config);

}  // namespace runner

#pragma once
// The job's store options: the node-0 agent builds them after the rendezvous, from what the agents
// reported and the job's config, and hands them to its StoreServer.

#include <cstddef>
#include <cstdint>
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

// What the job asks of its store, checked by the node-0 agent at start.
struct StoreCapacity {
  int workers = 0;             // all nodes' workers
  int agents = 0;              // each holds one connection (the TCP control plane)
  size_t max_connections = 0;  // the store's cap (launch.store_max_connections)
  uint64_t hard_files = 0;     // this process's hard RLIMIT_NOFILE (UINT64_MAX: unlimited)
  std::string host;
};

// Connections the job may open at once: two per worker (a PyTorch 1.13 worker that watches keys
// holds two) and two per agent (over TCP: its control-plane client and its liveness thread).
[[nodiscard]] uint64_t ExpectedStoreClients(const StoreCapacity& capacity);

// One line for each limit too low for ExpectedStoreClients, naming the limit, its value and how
// to raise it: the open-files hard limit (ulimit -n; under Slurm, PropagateResourceLimits and
// slurmd's own limit) and launch.store_max_connections. Empty when both suffice.
[[nodiscard]] std::vector<std::string> StoreCapacityWarnings(const StoreCapacity& capacity);

// This process's hard limit on open files; UINT64_MAX when unlimited.
[[nodiscard]] uint64_t HardOpenFilesLimit();

// StoreCapacityWarnings for the job's agents (their workers) and the store node 0 hosts.
[[nodiscard]] std::vector<std::string> JobStoreCapacityWarnings(
    const std::vector<AgentInfo>& agents, const StoreServer& store, const std::string& host);

}  // namespace runner

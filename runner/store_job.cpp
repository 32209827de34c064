#include "runner/store_job.h"

namespace runner {

StoreServerOptions JobStoreOptions(const std::vector<AgentInfo>& agents,
                                   const std::string& store_addr, const common::Config& config) {
  std::vector<std::string> host_addresses;
  for (const AgentInfo& agent : agents) {
    for (const InterfaceAddress& address : agent.addresses) {
      host_addresses.push_back(address.address);
    }
  }
  StoreServerOptions options;
  options.allow =
      JobStoreAllowList(host_addresses, store_addr, config.GetString("launch.store_allow"));
  options.max_connections = static_cast<size_t>(config.GetInt("launch.store_max_connections"));
  return options;
}

}  // namespace runner

#include "runner/store_job.h"

#include <sys/resource.h>

#include <algorithm>
#include <limits>

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

uint64_t ExpectedStoreClients(const StoreCapacity& capacity) {
  return 2 * static_cast<uint64_t>(std::max(capacity.workers, 0)) +
         2 * static_cast<uint64_t>(std::max(capacity.agents, 0));
}

std::vector<std::string> StoreCapacityWarnings(const StoreCapacity& capacity) {
  const uint64_t expected = ExpectedStoreClients(capacity);
  const auto count = [](int n, const char* what) {
    return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
  };
  const std::string clients = "the job's " + count(capacity.workers, "worker") + " and " +
                              count(capacity.agents, "agent") + " may open up to " +
                              std::to_string(expected) +
                              " connections to the store (two per PyTorch 1.13 worker, two per "
                              "agent)";
  std::vector<std::string> lines;
  if (capacity.hard_files < expected + kStoreOtherFiles) {
    const std::string wanted = std::to_string(expected + kStoreOtherFiles);
    lines.push_back(
        "store: " + clients + ", but the agent on host " + capacity.host + " may open at most " +
        std::to_string(capacity.hard_files) +
        " files (the hard limit of RLIMIT_NOFILE, ulimit -Hn), so workers past that are refused "
        "and the job fails in its rendezvous. Raise it to at least " +
        wanted + " before the runner starts: ulimit -n " + wanted +
        " (a hard limit rises only as root: /etc/security/limits.conf nofile); under Slurm the "
        "submitting shell's limit is propagated (PropagateResourceLimits in slurm.conf, srun "
        "--propagate=NOFILE) and slurmd's own limit (LimitNOFILE in its systemd unit) caps it");
  }
  if (capacity.max_connections < expected) {
    lines.push_back("store: " + clients + ", but launch.store_max_connections is " +
                    std::to_string(capacity.max_connections) +
                    ", so workers past that are refused; set launch.store_max_connections to at "
                    "least " +
                    std::to_string(expected));
  }
  return lines;
}

uint64_t HardOpenFilesLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_max == RLIM_INFINITY) return std::numeric_limits<uint64_t>::max();
  return static_cast<uint64_t>(limit.rlim_max);
}

std::vector<std::string> JobStoreCapacityWarnings(const std::vector<AgentInfo>& agents,
                                                  const StoreServer& store,
                                                  const std::string& host) {
  StoreCapacity capacity;
  for (const AgentInfo& agent : agents) capacity.workers += agent.nproc;
  capacity.agents = static_cast<int>(agents.size());
  capacity.max_connections = store.max_connections();
  capacity.hard_files = HardOpenFilesLimit();
  capacity.host = host;
  return StoreCapacityWarnings(capacity);
}

}  // namespace runner

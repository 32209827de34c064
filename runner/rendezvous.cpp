#include "runner/rendezvous.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <map>
#include <sstream>

#include "common/errors.h"

namespace runner {

namespace {

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ",") + item;
  return out;
}

std::vector<std::string> Split(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

bool ParseIpv4(const std::string& text, uint32_t* out) {
  in_addr addr{};
  if (inet_pton(AF_INET, text.c_str(), &addr) != 1) return false;
  *out = ntohl(addr.s_addr);
  return true;
}

bool SameSubnet(const InterfaceAddress& mine, const std::string& other) {
  uint32_t a = 0;
  uint32_t b = 0;
  if (!ParseIpv4(mine.address, &a) || !ParseIpv4(other, &b)) return false;
  const uint32_t mask = mine.prefix_length == 0 ? 0 : ~uint32_t{0} << (32 - mine.prefix_length);
  return (a & mask) == (b & mask);
}

}  // namespace

std::string AgentInfo::Serialize() const {
  std::ostringstream out;
  out << "agent=" << agent << "\nhost=" << host << "\npid=" << pid << "\nnproc=" << nproc
      << "\nscheduler_node=" << scheduler_node << "\ndevices=" << Join(devices) << "\naddresses=";
  for (size_t i = 0; i < addresses.size(); ++i) {
    out << (i ? "," : "") << addresses[i].address << "/" << addresses[i].prefix_length;
  }
  out << "\n";
  return out.str();
}

AgentInfo AgentInfo::Parse(const std::string& text) {
  std::map<std::string, std::string> fields;
  std::stringstream in(text);
  for (std::string line; std::getline(in, line);) {
    size_t eq = line.find('=');
    if (eq != std::string::npos) fields[line.substr(0, eq)] = line.substr(eq + 1);
  }
  AgentInfo info;
  try {
    info.agent = std::stoi(fields.at("agent"));
    info.host = fields.at("host");
    info.pid = std::stoi(fields.at("pid"));
    info.nproc = std::stoi(fields.at("nproc"));
    info.scheduler_node = std::stoi(fields.at("scheduler_node"));
    info.devices = Split(fields.at("devices"));
    for (const std::string& item : Split(fields.at("addresses"))) {
      size_t slash = item.find('/');
      info.addresses.push_back({item.substr(0, slash), std::stoi(item.substr(slash + 1))});
    }
  } catch (const std::exception&) {
    throw common::CommunicationError(
        "rendezvous: an agent sent a malformed report (different "
        "runner versions on the nodes?): '" +
        text + "'");
  }
  return info;
}

Layout BuildLayout(const std::vector<AgentInfo>& agents) {
  Layout layout;
  const size_t n = agents.size();
  bool by_scheduler = n > 0;
  for (const AgentInfo& a : agents) by_scheduler = by_scheduler && a.scheduler_node >= 0;

  // Node keys in order: scheduler ids ascending, or hosts by first appearance.
  std::map<std::string, int> node_of_host;
  std::map<int, std::string> host_of_id;
  if (by_scheduler) {
    for (const AgentInfo& a : agents) {
      auto [it, inserted] = host_of_id.emplace(a.scheduler_node, a.host);
      if (!inserted && it->second != a.host) {
        throw common::EnvironmentError("agents on hosts '" + it->second + "' and '" + a.host +
                                       "' both report node id " + std::to_string(a.scheduler_node) +
                                       " (SLURM_NODEID); the scheduler's view is inconsistent");
      }
    }
    int index = 0;
    for (const auto& [id, host] : host_of_id) {
      if (node_of_host.count(host)) {
        throw common::EnvironmentError("host '" + host +
                                       "' reports two node ids; the scheduler's "
                                       "view is inconsistent");
      }
      node_of_host[host] = index++;
      layout.hosts.push_back(host);
    }
  } else {
    for (const AgentInfo& a : agents) {
      if (node_of_host.emplace(a.host, static_cast<int>(layout.hosts.size())).second) {
        layout.hosts.push_back(a.host);
      }
    }
  }
  layout.node_of_agent.resize(n);
  layout.local_index_of_agent.resize(n);
  layout.first_rank_of_agent.resize(n);
  layout.first_local_rank_of_agent.resize(n);
  layout.workers_on_node.assign(layout.hosts.size(), 0);
  std::vector<int> agents_on_node(layout.hosts.size(), 0);
  for (size_t i = 0; i < n; ++i) {
    const int node = node_of_host.at(agents[i].host);
    layout.node_of_agent[i] = node;
    layout.local_index_of_agent[i] = agents_on_node[static_cast<size_t>(node)]++;
    layout.first_local_rank_of_agent[i] = layout.workers_on_node[static_cast<size_t>(node)];
    layout.workers_on_node[static_cast<size_t>(node)] += agents[i].nproc;
  }
  // Node-major global ranks: all of node 0's workers, then node 1's, ...
  std::vector<int> first_of_node(layout.hosts.size(), 0);
  int total = 0;
  for (size_t node = 0; node < layout.hosts.size(); ++node) {
    first_of_node[node] = total;
    total += layout.workers_on_node[node];
  }
  for (size_t i = 0; i < n; ++i) {
    layout.first_rank_of_agent[i] = first_of_node[static_cast<size_t>(layout.node_of_agent[i])] +
                                    layout.first_local_rank_of_agent[i];
  }
  layout.world_size = total;
  return layout;
}

std::string ChooseStoreAddress(const std::vector<AgentInfo>& agents, const Layout& layout,
                               const std::string& configured) {
  if (configured != "auto") return configured;
  if (layout.hosts.size() <= 1) return "127.0.0.1";
  // The node-0 agent (first agent on node 0) hosts the store.
  const AgentInfo* host_agent = nullptr;
  for (size_t i = 0; i < agents.size() && host_agent == nullptr; ++i) {
    if (layout.node_of_agent[i] == 0 && layout.local_index_of_agent[i] == 0)
      host_agent = &agents[i];
  }
  if (host_agent == nullptr || host_agent->addresses.empty()) {
    throw common::CommunicationError(
        "rendezvous: host '" + (host_agent ? host_agent->host : std::string("?")) +
        "' (node 0) has no non-loopback IPv4 address for the other nodes to reach its store; "
        "set launch.store_addr to an address they can reach");
  }
  const InterfaceAddress* best = &host_agent->addresses.front();
  int best_count = -1;
  for (const InterfaceAddress& mine : host_agent->addresses) {
    int count = 0;
    for (const AgentInfo& other : agents) {
      if (other.host == host_agent->host) continue;
      for (const InterfaceAddress& theirs : other.addresses) {
        if (SameSubnet(mine, theirs.address)) {
          ++count;
          break;
        }
      }
    }
    if (count > best_count) {
      best = &mine;
      best_count = count;
    }
  }
  return best->address;
}

std::vector<InterfaceAddress> LocalAddresses() {
  std::vector<InterfaceAddress> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* it = list; it != nullptr; it = it->ifa_next) {
    if (it->ifa_addr == nullptr || it->ifa_addr->sa_family != AF_INET) continue;
    auto* addr = reinterpret_cast<sockaddr_in*>(it->ifa_addr);
    const uint32_t host_order = ntohl(addr->sin_addr.s_addr);
    if ((host_order >> 24) == 127) continue;
    char text[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &addr->sin_addr, text, sizeof(text));
    int prefix = 0;
    if (it->ifa_netmask != nullptr) {
      prefix = __builtin_popcount(reinterpret_cast<sockaddr_in*>(it->ifa_netmask)->sin_addr.s_addr);
    }
    out.push_back({text, prefix});
  }
  freeifaddrs(list);
  return out;
}

}  // namespace runner

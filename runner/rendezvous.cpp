#include "runner/rendezvous.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <map>
#include <optional>

#include "common/errors.h"
#include "common/parse_int.h"
#include "common/record.h"

namespace runner {

namespace {

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
  std::vector<std::string> cidrs;
  for (const InterfaceAddress& a : addresses) {
    cidrs.push_back(a.address + "/" + std::to_string(a.prefix_length));
  }
  return common::RecordWriter()
      .Add("agent", agent)
      .Add("host", host)
      .Add("pid", pid)
      .Add("nproc", nproc)
      .Add("scheduler_node", scheduler_node)
      .Add("devices", devices)
      .Add("addresses", cidrs)
      .str();
}

AgentInfo AgentInfo::Parse(const std::string& text, int from_agent) {
  common::RecordReader in(text, "rendezvous report from agent " + std::to_string(from_agent));
  AgentInfo info;
  info.agent = in.Int32("agent", 0);
  info.host = in.String("host");
  if (info.host.empty()) in.Fail("host", "is empty");
  info.pid = in.Int32("pid", 1);
  info.nproc = in.Int32("nproc", 0);
  info.scheduler_node = in.Int32("scheduler_node", -1);
  info.devices = in.List("devices");
  for (const std::string& item : in.List("addresses")) {
    const size_t slash = item.find('/');
    uint32_t ignored = 0;
    const std::optional<int64_t> prefix =
        slash == std::string::npos ? std::nullopt : common::ParseInt64(item.substr(slash + 1));
    if (!prefix || *prefix < 0 || *prefix > 32 || !ParseIpv4(item.substr(0, slash), &ignored)) {
      in.Fail("addresses", "has '" + item + "', not an IPv4 address/prefix length");
    }
    info.addresses.push_back({item.substr(0, slash), static_cast<int>(*prefix)});
  }
  return info;
}

std::string JobSession::Serialize() const {
  return common::RecordWriter()
      .Add("job_id", job_id)
      .Add("token", token)
      .Add("attempt", attempt)
      .Add("store_addr", store_addr)
      .Add("store_port", store_port)
      .str();
}

JobSession JobSession::Parse(const std::string& text) {
  common::RecordReader in(text, "job session from the node-0 agent");
  JobSession session;
  session.job_id = in.String("job_id");
  if (session.job_id.empty()) in.Fail("job_id", "is empty");
  session.token = in.String("token");
  if (session.token.size() != 32 ||
      session.token.find_first_not_of("0123456789abcdef") != std::string::npos) {
    in.Fail("token", "is not 32 hex digits");
  }
  session.attempt = in.Int32("attempt", 0);
  session.store_addr = in.String("store_addr");
  if (session.store_addr.empty()) in.Fail("store_addr", "is empty");
  session.store_port = in.Int32("store_port", 1, 65535);
  return session;
}

std::string AgentPlace::Serialize() const {
  return common::RecordWriter()
      .Add("node", node)
      .Add("node_count", node_count)
      .Add("local_index", local_index)
      .Add("agents_on_node", agents_on_node)
      .Add("first_rank", first_rank)
      .Add("first_local_rank", first_local_rank)
      .Add("workers_on_node", workers_on_node)
      .Add("node_agent_pid", node_agent_pid)
      .Add("world_size", world_size)
      .str();
}

AgentPlace AgentPlace::Parse(const std::string& text) {
  common::RecordReader in(text, "this agent's place from the node-0 agent");
  AgentPlace p;
  p.node_count = in.Int32("node_count", 1);
  p.node = in.Int32("node", 0, p.node_count - 1);
  p.agents_on_node = in.Int32("agents_on_node", 1);
  p.local_index = in.Int32("local_index", 0, p.agents_on_node - 1);
  p.world_size = in.Int32("world_size", 0);
  p.workers_on_node = in.Int32("workers_on_node", 0, p.world_size);
  p.first_local_rank = in.Int32("first_local_rank", 0, p.workers_on_node);
  p.first_rank = in.Int32("first_rank", 0, p.world_size);
  p.node_agent_pid = in.Int32("node_agent_pid", 1);
  return p;
}

std::string Welcome::Serialize() const {
  // Two records with no key in common: their lines read back as one.
  return session.Serialize() + place.Serialize();
}

Welcome Welcome::Parse(const std::string& text) {
  return {JobSession::Parse(text), AgentPlace::Parse(text)};
}

AgentPlace PlaceOf(const Layout& layout, int agent) {
  const auto me = static_cast<size_t>(agent);
  const auto node = static_cast<size_t>(layout.node_of_agent.at(me));
  AgentPlace p;
  p.node = static_cast<int>(node);
  p.node_count = static_cast<int>(layout.hosts.size());
  p.local_index = layout.local_index_of_agent.at(me);
  p.agents_on_node = layout.agents_on_node.at(node);
  p.first_rank = layout.first_rank_of_agent.at(me);
  p.first_local_rank = layout.first_local_rank_of_agent.at(me);
  p.workers_on_node = layout.workers_on_node.at(node);
  p.node_agent_pid = layout.agent_pid_of_node.at(node);
  p.world_size = layout.world_size;
  return p;
}

std::vector<std::string> Welcomes(const Layout& layout, const JobSession& session) {
  std::vector<std::string> out;
  for (size_t i = 0; i < layout.node_of_agent.size(); ++i) {
    out.push_back(Welcome{session, PlaceOf(layout, static_cast<int>(i))}.Serialize());
  }
  return out;
}

std::vector<AgentInfo> ParseReports(const std::vector<std::string>& reports) {
  std::vector<AgentInfo> agents;
  for (size_t i = 0; i < reports.size(); ++i) {
    agents.push_back(AgentInfo::Parse(reports[i], static_cast<int>(i)));
  }
  return agents;
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
  layout.agent_pid_of_node.assign(layout.hosts.size(), 0);
  std::vector<int>& agents_on_node = layout.agents_on_node;
  agents_on_node.assign(layout.hosts.size(), 0);
  for (size_t i = 0; i < n; ++i) {
    const int node = node_of_host.at(agents[i].host);
    layout.node_of_agent[i] = node;
    layout.local_index_of_agent[i] = agents_on_node[static_cast<size_t>(node)]++;
    if (layout.local_index_of_agent[i] == 0)
      layout.agent_pid_of_node[static_cast<size_t>(node)] = agents[i].pid;
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

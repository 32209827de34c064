#pragma once
// The agents' rendezvous, as pure functions over what every agent reports (the exchange itself is
// in runner/agent_job.cpp): node order, contiguous global ranks per node (heterogeneous worker
// counts allowed), the address the node-0 agent's store listens on, and each agent's own place.
//
// Only the node-0 agent holds every report and the whole Layout: it gathers the reports, builds
// the layout and sends each agent its AgentPlace with the job session (a scatter). What moves is
// O(agents) in all; an allgather of the reports would move agents^2 through node 0.

#include <string>
#include <vector>

namespace runner {

struct InterfaceAddress {
  std::string address;  // IPv4 literal
  int prefix_length = 0;
};

// What one agent tells the others.
struct AgentInfo {
  int agent = 0;  // MPI rank
  std::string host;
  int pid = 0;
  int nproc = 0;            // workers it will start
  int scheduler_node = -1;  // SLURM_NODEID / NODE_RANK when the scheduler says; -1 otherwise
  std::vector<std::string> devices;
  std::vector<InterfaceAddress> addresses;  // non-loopback IPv4 addresses of its host

  [[nodiscard]] std::string Serialize() const;
  // Throws common::CommunicationError naming the field when `text` is not what Serialize wrote.
  [[nodiscard]] static AgentInfo Parse(const std::string& text, int from_agent);
};

// What the node-0 agent decides for the whole job and broadcasts after the rendezvous.
struct JobSession {
  std::string job_id;      // the scheduler's, or a local one
  std::string token;       // 32 hex digits, random per job
  int attempt = 0;         // the first attempt of this start (after the newest attempt-<k>)
  std::string store_addr;  // where the store listens and workers dial
  int store_port = 0;

  [[nodiscard]] std::string Serialize() const;
  // Throws common::CommunicationError naming the field when `text` is malformed or truncated.
  [[nodiscard]] static JobSession Parse(const std::string& text);
};

struct Layout {
  std::vector<std::string> hosts;         // node order
  std::vector<int> node_of_agent;         // by MPI rank
  std::vector<int> local_index_of_agent;  // among the agents of its node
  std::vector<int> first_rank_of_agent;   // global rank of its first worker
  std::vector<int> first_local_rank_of_agent;
  std::vector<int> workers_on_node;
  std::vector<int> agent_pid_of_node;  // the pid of its first agent: owns its /dev/shm names
  std::vector<int> agents_on_node;
  int world_size = 0;
};

// One agent's slice of the Layout: all it needs to plan its workers and name its log.
struct AgentPlace {
  int node = 0;
  int node_count = 1;
  int local_index = 0;  // among the agents of its node
  int agents_on_node = 1;
  int first_rank = 0;  // global rank of its first worker
  int first_local_rank = 0;
  int workers_on_node = 0;
  int node_agent_pid = 0;  // the pid of the node's first agent (owns its /dev/shm names)
  int world_size = 0;

  [[nodiscard]] std::string Serialize() const;
  // Throws common::CommunicationError naming the field when `text` is malformed or the numbers
  // contradict each other (a first rank outside the world, an index outside the node).
  [[nodiscard]] static AgentPlace Parse(const std::string& text);
};

// What the node-0 agent sends each agent after the rendezvous: the job's session and its place.
struct Welcome {
  JobSession session;
  AgentPlace place;

  [[nodiscard]] std::string Serialize() const;
  [[nodiscard]] static Welcome Parse(const std::string& text);
};

// Nodes are ordered by the scheduler's node ids when every agent has one, else by the lowest MPI
// rank on them; agents within a node by MPI rank. Throws common::EnvironmentError when the
// scheduler's node ids contradict the hostnames (two ids on one host or one id on two hosts).
[[nodiscard]] Layout BuildLayout(const std::vector<AgentInfo>& agents);

// `agent`'s slice of `layout` (agent: an MPI rank in it).
[[nodiscard]] AgentPlace PlaceOf(const Layout& layout, int agent);
// Every agent's serialized Welcome, by MPI rank.
[[nodiscard]] std::vector<std::string> Welcomes(const Layout& layout, const JobSession& session);
// Every agent's report; throws common::CommunicationError naming the agent of a malformed one.
[[nodiscard]] std::vector<AgentInfo> ParseReports(const std::vector<std::string>& reports);

// The address the store binds and workers dial: `configured` unless it is "auto"; loopback when
// the job has one host; else the node-0 agent's address on the subnet that holds the most other
// agents. Throws common::CommunicationError when there is none.
[[nodiscard]] std::string ChooseStoreAddress(const std::vector<AgentInfo>& agents,
                                             const Layout& layout, const std::string& configured);

// This host's non-loopback IPv4 addresses (getifaddrs).
[[nodiscard]] std::vector<InterfaceAddress> LocalAddresses();

}  // namespace runner

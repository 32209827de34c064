#pragma once
// The network interface a node's workers use for their own connections (Gloo's pairs, NCCL's
// bootstrap and socket transport).
//
// Left to themselves, Gloo resolves the host's name and NCCL picks the first interface that is not
// loopback or docker: on a machine with several networks (management, storage, fabric) either can
// pick one the other machines cannot reach, and the job hangs at its first collective. So, unless
// the user set GLOO_SOCKET_IFNAME / NCCL_SOCKET_IFNAME, each agent picks one concrete interface:
// the one whose address the kernel uses as the source on its route to the job's store (the store
// host is reachable from every node, or the job could not have met). A set value must name an
// interface of this machine: a typo fails at start, naming the variable, the value and the
// interfaces there are, instead of as a timeout minutes later.
//
// GLOO_SOCKET_IFNAME takes interface names (comma-separated in PyTorch; one in the bundled
// trainer); NCCL_SOCKET_IFNAME takes NCCL's syntax: prefixes, `=name` for exact names, and a
// leading `^` to exclude. NCCL's syntax in GLOO_SOCKET_IFNAME is refused with the translation.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace runner {

struct NetInterface {
  std::string name;     // "eth0"
  std::string address;  // "10.1.2.3" or "fd00::3"; one entry per address
  bool loopback = false;
};

// Every address of every interface that is up (IPv4 and IPv6, link-local IPv6 left out).
[[nodiscard]] std::vector<NetInterface> ListInterfaces();

// The local address the kernel would use to reach host:port (a UDP socket connected there; no
// packet is sent). Empty when there is no route.
[[nodiscard]] std::string SourceAddressTo(const std::string& host, uint16_t port);

// Throws common::EnvironmentError when GLOO_SOCKET_IFNAME or NCCL_SOCKET_IFNAME (as set in `env`)
// names no interface in `interfaces`, or GLOO_SOCKET_IFNAME uses NCCL's syntax. `host` names this
// machine in the message.
void CheckInterfaceVariables(const std::map<std::string, std::string>& env,
                             const std::vector<NetInterface>& interfaces, const std::string& host);

// The workers' network on this node: the variables the agent adds to their environment (those
// the user did not set), and how the interface was chosen, for the log and the manifest.
struct WorkerNetwork {
  std::string interface;  // empty: none found, nothing set
  std::string address;    // the interface's address on the route
  std::string chosen_by;  // "set in GLOO_SOCKET_IFNAME", "on the route to the store 10.0.0.1:29500"
  std::map<std::string, std::string> env;
};

// `source_to` is SourceAddressTo (a parameter for tests).
[[nodiscard]] WorkerNetwork ChooseWorkerNetwork(
    const std::map<std::string, std::string>& env, const std::vector<NetInterface>& interfaces,
    const std::string& store_addr, uint16_t store_port,
    const std::function<std::string(const std::string&, uint16_t)>& source_to);

// One line for the agent's log: "workers' network: eth0 (10.0.0.2, on the route to the store
// 10.0.0.1:29500) GLOO_SOCKET_IFNAME=eth0 NCCL_SOCKET_IFNAME==eth0".
[[nodiscard]] std::string DescribeWorkerNetwork(const WorkerNetwork& network);

}  // namespace runner

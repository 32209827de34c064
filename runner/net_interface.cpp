#include "runner/net_interface.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>

#include "common/errors.h"

namespace runner {

namespace {

constexpr const char* kGloo = "GLOO_SOCKET_IFNAME";
constexpr const char* kNccl = "NCCL_SOCKET_IFNAME";

std::vector<std::string> SplitCommas(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    const size_t end = comma == std::string::npos ? text.size() : comma;
    if (end > start) out.push_back(text.substr(start, end - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string NamesOf(const std::vector<NetInterface>& interfaces) {
  std::set<std::string> names;
  for (const NetInterface& i : interfaces) names.insert(i.name);
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "none" : out;
}

bool Has(const std::vector<NetInterface>& interfaces, const std::string& name) {
  for (const NetInterface& i : interfaces) {
    if (i.name == name) return true;
  }
  return false;
}

// NCCL's rules: "^a,b" excludes, "=a,b" matches exactly, "a,b" matches prefixes.
bool NcclMatchesAny(const std::string& value, const std::vector<NetInterface>& interfaces) {
  std::string list = value;
  const bool exclude = !list.empty() && list[0] == '^';
  if (exclude) list.erase(0, 1);
  const bool exact = !list.empty() && list[0] == '=';
  if (exact) list.erase(0, 1);
  const std::vector<std::string> names = SplitCommas(list);
  for (const NetInterface& i : interfaces) {
    bool listed = false;
    for (const std::string& n : names) {
      listed = listed || (exact ? i.name == n : i.name.rfind(n, 0) == 0);
    }
    if (listed != exclude) return true;
  }
  return false;
}

std::string Where(const std::string& host) { return host.empty() ? "" : " on " + host; }

}  // namespace

std::vector<NetInterface> ListInterfaces() {
  std::vector<NetInterface> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* it = list; it != nullptr; it = it->ifa_next) {
    if (it->ifa_addr == nullptr || (it->ifa_flags & IFF_UP) == 0) continue;
    char text[INET6_ADDRSTRLEN] = {};
    const int family = it->ifa_addr->sa_family;
    if (family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(it->ifa_addr)->sin_addr, text,
                sizeof(text));
    } else if (family == AF_INET6) {
      const in6_addr& a = reinterpret_cast<sockaddr_in6*>(it->ifa_addr)->sin6_addr;
      if (IN6_IS_ADDR_LINKLOCAL(&a)) continue;
      inet_ntop(AF_INET6, &a, text, sizeof(text));
    } else {
      continue;
    }
    out.push_back({it->ifa_name, text, (it->ifa_flags & IFF_LOOPBACK) != 0});
  }
  freeifaddrs(list);
  return out;
}

std::string SourceAddressTo(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* result = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &result) != 0) return "";
  std::string out;
  for (addrinfo* it = result; it != nullptr && out.empty(); it = it->ai_next) {
    const int fd = socket(it->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    sockaddr_storage local{};
    socklen_t length = sizeof(local);
    if (connect(fd, it->ai_addr, it->ai_addrlen) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length) == 0) {
      char text[INET6_ADDRSTRLEN] = {};
      const void* addr =
          local.ss_family == AF_INET
              ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&local)->sin_addr)
              : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&local)->sin6_addr);
      if (inet_ntop(local.ss_family, addr, text, sizeof(text)) != nullptr) out = text;
    }
    close(fd);
  }
  freeaddrinfo(result);
  return out;
}

void CheckInterfaceVariables(const std::map<std::string, std::string>& env,
                             const std::vector<NetInterface>& interfaces, const std::string& host) {
  const std::string here = "interfaces" + Where(host) + ": " + NamesOf(interfaces);
  if (auto it = env.find(kGloo); it != env.end() && !it->second.empty()) {
    const std::string& value = it->second;
    if (value[0] == '^' || value[0] == '=') {
      throw common::EnvironmentError(
          std::string(kGloo) + "=" + value +
          ": Gloo takes interface names (comma-separated), not NCCL's ^ (exclude) or = (exact) "
          "syntax; name the interface the other machines are reached by, e.g. " +
          kGloo + "=eth0, or unset it to let the runner pick the one on the route to the store (" +
          here + ")");
    }
    if (SplitCommas(value).empty()) {
      throw common::EnvironmentError(std::string(kGloo) + "='" + value + "' names no interface" +
                                     Where(host) + " (" + here +
                                     "); name one, or unset it to let the runner pick the one on "
                                     "the route to the store");
    }
    for (const std::string& name : SplitCommas(value)) {
      if (!Has(interfaces, name)) {
        throw common::EnvironmentError(std::string(kGloo) + "=" + value + ": no interface '" +
                                       name + "'" + Where(host) + " (" + here +
                                       "); fix the name, or unset it to let the runner pick "
                                       "the one on the route to the store");
      }
    }
  }
  if (auto it = env.find(kNccl); it != env.end() && !it->second.empty()) {
    if (!NcclMatchesAny(it->second, interfaces)) {
      throw common::EnvironmentError(
          std::string(kNccl) + "=" + it->second + " matches no interface" + Where(host) + " (" +
          here +
          "); NCCL reads it as prefixes, =exact names or ^exclusions; fix it, or unset it to let "
          "the runner pick the interface on the route to the store");
    }
  }
}

WorkerNetwork ChooseWorkerNetwork(
    const std::map<std::string, std::string>& env, const std::vector<NetInterface>& interfaces,
    const std::string& store_addr, uint16_t store_port,
    const std::function<std::string(const std::string&, uint16_t)>& source_to) {
  WorkerNetwork network;
  auto set = [&env](const char* name) {
    auto it = env.find(name);
    return it != env.end() && !it->second.empty();
  };
  if (set(kGloo)) {
    network.interface = SplitCommas(env.at(kGloo)).front();
    network.chosen_by = std::string("set in ") + kGloo;
    for (const NetInterface& i : interfaces) {
      if (i.name == network.interface && network.address.empty()) network.address = i.address;
    }
  } else {
    network.address = source_to(store_addr, store_port);
    network.chosen_by =
        "on the route to the store " + store_addr + ":" + std::to_string(store_port);
    for (const NetInterface& i : interfaces) {
      if (!network.address.empty() && i.address == network.address) network.interface = i.name;
    }
    if (network.interface.empty()) return network;
    network.env[kGloo] = network.interface;
  }
  if (!set(kNccl)) network.env[kNccl] = "=" + network.interface;
  return network;
}

std::string DescribeWorkerNetwork(const WorkerNetwork& network) {
  if (network.interface.empty()) {
    return "workers' network: no interface found " + network.chosen_by +
           "; Gloo and NCCL choose their own (set GLOO_SOCKET_IFNAME and NCCL_SOCKET_IFNAME if "
           "they pick one the other machines cannot reach)";
  }
  std::string line = "workers' network: " + network.interface + " (" +
                     (network.address.empty() ? "" : network.address + ", ") + network.chosen_by +
                     ")";
  for (const auto& [name, value] : network.env) line += " " + name + "=" + value;
  return line;
}

}  // namespace runner

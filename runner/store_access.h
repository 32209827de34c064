#pragma once
// Who may connect to the c10d store (runner/store_server.h): an allow list of addresses and
// networks, IPv4 and IPv6 alike. Every entry and every peer is compared as a 128-bit IPv6 address
// (an IPv4 address a.b.c.d is ::ffff:a.b.c.d, so an IPv4 peer that reaches a dual-stack socket as
// a v4-mapped IPv6 address matches its IPv4 entries).
//
// The job's list (JobStoreAllowList): loopback, every address the agents reported at the
// rendezvous (the job's hosts), the store's own address, and launch.store_allow.

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace runner {

class StoreAllowList {
 public:
  // Allows nothing; see Loopback() and Add().
  StoreAllowList() = default;
  // 127.0.0.0/8 and ::1: processes of this host that dial loopback.
  [[nodiscard]] static StoreAllowList Loopback();

  // Adds one entry: an IPv4 or IPv6 address ("10.0.0.1", "fd00::7"), a network in CIDR form
  // ("10.0.0.0/16", "fd00::/64"; host bits are ignored), or "any" (every peer). Throws
  // common::ConfigError naming `source` (where the entry came from), the entry, and what an entry
  // looks like.
  void Add(std::string_view entry, std::string_view source);
  // Adds each entry of a list separated by commas and/or white space; an empty list adds nothing.
  void AddList(std::string_view list, std::string_view source);

  [[nodiscard]] bool Allows(const sockaddr* peer, socklen_t length) const;
  // The same for an address literal ("10.0.0.1", "::ffff:10.0.0.1"); false when it is none.
  [[nodiscard]] bool Allows(const std::string& address) const;
  [[nodiscard]] bool AllowsAny() const { return any_; }
  // "10.0.0.1, 10.0.0.2, 127.0.0.0/8, ::1" with at most `max_entries` entries, then "and N more".
  [[nodiscard]] std::string Describe(size_t max_entries = 6) const;

 private:
  using Address = std::array<uint8_t, 16>;
  struct Network {
    Address base;  // host bits cleared
    int prefix;    // of 128
    std::string text;
  };

  [[nodiscard]] bool Allows(const Address& address) const;

  bool any_ = false;
  std::set<Address> hosts_;  // exact addresses, the job's hosts: thousands
  std::vector<std::string> host_texts_;
  std::vector<Network> networks_;
};

// The job's allow list: loopback, every address in `host_addresses` (the addresses each agent
// reported at the rendezvous), `store_address` (where the store listens: connections from it come
// from its own host), and the entries of `store_allow` (launch.store_allow).
[[nodiscard]] StoreAllowList JobStoreAllowList(const std::vector<std::string>& host_addresses,
                                               const std::string& store_address,
                                               const std::string& store_allow);

}  // namespace runner

#include "runner/store_access.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "common/errors.h"
#include "common/parse_int.h"

namespace runner {

namespace {

using Address = std::array<uint8_t, 16>;

Address FromIpv4(const in_addr& v4) {
  Address out{};
  out[10] = out[11] = 0xff;
  std::memcpy(out.data() + 12, &v4, 4);
  return out;
}

// Parses an IPv4 or IPv6 literal; `is_v4` tells which. False when it is neither (inet_pton takes
// no short forms such as "10.1", unlike inet_aton).
bool ParseAddress(const std::string& text, Address* out, bool* is_v4) {
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    *out = FromIpv4(v4);
    *is_v4 = true;
    return true;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    std::memcpy(out->data(), &v6, 16);
    *is_v4 = false;
    return true;
  }
  return false;
}

bool InNetwork(const Address& address, const Address& base, int prefix) {
  const int whole = prefix / 8;
  if (std::memcmp(address.data(), base.data(), static_cast<size_t>(whole)) != 0) return false;
  if (prefix % 8 == 0) return true;
  const auto mask = static_cast<uint8_t>(0xff << (8 - prefix % 8));
  return (address[static_cast<size_t>(whole)] & mask) == base[static_cast<size_t>(whole)];
}

Address Masked(Address address, int prefix) {
  for (int bit = prefix; bit < 128; ++bit) {
    address[static_cast<size_t>(bit / 8)] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  }
  return address;
}

}  // namespace

StoreAllowList StoreAllowList::Loopback() {
  StoreAllowList list;
  list.Add("127.0.0.0/8", "loopback");
  list.Add("::1", "loopback");
  return list;
}

void StoreAllowList::Add(std::string_view entry_view, std::string_view source) {
  const std::string entry(entry_view);
  if (entry == "any") {
    any_ = true;
    return;
  }
  const size_t slash = entry.find('/');
  Address address{};
  bool is_v4 = false;
  int prefix = 128;
  bool ok = ParseAddress(entry.substr(0, slash), &address, &is_v4);
  if (ok && slash != std::string::npos) {
    const int max_prefix = is_v4 ? 32 : 128;
    const std::optional<int64_t> bits = common::ParseInt64(entry.substr(slash + 1));
    ok = bits && *bits >= 0 && *bits <= max_prefix;
    prefix = ok ? static_cast<int>(*bits) + (is_v4 ? 96 : 0) : 0;
  }
  if (!ok) {
    throw common::ConfigError(
        std::string(source) + ": '" + entry +
        "' is not an address, a network or 'any'; an entry is an IPv4 or IPv6 address "
        "(10.0.0.7, fd00::7), a network in CIDR form (10.0.0.0/16, fd00::/64), or any");
  }
  if (prefix == 128) {
    if (hosts_.insert(address).second) host_texts_.push_back(entry.substr(0, slash));
    return;
  }
  networks_.push_back({Masked(address, prefix), prefix, entry});
}

void StoreAllowList::AddList(std::string_view list, std::string_view source) {
  size_t pos = 0;
  while (pos < list.size()) {
    const size_t end = list.find_first_of(", \t\n", pos);
    const std::string_view entry =
        list.substr(pos, end == std::string_view::npos ? end : end - pos);
    if (!entry.empty()) Add(entry, source);
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
}

bool StoreAllowList::Allows(const Address& address) const {
  if (any_ || hosts_.count(address) > 0) return true;
  for (const Network& network : networks_) {
    if (InNetwork(address, network.base, network.prefix)) return true;
  }
  return false;
}

bool StoreAllowList::Allows(const sockaddr* peer, socklen_t length) const {
  if (peer->sa_family == AF_INET && length >= sizeof(sockaddr_in)) {
    return Allows(FromIpv4(reinterpret_cast<const sockaddr_in*>(peer)->sin_addr));
  }
  if (peer->sa_family == AF_INET6 && length >= sizeof(sockaddr_in6)) {
    Address address{};
    std::memcpy(address.data(), &reinterpret_cast<const sockaddr_in6*>(peer)->sin6_addr, 16);
    return Allows(address);
  }
  return any_;  // not an IP peer at all
}

bool StoreAllowList::Allows(const std::string& text) const {
  Address address{};
  bool is_v4 = false;
  return ParseAddress(text, &address, &is_v4) && Allows(address);
}

std::string StoreAllowList::Describe(size_t max_entries) const {
  std::vector<const std::string*> entries;
  static const std::string kAny = "any";
  if (any_) entries.push_back(&kAny);
  for (const std::string& host : host_texts_) entries.push_back(&host);
  for (const Network& network : networks_) entries.push_back(&network.text);
  if (entries.empty()) return "nothing";
  std::string out;
  for (size_t i = 0; i < entries.size() && i < max_entries; ++i) {
    out += (i == 0 ? "" : ", ") + *entries[i];
  }
  if (entries.size() > max_entries) {
    out += " and " + std::to_string(entries.size() - max_entries) + " more";
  }
  return out;
}

StoreAllowList JobStoreAllowList(const std::vector<std::string>& host_addresses,
                                 const std::string& store_address, const std::string& store_allow) {
  StoreAllowList list = StoreAllowList::Loopback();
  for (const std::string& address : host_addresses) {
    list.Add(address, "the address an agent reported at the rendezvous");
  }
  // "0.0.0.0" or "::" (every interface) says nothing about a peer.
  Address address{};
  bool is_v4 = false;
  if (ParseAddress(store_address, &address, &is_v4) && address != FromIpv4(in_addr{}) &&
      address != Address{}) {
    list.Add(store_address, "launch.store_addr");
  }
  list.AddList(store_allow, "launch.store_allow");
  return list;
}

}  // namespace runner

// Who may reach the store (runner/store_access.h) as tables: IPv4 and IPv6 entries, v4-mapped IPv6
// peers, networks, loopback, "any", bad entries; the job's list; and the throttle of the log lines
// a peer can provoke (runner/log_throttle.h), on invented time.

#include "runner/store_access.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <chrono>
#include <string>
#include <vector>

#include "common/errors.h"
#include "runner/log_throttle.h"

namespace {

using runner::StoreAllowList;

struct Case {
  const char* list;  // launch.store_allow syntax
  const char* peer;
  bool allowed;
};

TEST(StoreAllowList, Table) {
  const std::vector<Case> cases = {
      // Exact addresses, both families; an IPv4 peer seen on a dual-stack socket is v4-mapped.
      {"10.0.0.7", "10.0.0.7", true},
      {"10.0.0.7", "10.0.0.8", false},
      {"10.0.0.7", "::ffff:10.0.0.7", true},
      {"10.0.0.7", "::ffff:10.0.0.8", false},
      {"::ffff:10.0.0.7", "10.0.0.7", true},
      {"10.0.0.7", "::a00:7", false},  // IPv4-compatible is not v4-mapped
      {"fd00::7", "fd00::7", true},
      {"fd00::7", "fd00:0:0:0:0:0:0:7", true},
      {"fd00::7", "fd00::8", false},
      // Networks; host bits in the entry are ignored.
      {"10.1.0.0/16", "10.1.255.3", true},
      {"10.1.0.0/16", "10.2.0.3", false},
      {"10.1.0.0/16", "::ffff:10.1.9.9", true},
      {"10.1.2.3/16", "10.1.200.1", true},
      {"10.1.2.0/23", "10.1.3.255", true},
      {"10.1.2.0/23", "10.1.4.0", false},
      {"10.1.2.3/32", "10.1.2.3", true},
      {"10.1.2.3/32", "10.1.2.4", false},
      {"0.0.0.0/0", "192.0.2.1", true},
      {"0.0.0.0/0", "fd00::1", false},  // every IPv4 peer, not IPv6 ones
      {"fd00:1::/32", "fd00:1:ffff::1", true},
      {"fd00:1::/33", "fd00:1:8000::1", false},
      {"fd00:1::/33", "fd00:1:7fff::1", true},
      {"::/0", "10.0.0.1", true},
      // Lists: commas, spaces, both.
      {"10.0.0.1, 10.0.0.2", "10.0.0.2", true},
      {"10.0.0.1 fd00::/8", "fd12::1", true},
      {"10.0.0.1,,10.0.0.3", "10.0.0.3", true},
      {"", "10.0.0.1", false},
      {"any", "203.0.113.9", true},
      {"any", "2001:db8::1", true},
      {"10.0.0.1, any", "198.51.100.1", true},
      // A peer that is no address never matches an address entry.
      {"10.0.0.1", "not-an-address", false},
  };
  for (const Case& c : cases) {
    StoreAllowList list;
    list.AddList(c.list, "test");
    EXPECT_EQ(list.Allows(std::string(c.peer)), c.allowed) << "'" << c.list << "' vs " << c.peer;
  }
}

TEST(StoreAllowList, LoopbackIsAllOf127And1) {
  const StoreAllowList list = StoreAllowList::Loopback();
  for (const char* peer : {"127.0.0.1", "127.9.8.7", "::1", "::ffff:127.0.0.1"}) {
    EXPECT_TRUE(list.Allows(std::string(peer))) << peer;
  }
  for (const char* peer : {"128.0.0.1", "10.0.0.1", "::2", "fe80::1", "::"}) {
    EXPECT_FALSE(list.Allows(std::string(peer))) << peer;
  }
}

TEST(StoreAllowList, SocketAddressesOfBothFamilies) {
  StoreAllowList list;
  list.AddList("10.0.0.7, fd00::/16", "test");
  sockaddr_in v4{};
  v4.sin_family = AF_INET;
  inet_pton(AF_INET, "10.0.0.7", &v4.sin_addr);
  EXPECT_TRUE(list.Allows(reinterpret_cast<sockaddr*>(&v4), sizeof(v4)));
  sockaddr_in6 v6{};
  v6.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "::ffff:10.0.0.7", &v6.sin6_addr);
  EXPECT_TRUE(list.Allows(reinterpret_cast<sockaddr*>(&v6), sizeof(v6)));
  inet_pton(AF_INET6, "fd00:9::1", &v6.sin6_addr);
  EXPECT_TRUE(list.Allows(reinterpret_cast<sockaddr*>(&v6), sizeof(v6)));
  inet_pton(AF_INET6, "fe00::1", &v6.sin6_addr);
  EXPECT_FALSE(list.Allows(reinterpret_cast<sockaddr*>(&v6), sizeof(v6)));
  EXPECT_FALSE(list.Allows(reinterpret_cast<sockaddr*>(&v6), sizeof(sockaddr_in)))
      << "a truncated address";
}

TEST(StoreAllowList, BadEntriesNameTheSourceTheEntryAndTheForm) {
  for (const char* bad : {"10.0.0", "10.1", "host.example", "10.0.0.1/33", "10.0.0.1/-1",
                          "fd00::/129", "10.0.0.0/", "10.0.0.0/8x", "/8", "ANY", "10.0.0.1:80"}) {
    StoreAllowList list;
    try {
      list.AddList(bad, "launch.store_allow");
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const common::ConfigError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("launch.store_allow"), std::string::npos) << what;
      EXPECT_NE(what.find(std::string("'") + bad + "'"), std::string::npos) << what;
      EXPECT_NE(what.find("10.0.0.0/16"), std::string::npos) << what;
    }
  }
}

TEST(StoreAllowList, DescribeShortensLongLists) {
  StoreAllowList list;
  EXPECT_EQ(list.Describe(), "nothing");
  list.AddList("10.0.0.1 10.0.0.2 10.0.0.1 10.9.0.0/16", "test");
  EXPECT_EQ(list.Describe(), "10.0.0.1, 10.0.0.2, 10.9.0.0/16");
  EXPECT_EQ(list.Describe(2), "10.0.0.1, 10.0.0.2 and 1 more");
}

TEST(JobStoreAllowList, LoopbackHostsStoreAddressAndTheOverride) {
  const StoreAllowList list =
      runner::JobStoreAllowList({"10.0.0.1", "10.0.0.2", "192.168.5.2"}, "10.0.0.1", "");
  for (const char* peer : {"127.0.0.1", "::1", "10.0.0.1", "10.0.0.2", "192.168.5.2"}) {
    EXPECT_TRUE(list.Allows(std::string(peer))) << peer;
  }
  EXPECT_FALSE(list.Allows(std::string("10.0.0.3")));
  EXPECT_FALSE(list.AllowsAny());

  // The store's own address, when it is none of the reported ones (an IPv6 launch.store_addr).
  EXPECT_TRUE(
      runner::JobStoreAllowList({"10.0.0.1"}, "fd00::1", "").Allows(std::string("fd00::1")));
  // "every interface" is no peer.
  EXPECT_FALSE(runner::JobStoreAllowList({}, "0.0.0.0", "").Allows(std::string("0.0.0.0")));
  EXPECT_FALSE(runner::JobStoreAllowList({}, "::", "").Allows(std::string("::")));

  const StoreAllowList extra = runner::JobStoreAllowList({"10.0.0.1"}, "10.0.0.1", "10.8.0.0/16");
  EXPECT_TRUE(extra.Allows(std::string("10.8.3.4")));
  EXPECT_TRUE(runner::JobStoreAllowList({"10.0.0.1"}, "10.0.0.1", "any").AllowsAny());
  EXPECT_THROW((void)runner::JobStoreAllowList({}, "127.0.0.1", "10.8.0.0/99"),
               common::ConfigError);
}

TEST(LogThrottle, BurstThenOnePerIntervalAndACountOfTheLeftOut) {
  using namespace std::chrono_literals;
  runner::LogThrottle throttle(3, 10s);
  const auto t0 = runner::LogThrottle::Clock::time_point{} + 1000s;
  std::vector<std::string> written;
  auto at = [&](std::chrono::seconds offset, const std::string& line) {
    if (auto out = throttle.Admit(line, t0 + offset)) written.push_back(*out);
  };
  for (int i = 0; i < 100; ++i) at(0s, "flood " + std::to_string(i));
  EXPECT_EQ(written, (std::vector<std::string>{"flood 0", "flood 1", "flood 2"}));
  at(9s, "still early");
  EXPECT_EQ(written.size(), 3u);
  at(10s, "later");
  ASSERT_EQ(written.size(), 4u);
  EXPECT_EQ(written[3], "later (98 similar lines left out before this one)");
  at(11s, "one more");  // the token of 10 s was spent
  EXPECT_EQ(written.size(), 4u);
  at(20s, "next");
  EXPECT_EQ(written.back(), "next (1 similar line left out before this one)");
  // A long quiet period earns the whole burst back, not more.
  for (int i = 0; i < 10; ++i) at(3600s, "after an hour");
  EXPECT_EQ(written.size(), 5u + 3u);
  EXPECT_EQ(throttle.left_out_total(), 98u + 1u + 7u);
}

}  // namespace

// The workers' network interface: user-set GLOO_SOCKET_IFNAME / NCCL_SOCKET_IFNAME checked against
// this machine's interfaces, and the one on the route to the store chosen otherwise.
#include "runner/net_interface.h"

#include <gtest/gtest.h>

#include "common/errors.h"

namespace runner {
namespace {

const std::vector<NetInterface> kMachine = {{"lo", "127.0.0.1", true},
                                            {"eth0", "10.1.0.5", false},
                                            {"ib0", "10.2.0.5", false},
                                            {"docker0", "172.17.0.1", false},
                                            {"eth0", "fd00::5", false}};

struct CheckCase {
  std::string gloo;
  std::string nccl;
  std::string error;  // empty: accepted
};

TEST(NetInterface, SetVariablesMustNameAnInterfaceHere) {
  const std::vector<CheckCase> cases = {
      {"", "", ""},
      {"eth0", "", ""},
      {"eth0,ib0", "", ""},
      {"eht0", "", "GLOO_SOCKET_IFNAME=eht0: no interface 'eht0' on node7"},
      {"eth0,ib1", "", "no interface 'ib1'"},
      {",,", "", "GLOO_SOCKET_IFNAME=',,' names no interface on node7"},
      {"^lo", "", "not NCCL's ^ (exclude) or = (exact) syntax"},
      {"=eth0", "", "not NCCL's"},
      {"", "eth", ""},
      {"", "=eth0", ""},
      {"", "^lo,docker", ""},
      {"", "=eth", "NCCL_SOCKET_IFNAME==eth matches no interface on node7"},
      {"", "enp", "NCCL_SOCKET_IFNAME=enp matches no interface"},
      {"", "^lo,eth,ib,docker", "matches no interface"},
  };
  for (const CheckCase& c : cases) {
    std::map<std::string, std::string> env;
    if (!c.gloo.empty()) env["GLOO_SOCKET_IFNAME"] = c.gloo;
    if (!c.nccl.empty()) env["NCCL_SOCKET_IFNAME"] = c.nccl;
    SCOPED_TRACE("GLOO=" + c.gloo + " NCCL=" + c.nccl);
    if (c.error.empty()) {
      EXPECT_NO_THROW(CheckInterfaceVariables(env, kMachine, "node7"));
      continue;
    }
    try {
      CheckInterfaceVariables(env, kMachine, "node7");
      ADD_FAILURE() << "accepted";
    } catch (const common::EnvironmentError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(c.error), std::string::npos) << what;
      EXPECT_NE(what.find("docker0, eth0, ib0, lo"), std::string::npos) << what;
    }
  }
}

struct ChooseCase {
  std::string gloo, nccl, store, source;
  std::string interface, gloo_out, nccl_out;  // "-": not set by the runner
};

TEST(NetInterface, TheRouteToTheStoreChoosesUnlessTheUserDid) {
  const std::vector<ChooseCase> cases = {
      {"", "", "10.1.0.1", "10.1.0.5", "eth0", "eth0", "=eth0"},
      {"", "", "10.2.0.9", "10.2.0.5", "ib0", "ib0", "=ib0"},
      {"", "", "127.0.0.1", "127.0.0.1", "lo", "lo", "=lo"},
      {"", "", "fd00::1", "fd00::5", "eth0", "eth0", "=eth0"},
      {"", "^docker", "10.1.0.1", "10.1.0.5", "eth0", "eth0", "-"},
      {"ib0", "", "10.1.0.1", "10.1.0.5", "ib0", "-", "=ib0"},
      {"ib0", "ib", "10.1.0.1", "10.1.0.5", "ib0", "-", "-"},
      {"", "", "10.9.0.1", "", "", "-", "-"},           // no route
      {"", "", "10.9.0.1", "192.0.2.1", "", "-", "-"},  // source on no interface
  };
  for (const ChooseCase& c : cases) {
    std::map<std::string, std::string> env;
    if (!c.gloo.empty()) env["GLOO_SOCKET_IFNAME"] = c.gloo;
    if (!c.nccl.empty()) env["NCCL_SOCKET_IFNAME"] = c.nccl;
    SCOPED_TRACE("store " + c.store + " GLOO=" + c.gloo + " NCCL=" + c.nccl);
    std::string asked;
    const WorkerNetwork n =
        ChooseWorkerNetwork(env, kMachine, c.store, 29500, [&](const std::string& host, uint16_t) {
          asked = host;
          return c.source;
        });
    EXPECT_EQ(n.interface, c.interface);
    auto got = [&n](const char* name) {
      auto it = n.env.find(name);
      return it == n.env.end() ? std::string("-") : it->second;
    };
    EXPECT_EQ(got("GLOO_SOCKET_IFNAME"), c.gloo_out);
    EXPECT_EQ(got("NCCL_SOCKET_IFNAME"), c.nccl_out);
    const std::string line = DescribeWorkerNetwork(n);
    if (c.gloo.empty()) {
      EXPECT_EQ(asked, c.store);
      EXPECT_NE(line.find("the route to the store " + c.store + ":29500"), std::string::npos)
          << line;
    } else {
      EXPECT_NE(line.find("set in GLOO_SOCKET_IFNAME"), std::string::npos) << line;
    }
  }
}

TEST(NetInterface, LoopbackIsReachedFromLoopback) {
  EXPECT_EQ(SourceAddressTo("127.0.0.1", 29500), "127.0.0.1");
  bool has_lo = false;
  for (const NetInterface& i : ListInterfaces()) has_lo = has_lo || (i.loopback && i.name == "lo");
  EXPECT_TRUE(has_lo);
}

}  // namespace
}  // namespace runner

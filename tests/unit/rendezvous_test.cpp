// The rendezvous as pure functions (runner/rendezvous.h): reports and sessions round-trip, the
// layout's node and rank order, each agent's place, the store's address.

#include "runner/rendezvous.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/errors.h"

namespace runner {
namespace {

AgentInfo Agent(int rank, const std::string& host, int nproc, int node = -1,
                std::vector<InterfaceAddress> addrs = {}) {
  AgentInfo a;
  a.agent = rank;
  a.pid = 1000 + rank;
  a.host = host;
  a.nproc = nproc;
  a.scheduler_node = node;
  a.addresses = std::move(addrs);
  return a;
}

TEST(RendezvousTest, InfoRoundTrips) {
  AgentInfo a = Agent(3, "n-2", 4, 1, {{"10.1.2.3", 24}, {"192.168.0.5", 16}});
  a.devices = {"0", "GPU-abc"};
  a.pid = 77;
  AgentInfo b = AgentInfo::Parse(a.Serialize(), 0);
  EXPECT_EQ(b.Serialize(), a.Serialize());
  EXPECT_THROW((void)AgentInfo::Parse("garbage", 0), common::CommunicationError);
}

TEST(RendezvousTest, LayoutIsNodeMajorAndHeterogeneous) {
  struct Row {
    std::string name;
    std::vector<AgentInfo> agents;
    std::vector<std::string> hosts;
    std::vector<int> first_rank;
    std::vector<int> first_local;
    int world;
  };
  const std::vector<Row> rows = {
      {"one agent", {Agent(0, "a", 2)}, {"a"}, {0}, {0}, 2},
      {"two nodes by hostname",
       {Agent(0, "a", 2), Agent(1, "b", 2)},
       {"a", "b"},
       {0, 2},
       {0, 0},
       4},
      {"heterogeneous 3+1", {Agent(0, "a", 3), Agent(1, "b", 1)}, {"a", "b"}, {0, 3}, {0, 0}, 4},
      {"cyclic MPI ranks: node-major ranks anyway",
       {Agent(0, "a", 1), Agent(1, "b", 1), Agent(2, "a", 1), Agent(3, "b", 1)},
       {"a", "b"},
       {0, 2, 1, 3},
       {0, 0, 1, 1},
       4},
      {"scheduler node ids order the nodes",
       {Agent(0, "b", 2, 1), Agent(1, "a", 2, 0)},
       {"a", "b"},
       {2, 0},
       {0, 0},
       4},
      {"several agents per host",
       {Agent(0, "a", 1, 0), Agent(1, "a", 2, 0), Agent(2, "b", 1, 1)},
       {"a", "b"},
       {0, 1, 3},
       {0, 1, 0},
       4},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    Layout layout = BuildLayout(row.agents);
    EXPECT_EQ(layout.hosts, row.hosts);
    EXPECT_EQ(layout.first_rank_of_agent, row.first_rank);
    EXPECT_EQ(layout.first_local_rank_of_agent, row.first_local);
    EXPECT_EQ(layout.world_size, row.world);
  }
  // Each node's first agent owns the node's shared-memory names (common/shm_name.h).
  EXPECT_EQ(BuildLayout({Agent(0, "a", 1, 0), Agent(1, "a", 2, 0), Agent(2, "b", 1, 1)})
                .agent_pid_of_node,
            (std::vector<int>{1000, 1002}));
  EXPECT_EQ(BuildLayout({Agent(0, "a", 1), Agent(1, "b", 1), Agent(2, "a", 1), Agent(3, "b", 1)})
                .agent_pid_of_node,
            (std::vector<int>{1000, 1001}));
}

// Each agent gets only its slice of the layout, and it round-trips with the session.
TEST(RendezvousTest, EachAgentsPlaceIsItsSliceOfTheLayout) {
  const Layout layout = BuildLayout(
      {Agent(0, "b", 2, 1), Agent(1, "a", 1, 0), Agent(2, "b", 3, 1), Agent(3, "c", 1, 2)});
  struct Row {
    int agent, node, local_index, agents_on_node, first_rank, first_local, workers, pid;
  };
  for (const Row& r : std::vector<Row>{{0, 1, 0, 2, 1, 0, 5, 1000},
                                       {1, 0, 0, 1, 0, 0, 1, 1001},
                                       {2, 1, 1, 2, 3, 2, 5, 1000},
                                       {3, 2, 0, 1, 6, 0, 1, 1003}}) {
    SCOPED_TRACE("agent " + std::to_string(r.agent));
    const AgentPlace p = PlaceOf(layout, r.agent);
    EXPECT_EQ(p.node, r.node);
    EXPECT_EQ(p.node_count, 3);
    EXPECT_EQ(p.local_index, r.local_index);
    EXPECT_EQ(p.agents_on_node, r.agents_on_node);
    EXPECT_EQ(p.first_rank, r.first_rank);
    EXPECT_EQ(p.first_local_rank, r.first_local);
    EXPECT_EQ(p.workers_on_node, r.workers);
    EXPECT_EQ(p.node_agent_pid, r.pid);
    EXPECT_EQ(p.world_size, 7);
    const JobSession session{"77", "0123456789abcdef0123456789abcdef", 3, "10.0.0.1", 4000};
    const Welcome back = Welcome::Parse(Welcome{session, p}.Serialize());
    EXPECT_EQ(back.place.Serialize(), p.Serialize());
    EXPECT_EQ(back.session.Serialize(), session.Serialize());
  }
  // A place that contradicts itself is refused, naming the field.
  AgentPlace bad = PlaceOf(layout, 2);
  bad.local_index = 2;
  try {
    (void)AgentPlace::Parse(bad.Serialize());
    FAIL() << "no error";
  } catch (const common::CommunicationError& e) {
    EXPECT_NE(std::string(e.what()).find("local_index"), std::string::npos) << e.what();
  }
}

TEST(RendezvousTest, ContradictoryNodeIdsAreRefused) {
  EXPECT_THROW((void)BuildLayout({Agent(0, "a", 1, 0), Agent(1, "b", 1, 0)}),
               common::EnvironmentError);
  EXPECT_THROW((void)BuildLayout({Agent(0, "a", 1, 0), Agent(1, "a", 1, 1)}),
               common::EnvironmentError);
}

TEST(RendezvousTest, StoreAddressIsLoopbackOrTheSharedSubnet) {
  std::vector<AgentInfo> one = {Agent(0, "a", 1, -1, {{"10.0.0.1", 24}})};
  EXPECT_EQ(ChooseStoreAddress(one, BuildLayout(one), "auto"), "127.0.0.1");
  std::vector<AgentInfo> two = {Agent(0, "a", 1, -1, {{"172.17.0.1", 16}, {"10.9.0.1", 24}}),
                                Agent(1, "b", 1, -1, {{"10.9.0.2", 24}})};
  EXPECT_EQ(ChooseStoreAddress(two, BuildLayout(two), "auto"), "10.9.0.1");
  EXPECT_EQ(ChooseStoreAddress(two, BuildLayout(two), "10.9.0.7"), "10.9.0.7");
  std::vector<AgentInfo> none = {Agent(0, "a", 1), Agent(1, "b", 1, -1, {{"10.9.0.2", 24}})};
  try {
    (void)ChooseStoreAddress(none, BuildLayout(none), "auto");
    FAIL() << "no error";
  } catch (const common::CommunicationError& e) {
    EXPECT_NE(std::string(e.what()).find("set launch.store_addr"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace runner

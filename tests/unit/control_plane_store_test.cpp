// The control plane over the job's store (runner/control_plane_store.h) with agents as threads
// over a real StoreServer on loopback: an abort seen by the others with its code, a lost agent,
// and the rendezvous' failure modes with their messages (the collectives and notices are in
// control_plane_store_collectives_test.cpp).

#include "runner/control_plane_store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <future>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/errors.h"
#include "common/record.h"
#include "runner/control_plane_store_detail.h"
#include "runner/store_client.h"
#include "runner/store_server.h"
#include "tests/unit/store_plane_job.h"

namespace runner {
namespace {

using namespace std::chrono_literals;
using testing_support::Job;

std::string What(const std::function<void()>& body) {
  try {
    body();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(StoreControlPlaneTest, AnAbortPostedByOneAgentEndsTheOthersWithItsCode) {
  Job job;
  const auto results = job.Run<std::string>(3, [&job](ControlPlane& c) {
    c.BeginAttempt(0);
    if (c.rank() == 2) {
      (void)c.AllReduceMax(0);
      StoreClient raw("127.0.0.1", job.store->port(), 1, 1, "test");
      raw.Set("/runner/abort", common::RecordWriter()
                                   .Add("code", 4)
                                   .Add("node_rank", 2)
                                   .Add("host", "host2")
                                   .Add("reason", "cannot create the job directory")
                                   .str());
      return std::string("sent");
    }
    try {
      (void)c.AllReduceMax(0);  // everyone is past the rendezvous
      while (true) {
        (void)c.PollNotice();
        std::this_thread::sleep_for(5ms);
      }
    } catch (const common::Error& e) {
      return std::to_string(e.code()) + " " + e.what();
    }
  });
  EXPECT_EQ(results[0],
            "4 node rank 2 (host host2) ended the job: cannot create the job directory");
  EXPECT_EQ(results[1], results[0]);
}

// An agent that joined and then went silent without a goodbye (as a SIGKILL leaves it) is named
// to the others by node 0 once lost_after_s has passed.
TEST(StoreControlPlaneTest, AnAgentThatStopsAnsweringIsNamedToTheOthers) {
  Job job;
  StoreClient fake("127.0.0.1", job.store->port(), 1, 1, "test");
  (void)fake.Add("/runner/join/1", 1);
  fake.Set("/runner/agent/1",
           common::RecordWriter().Add("host", "ghost").Add("pid", 42).Add("nnodes", 2).str());
  (void)fake.Add("/runner/joined", 1);
  std::unique_ptr<ControlPlane> node0 = MakeStoreControlPlane(job.Options(0, 2));
  node0->BeginAttempt(0);
  const auto start = std::chrono::steady_clock::now();
  const std::string message = What([&] {
    while (std::chrono::steady_clock::now() - start < 10s) {
      (void)node0->PollNotice();
      std::this_thread::sleep_for(5ms);
    }
  });
  EXPECT_EQ(
      message.rfind(
          "node rank 1 (host ghost, pid 42) stopped answering: its agent gave no sign of life", 0),
      0u)
      << message;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

// An agent 1 by hand: joined, with a liveness connection that beats until `beats` are done.
struct FakeAgent {
  explicit FakeAgent(const Job& job)
      : port(job.store->port()), main("127.0.0.1", port, 1, 1, "test") {
    (void)main.Add("/runner/join/1", 1);
    main.Set("/runner/agent/1",
             common::RecordWriter().Add("host", "ghost").Add("pid", 42).Add("nnodes", 2).str());
    (void)main.Add("/runner/joined", 1);
  }
  void Beat(std::chrono::milliseconds for_how_long) {
    if (!beat) {
      beat = std::make_unique<StoreClient>("127.0.0.1", port, 1, 1, "test");
      beat->Set("/runner/beat_from/1", beat->LocalName());
    }
    const auto end = std::chrono::steady_clock::now() + for_how_long;
    while (std::chrono::steady_clock::now() < end) {
      (void)beat->Add("/runner/alive/1", 1);
      std::this_thread::sleep_for(20ms);
    }
  }
  int port;
  StoreClient main;
  std::unique_ptr<StoreClient> beat;
};

// What node 0 throws within `how_long` of polling.
std::string PollFor(ControlPlane& node0, std::chrono::milliseconds how_long) {
  const auto start = std::chrono::steady_clock::now();
  return What([&] {
    while (std::chrono::steady_clock::now() - start < how_long) {
      (void)node0.PollNotice();
      std::this_thread::sleep_for(5ms);
    }
  });
}

// Its liveness connection closing without a goodbye names it at once (not after lost_after_s of
// silence); one that said goodbye first is not lost.
TEST(StoreControlPlaneTest, AnAgentWhoseConnectionClosesWithoutAGoodbyeIsNamedAtOnce) {
  for (const bool goodbye : {false, true}) {
    SCOPED_TRACE(goodbye ? "goodbye first" : "killed");
    Job job;
    FakeAgent agent(job);
    std::unique_ptr<ControlPlane> node0 = MakeStoreControlPlane(job.Options(0, 2));
    node0->BeginAttempt(0);
    agent.Beat(300ms);  // node 0 has read where its beats come from
    if (goodbye) agent.main.Set("/runner/bye/1", "1");
    agent.beat.reset();
    const std::string message = PollFor(*node0, 250ms);  // half of lost_after_s
    if (goodbye) {
      EXPECT_EQ(message, "(no error)");
    } else {
      EXPECT_EQ(message,
                "node rank 1 (host ghost, pid 42) is gone: its agent's connection to the job's "
                "store closed without a goodbye (the agent was killed or crashed, or its "
                "connection broke); the job cannot go on without it");
    }
  }
}

// The rendezvous' failure modes, each with its message.
TEST(StoreControlPlaneTest, NodesThatNeverArriveAreNamedAtTheTimeout) {
  Job job;
  StoreControlPlaneOptions o = job.Options(0, 3);
  o.rendezvous_timeout_s = 0.3;
  const std::string message = What([&] { (void)MakeStoreControlPlane(o); });
  EXPECT_NE(message.find("timed out after 0.3 s (launch.rendezvous_timeout_s): node rank(s) 1, 2 "
                         "of NNODES=3 never arrived (here: 0 on host0)"),
            std::string::npos)
      << message;
}

TEST(StoreControlPlaneTest, AnUnreachableMasterIsNamedWithItsAddressAndPort) {
  uint16_t port = 0;
  {
    StoreServer closed("127.0.0.1", 0);
    port = closed.port();
  }
  Job job;
  StoreControlPlaneOptions o = job.Options(1, 2);
  o.master_port = port;
  o.rendezvous_timeout_s = 0.5;
  const std::string message = What([&] { (void)MakeStoreControlPlane(o); });
  EXPECT_EQ(message.rfind("cannot reach the job's store at MASTER_ADDR:MASTER_PORT = 127.0.0.1:" +
                              std::to_string(port) + ": Connection refused (retried ",
                          0),
            0u)
      << message;
}

TEST(StoreControlPlaneTest, ASecondAgentWithTheSameNodeRankIsRefusedNamingTheFirst) {
  Job job;
  auto agent = [&job](int rank) {
    return std::async(std::launch::async, [&job, rank] {
      std::unique_ptr<ControlPlane> plane = MakeStoreControlPlane(job.Options(rank, 2));
      return plane->AllReduceMax(rank);
    });
  };
  auto node0 = agent(0);
  auto first = agent(1);
  // The second tries once the first holds rank 1.
  StoreClient raw("127.0.0.1", job.store->port(), 1, 1, "test");
  while (raw.Get("/runner/agent/1").empty()) std::this_thread::sleep_for(5ms);
  StoreControlPlaneOptions twin = job.Options(1, 2);
  twin.host = "twin";
  const std::string message = What([&] { (void)MakeStoreControlPlane(twin); });
  EXPECT_NE(message.find("NODE_RANK=1 is taken: host host1 (pid "), std::string::npos) << message;
  EXPECT_NE(message.find("every machine needs its own NODE_RANK, 0..1 for NNODES=2 (this is host "
                         "twin)"),
            std::string::npos)
      << message;
  EXPECT_EQ(node0.get(), 1);  // the job goes on with the first
  EXPECT_EQ(first.get(), 1);
}

TEST(StoreControlPlaneTest, NodeCountsThatDisagreeEndEveryAgentWithBothNamed) {
  Job job;
  auto node0 = std::async(std::launch::async, [&job] {
    return What([&job] { (void)MakeStoreControlPlane(job.Options(0, 2)); });
  });
  const std::string mine = What([&job] { (void)MakeStoreControlPlane(job.Options(1, 3)); });
  const std::string expected =
      "NNODES disagree: node rank 1 (host host1) has NNODES=3 but node rank 0 (host host0) has "
      "NNODES=2; give every machine the same NNODES (and --nnodes)";
  EXPECT_EQ(mine, expected);
  EXPECT_EQ(node0.get(), "node rank 1 (host host1) ended the job: " + expected);
}

TEST(StoreControlPlaneTest, APortInUseOnTheMasterIsNamedWithTheFix) {
  Job job;
  StoreControlPlaneOptions o = job.Options(0, 2);  // the job's store holds the port already
  o.host = "n0";
  const std::string message = What([&] { (void)HostJobStore(o, nullptr, nullptr); });
  EXPECT_EQ(message, "MASTER_ADDR:MASTER_PORT = 127.0.0.1:" + std::to_string(o.master_port) +
                         " (127.0.0.1) is already in use on host n0, where node 0 must host the "
                         "job's store: another job or program listens there (ss -ltnp 'sport = :" +
                         std::to_string(o.master_port) +
                         "' names it). Pick a free port and give every machine the same "
                         "MASTER_PORT");
}

// Node 0's store answers at most about 10,000 polls a second, however many agents poll it.
TEST(StoreControlPlanePolls, TheIntervalKeepsNodeZerosLoadBounded) {
  struct Row {
    int agents;
    double interval_s;
  };
  for (const Row& row : std::vector<Row>{{2, 0.1}, {1000, 0.1}, {4000, 0.4}, {20000, 2.0}}) {
    EXPECT_DOUBLE_EQ(PollInterval(row.agents), row.interval_s) << row.agents << " agents";
    EXPECT_LE(row.agents / PollInterval(row.agents), 10000.0 + 1e-6) << row.agents << " agents";
  }
}

TEST(StoreControlPlaneCounters, AreReadStrictlyAndGarbageIsNamed) {
  EXPECT_EQ(store_plane::ParseCount("", "/runner/joined"), 0);
  EXPECT_EQ(store_plane::ParseCount("12", "/runner/joined"), 12);
  for (const char* bad : {"12abc", " 3", "x", "0x10"}) {
    try {
      (void)store_plane::ParseCount(bad, "/runner/joined");
      ADD_FAILURE() << bad << " was accepted";
    } catch (const common::CommunicationError& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("holds '") + bad + "' for /runner/joined"),
                std::string::npos)
          << e.what();
    }
  }
}

// The blocking WAIT the collectives use: answered the moment the key is set, cancelled cleanly
// at its timeout (the connection stays usable), at once for a key that exists.
TEST(StoreClientWait, AnsweredWhenSetCancelledAtItsTimeout) {
  StoreServer store("127.0.0.1", 0);
  StoreClient waiter("127.0.0.1", store.port(), 5, 5, "the store");
  StoreClient setter("127.0.0.1", store.port(), 5, 5, "the store");
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(waiter.Wait({"/k"}, 0.2));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 200ms);
  EXPECT_EQ(waiter.Get("/k"), "");  // after a cancelled wait the next answer is its own
  std::thread later([&setter] {
    std::this_thread::sleep_for(100ms);  // the scenario: the key comes while the wait blocks
    setter.Set("/k", "v");
  });
  EXPECT_TRUE(waiter.Wait({"/k"}, 10));
  later.join();
  EXPECT_TRUE(waiter.Wait({"/k"}, 0.01));
  EXPECT_EQ(waiter.Add("/count", 2), 2);
  // Set just as the wait times out: either answer is right, and the connection stays in step.
  for (int i = 0; i < 20; ++i) {
    const std::string key = "/race" + std::to_string(i);
    std::thread racer([&setter, &key] { setter.Set(key, "x"); });
    (void)waiter.Wait({key}, 0.0005);
    racer.join();
    EXPECT_EQ(waiter.Get(key), "x");
  }
}

}  // namespace
}  // namespace runner

#include "runner/topology.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/environment.h"
#include "common/errors.h"
#include "runner/launch_env.h"
#include "tests/unit/test_helpers.h"

// PlanAgent and ShareOfDevices, on environments detected from the recordings in tests/data/env.

namespace runner {
namespace {

using testing_support::Edits;
using testing_support::Join;
using testing_support::LoadEnv;
using testing_support::Strings;
using testing_support::recorded::kBatch1;
using testing_support::recorded::kHetero0;
using testing_support::recorded::kHetero1;
using testing_support::recorded::kLocal;
using testing_support::recorded::kMpirun;
using testing_support::recorded::kMpirunInSlurm;
using testing_support::recorded::kSrun2;
using testing_support::recorded::kTorchrun;

LaunchEnvironment Detect(const std::string& file, const Edits& edits, const HostFacts& host) {
  return DetectLaunchEnvironment(LoadEnv(file, edits), host);
}

// ---------------------------------------------------------------------------------------------
// ShareOfDevices

struct ShareCase {
  Strings devices;
  int local_count;
  std::vector<Strings> shares;  // one per local rank
};

TEST(ShareOfDevicesTest, Table) {
  const std::vector<ShareCase> cases = {
      {{"0", "1", "2", "3"}, 4, {{"0"}, {"1"}, {"2"}, {"3"}}},
      {{"0", "1", "2", "3"}, 2, {{"0", "1"}, {"2", "3"}}},
      {{"0", "1", "2", "3"}, 1, {{"0", "1", "2", "3"}}},
      // Uneven: contiguous, sizes differ by at most one.
      {{"0", "1", "2", "3", "4", "5", "6", "7"}, 3, {{"0", "1"}, {"2", "3", "4"}, {"5", "6", "7"}}},
      {{"0", "1", "2", "3", "4"}, 2, {{"0", "1"}, {"2", "3", "4"}}},
      {{"0", "1"}, 1, {{"0", "1"}}},
      // Names are kept as CUDA_VISIBLE_DEVICES gives them, in that order.
      {{"3", "1", "GPU-ab"}, 3, {{"3"}, {"1"}, {"GPU-ab"}}},
      // No GPUs: every agent gets none.
      {{}, 1, {{}}},
      {{}, 3, {{}, {}, {}}},
  };
  for (const ShareCase& c : cases) {
    for (int rank = 0; rank < c.local_count; ++rank) {
      SCOPED_TRACE("devices '" + Join(c.devices) + "', agent " + std::to_string(rank) + " of " +
                   std::to_string(c.local_count));
      EXPECT_EQ(ShareOfDevices(c.devices, rank, c.local_count),
                c.shares[static_cast<size_t>(rank)]);
    }
  }
}

TEST(ShareOfDevicesTest, SharesTileTheDevicesInOrder) {
  for (size_t n = 0; n <= 9; ++n) {
    Strings devices;
    for (size_t i = 0; i < n; ++i) devices.push_back(std::to_string(i));
    for (int count = 1; count <= 9; ++count) {
      if (n > 0 && static_cast<int>(n) < count) continue;  // PlanAgent refuses these
      SCOPED_TRACE(std::to_string(n) + " devices, " + std::to_string(count) + " agents");
      Strings joined;
      size_t smallest = n;
      size_t largest = 0;
      for (int rank = 0; rank < count; ++rank) {
        Strings share = ShareOfDevices(devices, rank, count);
        smallest = std::min(smallest, share.size());
        largest = std::max(largest, share.size());
        joined.insert(joined.end(), share.begin(), share.end());
      }
      EXPECT_EQ(joined, devices);
      EXPECT_LE(largest - smallest, 1u);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// PlanAgent on single recordings.

TEST(PlanAgentTest, AutoWithGpusGivesOneWorkerPerGpuOfThisAgentsShare) {
  const LaunchEnvironment env = Detect(kSrun2, {}, {"gpu002", 0, 32});
  const AgentPlan plan = PlanAgent(env, std::nullopt, "auto");
  EXPECT_EQ(plan.devices.value, Strings{"2"});
  EXPECT_EQ(plan.devices.source, "share 3 of 4 of CUDA_VISIBLE_DEVICES");
  EXPECT_EQ(plan.nproc.value, 1);
  EXPECT_EQ(plan.nproc.source, "launch.nproc_per_node=auto: one per GPU");
  EXPECT_EQ(plan.backend.value, "nccl");
  EXPECT_EQ(plan.backend.source, "launch.backend=auto: GPUs present");
  EXPECT_EQ(plan.world_size, 8);
  EXPECT_EQ(plan.first_rank, 6);
  EXPECT_EQ(plan.local_world_size, 4);
  EXPECT_TRUE(plan.world_assumed);  // other nodes' GPU counts are learnt at rendezvous
  EXPECT_EQ(plan.master_host.value, "gpu001");
  EXPECT_EQ(plan.master_host.source, "first host of SLURM_STEP_NODELIST");
  ASSERT_EQ(plan.workers.size(), 1u);
  EXPECT_EQ(plan.workers[0].global_rank, 6);
  EXPECT_EQ(plan.workers[0].local_rank, 2);
  EXPECT_EQ(plan.workers[0].device, "2");
}

TEST(PlanAgentTest, AutoWithAllGpusOfTheNode) {
  const LaunchEnvironment env = Detect(kBatch1, {}, {"gpu007", 0, 16});
  const AgentPlan plan = PlanAgent(env, std::nullopt, "auto");
  EXPECT_EQ(plan.devices.value, (Strings{"0", "1"}));
  EXPECT_EQ(plan.devices.source, "CUDA_VISIBLE_DEVICES");  // a single agent does not share
  EXPECT_EQ(plan.nproc.value, 2);
  EXPECT_EQ(plan.backend.value, "nccl");
  EXPECT_EQ(plan.world_size, 2);
  EXPECT_EQ(plan.first_rank, 0);
  EXPECT_EQ(plan.local_world_size, 2);
  EXPECT_FALSE(plan.world_assumed);
  EXPECT_EQ(plan.master_host.value, "gpu007");
  ASSERT_EQ(plan.workers.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(plan.workers[static_cast<size_t>(i)].global_rank, i);
    EXPECT_EQ(plan.workers[static_cast<size_t>(i)].local_rank, i);
    EXPECT_EQ(plan.workers[static_cast<size_t>(i)].device, std::to_string(i));
  }
}

TEST(PlanAgentTest, AutoWithoutGpusGivesOneCpuWorker) {
  const LaunchEnvironment env = Detect(kHetero0, {}, {"n1", 0, 3});
  const AgentPlan plan = PlanAgent(env, std::nullopt, "auto");
  EXPECT_TRUE(plan.devices.value.empty());
  EXPECT_EQ(plan.nproc.value, 1);
  EXPECT_EQ(plan.nproc.source, "launch.nproc_per_node=auto: no GPU, one CPU worker");
  EXPECT_EQ(plan.backend.value, "gloo");
  EXPECT_EQ(plan.backend.source, "launch.backend=auto: CPU only");
  EXPECT_EQ(plan.world_size, 4);
  EXPECT_EQ(plan.first_rank, 1);
  EXPECT_EQ(plan.local_world_size, 3);
  EXPECT_FALSE(plan.world_assumed);  // CPU: every agent starts one worker, exactly known
  EXPECT_EQ(plan.master_host.value, "n1");
  ASSERT_EQ(plan.workers.size(), 1u);
  EXPECT_EQ(plan.workers[0].global_rank, 1);
  EXPECT_EQ(plan.workers[0].local_rank, 1);
  EXPECT_EQ(plan.workers[0].device, "");
}

TEST(PlanAgentTest, ExplicitNprocOnCpu) {
  const LaunchEnvironment env = Detect(kHetero1, {}, {"n2", 0, 1});
  const AgentPlan plan = PlanAgent(env, 2, "gloo");
  EXPECT_EQ(plan.nproc.value, 2);
  EXPECT_EQ(plan.nproc.source, "launch.nproc_per_node");
  EXPECT_EQ(plan.backend.value, "gloo");
  EXPECT_EQ(plan.backend.source, "launch.backend");
  EXPECT_EQ(plan.world_size, 8);
  EXPECT_EQ(plan.first_rank, 6);
  EXPECT_EQ(plan.local_world_size, 2);
  EXPECT_FALSE(plan.world_assumed);
  ASSERT_EQ(plan.workers.size(), 2u);
  EXPECT_EQ(plan.workers[0].global_rank, 6);
  EXPECT_EQ(plan.workers[1].global_rank, 7);
  EXPECT_EQ(plan.workers[0].local_rank, 0);
  EXPECT_EQ(plan.workers[1].local_rank, 1);
}

TEST(PlanAgentTest, ExplicitNprocBelowTheGpuShare) {
  const LaunchEnvironment env = Detect(kBatch1, {}, {"gpu007", 0, 16});
  const AgentPlan plan = PlanAgent(env, 1, "nccl");
  EXPECT_EQ(plan.nproc.value, 1);
  EXPECT_EQ(plan.world_size, 1);
  ASSERT_EQ(plan.workers.size(), 1u);
  EXPECT_EQ(plan.workers[0].device, "0");
}

TEST(PlanAgentTest, MoreWorkersThanGpusIsAConfigError) {
  const LaunchEnvironment env = Detect(kBatch1, {}, {"gpu007", 0, 16});
  try {
    static_cast<void>(PlanAgent(env, 3, "auto"));
    ADD_FAILURE() << "no error";
  } catch (const common::ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              "launch.nproc_per_node=3 but this agent has only 2 GPU(s) (CUDA_VISIBLE_DEVICES); "
              "use at most 2 or auto (one worker per GPU)");
  }
  // Against this agent's share, not the node's GPUs.
  const LaunchEnvironment shared = Detect(kSrun2, {}, {"gpu002", 0, 32});
  try {
    static_cast<void>(PlanAgent(shared, 2, "auto"));
    ADD_FAILURE() << "no error";
  } catch (const common::ConfigError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("launch.nproc_per_node=2"), std::string::npos) << message;
    EXPECT_NE(message.find("only 1 GPU(s)"), std::string::npos) << message;
    EXPECT_NE(message.find("share 3 of 4 of CUDA_VISIBLE_DEVICES"), std::string::npos) << message;
  }
}

TEST(PlanAgentTest, NcclWithoutGpusIsAConfigError) {
  const LaunchEnvironment env = Detect(kHetero0, {}, {"n1", 0, 3});
  try {
    static_cast<void>(PlanAgent(env, std::nullopt, "nccl"));
    ADD_FAILURE() << "no error";
  } catch (const common::ConfigError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("launch.backend=nccl"), std::string::npos) << message;
    EXPECT_NE(message.find("no GPU"), std::string::npos) << message;
  }
  EXPECT_THROW(static_cast<void>(PlanAgent(env, 2, "nccl")), common::ConfigError);
}

TEST(PlanAgentTest, MoreAgentsThanGpusOnAHostIsAnEnvironmentError) {
  const LaunchEnvironment env =
      Detect(kSrun2, {{"CUDA_VISIBLE_DEVICES", "0,1"}}, {"gpu002", 0, 32});
  for (std::optional<int> nproc : {std::optional<int>(), std::optional<int>(1)}) {
    SCOPED_TRACE(nproc ? "nproc 1" : "nproc auto");
    try {
      static_cast<void>(PlanAgent(env, nproc, "auto"));
      ADD_FAILURE() << "no error";
    } catch (const common::EnvironmentError& e) {
      EXPECT_EQ(std::string(e.what()),
                "4 agents on host gpu002 (SLURM_STEP_TASKS_PER_NODE[1]) must share 2 GPU(s) "
                "(CUDA_VISIBLE_DEVICES): some would get none; start one agent per node "
                "(srun --ntasks-per-node=1) or request more GPUs");
    }
  }
}

TEST(PlanAgentTest, MpirunAssumesEveryAgentMatchesThisOne) {
  const LaunchEnvironment env = Detect(kMpirun, {}, {"b", 2, 8});
  const AgentPlan plan = PlanAgent(env, std::nullopt, "auto");
  EXPECT_EQ(plan.nproc.value, 2);
  EXPECT_EQ(plan.world_size, 4);
  EXPECT_EQ(plan.first_rank, 2);
  EXPECT_EQ(plan.local_world_size, 2);
  EXPECT_TRUE(plan.world_assumed);
  EXPECT_EQ(plan.master_host.value, "");
  EXPECT_EQ(plan.master_host.source, "the host of MPI rank 0, learnt at rendezvous");
  ASSERT_EQ(plan.workers.size(), 2u);
  EXPECT_EQ(plan.workers[1].global_rank, 3);
  EXPECT_EQ(plan.workers[1].local_rank, 1);
  EXPECT_EQ(plan.workers[1].device, "1");
}

TEST(PlanAgentTest, MpirunInsideSlurmUsesOmpiRankNotSlurmProcid) {
  const LaunchEnvironment env = Detect(kMpirunInSlurm, {}, {"n2", 0, 2});
  const AgentPlan plan = PlanAgent(env, std::nullopt, "auto");
  EXPECT_EQ(plan.world_size, 2);
  EXPECT_EQ(plan.first_rank, 1);
  ASSERT_EQ(plan.workers.size(), 1u);
  EXPECT_EQ(plan.workers[0].global_rank, 1);
  EXPECT_EQ(plan.workers[0].local_rank, 0);
}

TEST(PlanAgentTest, TorchrunStyleAndLocalMasters) {
  const LaunchEnvironment torch = Detect(kTorchrun, {}, {"train-worker-1", 4, 32});
  const AgentPlan torch_plan = PlanAgent(torch, std::nullopt, "auto");
  EXPECT_EQ(torch_plan.nproc.value, 4);
  EXPECT_EQ(torch_plan.world_size, 8);
  EXPECT_EQ(torch_plan.first_rank, 4);
  EXPECT_EQ(torch_plan.master_host.value, "10.0.0.1");
  EXPECT_EQ(torch_plan.master_host.source, "MASTER_ADDR");

  const LaunchEnvironment local = Detect(kLocal, {}, {"ws12", 0, 4});
  const AgentPlan local_plan = PlanAgent(local, std::nullopt, "auto");
  EXPECT_EQ(local_plan.nproc.value, 1);
  EXPECT_EQ(local_plan.world_size, 1);
  EXPECT_EQ(local_plan.first_rank, 0);
  EXPECT_FALSE(local_plan.world_assumed);
  EXPECT_EQ(local_plan.master_host.value, "127.0.0.1");
  EXPECT_EQ(local_plan.backend.value, "gloo");
}

// ---------------------------------------------------------------------------------------------
// Every agent of a job, planned separately: the ranks they hand out tile 0..world-1 exactly once,
// they all agree on the world size, and each host's local ranks tile 0..local_world-1.

struct Agent {
  int node;
  int local;
  int procid;
};

struct JobCase {
  std::string name;
  std::string file;
  Edits edits;  // applied to every agent
  std::vector<Agent> agents;
  std::vector<std::string> hosts;  // by node
  std::optional<int> nproc;
  int want_world;
  int want_gpus_per_agent;  // 0: CPU
};

std::vector<Agent> Block(const std::vector<int>& per_node) {
  std::vector<Agent> agents;
  int procid = 0;
  for (int node = 0; node < static_cast<int>(per_node.size()); ++node) {
    for (int local = 0; local < per_node[static_cast<size_t>(node)]; ++local) {
      agents.push_back({node, local, procid++});
    }
  }
  return agents;
}

TEST(PlanAgentTest, AllAgentsOfAJobTileTheRanks) {
  // clang-format off
  const std::vector<JobCase> cases = {
      {"2 nodes x 4 agents, 4 GPUs per node", kSrun2, {}, Block({4, 4}), {"gpu001", "gpu002"},
       std::nullopt, 8, 1},
      {"2 nodes x 4 agents, 8 GPUs per node", kSrun2,
       {{"CUDA_VISIBLE_DEVICES", "0,1,2,3,4,5,6,7"}}, Block({4, 4}), {"gpu001", "gpu002"},
       std::nullopt, 16, 2},
      {"2 nodes x 3 agents, 8 GPUs per node (uneven shares)", kSrun2,
       {{"CUDA_VISIBLE_DEVICES", "0,1,2,3,4,5,6,7"}, {"SLURM_STEP_TASKS_PER_NODE", "3(x2)"},
        {"SLURM_STEP_NUM_TASKS", "6"}},
       Block({3, 3}), {"gpu001", "gpu002"}, std::nullopt, 16, -1},
      {"2 nodes x 4 agents, 4 GPUs per node, nproc 1", kSrun2, {}, Block({4, 4}),
       {"gpu001", "gpu002"}, 1, 8, 1},
      {"3(x1),1 on CPU", kHetero0, {}, Block({3, 1}), {"n1", "n2"}, std::nullopt, 4, 0},
      {"3(x1),1 on CPU, nproc 2", kHetero0, {}, Block({3, 1}), {"n1", "n2"}, 2, 8, 0},
  };
  // clang-format on
  for (const JobCase& c : cases) {
    SCOPED_TRACE(c.name);
    std::map<int, int> owners;                // global rank -> procid of the agent
    std::map<int, std::map<int, int>> local;  // node -> local rank -> count
    std::map<int, int> local_world;           // node -> local_world_size
    for (const Agent& a : c.agents) {
      SCOPED_TRACE("agent procid " + std::to_string(a.procid) + " (node " + std::to_string(a.node) +
                   ", local " + std::to_string(a.local) + ")");
      Edits edits = c.edits;
      edits.push_back({"SLURM_NODEID", std::to_string(a.node)});
      edits.push_back({"SLURM_LOCALID", std::to_string(a.local)});
      edits.push_back({"SLURM_PROCID", std::to_string(a.procid)});
      const LaunchEnvironment env =
          Detect(c.file, edits, {c.hosts[static_cast<size_t>(a.node)], 0, 8});
      EXPECT_TRUE(env.warnings.empty()) << env.warnings.front();
      const AgentPlan plan = PlanAgent(env, c.nproc, "auto");
      EXPECT_EQ(plan.world_size, c.want_world);
      if (c.want_gpus_per_agent >= 0) {
        EXPECT_EQ(static_cast<int>(plan.devices.value.size()), c.want_gpus_per_agent);
      }
      ASSERT_EQ(plan.workers.size(), static_cast<size_t>(plan.nproc.value));
      for (size_t i = 0; i < plan.workers.size(); ++i) {
        const WorkerSpec& w = plan.workers[i];
        EXPECT_EQ(w.global_rank, plan.first_rank + static_cast<int>(i));
        auto [it, fresh] = owners.emplace(w.global_rank, a.procid);
        EXPECT_TRUE(fresh) << "rank " << w.global_rank << " also given by agent " << it->second;
        ++local[a.node][w.local_rank];
        if (c.want_gpus_per_agent != 0) {
          EXPECT_EQ(w.device, plan.devices.value[i]);
        } else {
          EXPECT_EQ(w.device, "");
        }
      }
      if (local_world.count(a.node)) {
        EXPECT_EQ(local_world[a.node], plan.local_world_size);
      }
      local_world[a.node] = plan.local_world_size;
    }
    ASSERT_EQ(static_cast<int>(owners.size()), c.want_world);
    EXPECT_EQ(owners.begin()->first, 0);
    EXPECT_EQ(owners.rbegin()->first, c.want_world - 1);
    for (const auto& [node, ranks] : local) {
      SCOPED_TRACE("node " + std::to_string(node));
      ASSERT_EQ(static_cast<int>(ranks.size()), local_world[node]);
      EXPECT_EQ(ranks.begin()->first, 0);
      EXPECT_EQ(ranks.rbegin()->first, local_world[node] - 1);
      for (const auto& [rank, count] : ranks) EXPECT_EQ(count, 1) << "local rank " << rank;
    }
  }
}

}  // namespace
}  // namespace runner

#include "runner/topology.h"

#include "common/errors.h"

namespace runner {

namespace {

// Workers agent (local_rank of local_count) would start when its host has `node_devices` GPUs.
int WorkersOf(int node_devices, int local_rank, int local_count, std::optional<int> nproc) {
  if (nproc) return *nproc;
  int share =
      (local_rank + 1) * node_devices / local_count - local_rank * node_devices / local_count;
  return node_devices > 0 ? share : 1;
}

Sourced<int> PlanWorkerCount(std::optional<int> nproc_per_node, int mine,
                             const std::string& devices_source) {
  if (nproc_per_node) {
    if (mine > 0 && *nproc_per_node > mine) {
      throw common::ConfigError("launch.nproc_per_node=" + std::to_string(*nproc_per_node) +
                                " but this agent has only " + std::to_string(mine) + " GPU(s) (" +
                                devices_source + "); use at most " + std::to_string(mine) +
                                " or auto (one worker per GPU)");
    }
    return {*nproc_per_node, "launch.nproc_per_node"};
  }
  return mine > 0 ? Sourced<int>{mine, "launch.nproc_per_node=auto: one per GPU"}
                  : Sourced<int>{1, "launch.nproc_per_node=auto: no GPU, one CPU worker"};
}

Sourced<std::string> PlanBackend(const std::string& backend, int mine,
                                 const std::string& devices_source) {
  if (backend == "auto") {
    return mine > 0 ? Sourced<std::string>{"nccl", "launch.backend=auto: GPUs present"}
                    : Sourced<std::string>{"gloo", "launch.backend=auto: CPU only"};
  }
  if (backend == "nccl" && mine == 0) {
    throw common::ConfigError("launch.backend=nccl but this agent has no GPU (" + devices_source +
                              "); use gloo or auto on CPU nodes");
  }
  return {backend, "launch.backend"};
}

// Global layout: agents in node order, and by local rank within a node. Sets the plan's
// first_rank, world_size, local_world_size and world_assumed (plan.nproc must be set); returns
// the local rank of this agent's first worker.
int PlanRanks(const LaunchEnvironment& env, std::optional<int> nproc_per_node, int node_devices,
              AgentPlan* plan) {
  const int local = env.local_agent_rank.value;
  const int node = env.node_rank ? env.node_rank->value : 0;
  int first_rank = 0;
  int world = 0;
  int first_local = 0;
  int local_world = 0;
  if (env.agents_per_node) {
    const std::vector<int>& per_node = env.agents_per_node->value;
    for (int n = 0; n < static_cast<int>(per_node.size()); ++n) {
      for (int a = 0; a < per_node[n]; ++a) {
        int w = WorkersOf(node_devices, a, per_node[n], nproc_per_node);
        if (n < node || (n == node && a < local)) first_rank += w;
        if (n == node && a < local) first_local += w;
        if (n == node) local_world += w;
        world += w;
      }
    }
    // Exact only when nothing depends on what other nodes see.
    plan->world_assumed = per_node.size() > 1 && !(nproc_per_node || node_devices == 0);
  } else {
    // mpirun: node layout is learnt at rendezvous; assume every agent matches this one.
    first_rank = env.agent_rank.value * plan->nproc.value;
    world = env.agent_count.value * plan->nproc.value;
    first_local = local * plan->nproc.value;
    local_world = env.local_agent_count.value * plan->nproc.value;
    plan->world_assumed = env.agent_count.value > 1;
  }
  plan->first_rank = first_rank;
  plan->world_size = world;
  plan->local_world_size = local_world;
  return first_local;
}

Sourced<std::string> MasterHost(const LaunchEnvironment& env) {
  switch (env.scheduler) {
    case Scheduler::kSlurm:
      return {env.hosts->value.front(), "first host of " + env.hosts->source};
    case Scheduler::kTorchrun:
      return {env.master_addr->value, env.master_addr->source};
    case Scheduler::kOpenMpi:
      return {"", "the host of MPI rank 0, learnt at rendezvous"};
    case Scheduler::kLocal:
      return {"127.0.0.1", "single node: loopback"};
  }
  return {};
}

}  // namespace

std::vector<std::string> ShareOfDevices(const std::vector<std::string>& devices, int local_rank,
                                        int local_count) {
  const size_t n = devices.size();
  const size_t begin = static_cast<size_t>(local_rank) * n / static_cast<size_t>(local_count);
  const size_t end = static_cast<size_t>(local_rank + 1) * n / static_cast<size_t>(local_count);
  return {devices.begin() + static_cast<std::ptrdiff_t>(begin),
          devices.begin() + static_cast<std::ptrdiff_t>(end)};
}

AgentPlan PlanAgent(const LaunchEnvironment& env, std::optional<int> nproc_per_node,
                    const std::string& backend) {
  AgentPlan plan;
  const int local = env.local_agent_rank.value;
  const int local_count = env.local_agent_count.value;
  const int node_devices = static_cast<int>(env.devices.value.size());
  if (node_devices > 0 && node_devices < local_count) {
    throw common::EnvironmentError(std::to_string(local_count) + " agents on host " + env.hostname +
                                   " (" + env.local_agent_count.source + ") must share " +
                                   std::to_string(node_devices) + " GPU(s) (" + env.devices.source +
                                   "): some would get none; start one agent per node "
                                   "(srun --ntasks-per-node=1) or request more GPUs");
  }
  plan.devices = {ShareOfDevices(env.devices.value, local, local_count),
                  local_count > 1 ? "share " + std::to_string(local + 1) + " of " +
                                        std::to_string(local_count) + " of " + env.devices.source
                                  : env.devices.source};
  const int mine = static_cast<int>(plan.devices.value.size());
  plan.nproc = PlanWorkerCount(nproc_per_node, mine, plan.devices.source);
  plan.backend = PlanBackend(backend, mine, plan.devices.source);
  const int first_local = PlanRanks(env, nproc_per_node, node_devices, &plan);
  for (int i = 0; i < plan.nproc.value; ++i) {
    WorkerSpec worker;
    worker.global_rank = plan.first_rank + i;
    worker.local_rank = first_local + i;
    if (mine > 0) worker.device = plan.devices.value[static_cast<size_t>(i)];
    plan.workers.push_back(worker);
  }
  plan.master_host = MasterHost(env);
  return plan;
}

}  // namespace runner

#pragma once
// From the launch environment and the config to the workers this agent would start: which GPUs
// this agent gets (several agents on one host split its GPUs), how many workers, their global and
// local ranks, the world size and the master host. Pure; the MPI rendezvous later replaces the
// assumed parts (other nodes' worker counts) with what every agent actually reports.

#include <optional>
#include <string>
#include <vector>

#include "runner/launch_env.h"

namespace runner {

struct WorkerSpec {
  int global_rank = 0;
  int local_rank = 0;  // among all workers on this host
  std::string device;  // CUDA_VISIBLE_DEVICES value for this worker; "" on CPU
};

struct AgentPlan {
  Sourced<std::vector<std::string>> devices;  // this agent's share of the node's GPUs
  Sourced<int> nproc;                         // workers this agent starts
  Sourced<std::string> backend;               // gloo | nccl
  int world_size = 0;
  int first_rank = 0;
  int local_world_size = 0;  // workers on this host
  // True when world_size/first_rank assume that every node sees what this one sees (the
  // rendezvous confirms or corrects it); false when they are exact (single node, homogeneous CPU).
  bool world_assumed = false;
  Sourced<std::string> master_host;
  std::vector<WorkerSpec> workers;
};

// nproc_per_node: nullopt for "auto" (one per GPU, else 1). backend: "auto", "gloo" or "nccl".
// Throws common::ConfigError when the request cannot be met (more workers than GPUs, nccl without
// GPUs) and common::EnvironmentError when the host's GPUs cannot be split between its agents.
[[nodiscard]] AgentPlan PlanAgent(const LaunchEnvironment& env, std::optional<int> nproc_per_node,
                                  const std::string& backend);

// The GPUs agent `local_rank` of `local_count` gets out of `devices`: a contiguous, near-even
// share.
[[nodiscard]] std::vector<std::string> ShareOfDevices(const std::vector<std::string>& devices,
                                                      int local_rank, int local_count);

}  // namespace runner

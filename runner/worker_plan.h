#pragma once
// Planning this agent's workers for one attempt, as a pure function of its place in the layout,
// the job session and the attempt: global and local ranks, devices, the worker contract, argv
// and the rank log's path. runner/agent.cpp starts what this returns.

#include <string>
#include <vector>

#include "runner/rendezvous.h"
#include "runner/supervisor.h"
#include "runner/topology.h"

namespace runner {

struct WorkerPlanInput {
  const AgentPlace* place = nullptr;
  const AgentPlan* plan = nullptr;
  const JobSession* session = nullptr;
  int attempt = 0;
  int max_restarts = 0;
  std::string job_dir;
  std::string attempt_dir;
  std::string config_path;  // job.yaml
  int cpus = 1;             // CPUs this agent may use (OMP_NUM_THREADS is split among workers)
  std::vector<std::string> command;
};

[[nodiscard]] std::vector<WorkerLaunch> PlanWorkerLaunches(const WorkerPlanInput& in);

}  // namespace runner

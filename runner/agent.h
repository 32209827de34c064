#pragma once
// The agent: everything `runner` does once it is past its command line. Order:
// detect -> MPI rendezvous -> job directory -> store -> spawn -> supervise -> agree on the exit
// code -> MPI_Finalize; repeated from "spawn" for each restart.

#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/environment.h"
#include "runner/launch_env.h"
#include "runner/topology.h"

namespace runner {

class StoreServer;

struct AgentRequest {
  const common::Config* config = nullptr;
  const common::Environment* env = nullptr;
  LaunchEnvironment launch;
  AgentPlan plan;
  HostFacts host;
  std::vector<std::string> command;  // worker command; empty: the bundled trainer
  // The job's store when it had to exist before the rendezvous (node 0 of a torchrun-style
  // launch: on MASTER_ADDR:MASTER_PORT); null: the node-0 agent creates it when the agents meet.
  std::shared_ptr<StoreServer> store;
};

// Returns the exit code (common/exit_codes.h). Throws common::Error for failures before the
// workers start (the caller maps them to exit codes).
[[nodiscard]] int RunAgent(const AgentRequest& request);

// Fails fast, before MPI_Init, on a launch that cannot work: srun without an MPI plugin
// (SLURM_STEP_ID set, more than one task, and no PMIX_RANK/PMI_RANK): this OpenMPI aborts inside
// MPI_Init then, and others give worlds of one. Throws common::EnvironmentError with the fix.
void CheckLaunchBeforeMpi(const common::Environment& env, const LaunchEnvironment& launch);

// True for variable names whose values must never be written to disk (tokens, keys, secrets).
[[nodiscard]] bool LooksSecret(const std::string& name);

}  // namespace runner

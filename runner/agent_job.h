#pragma once
// The agent's stages after its command line and MPI start-up (runner/agent.h's RunAgent calls
// this): check MPI's world against the scheduler's, meet the other agents (runner/rendezvous.h:
// reports, layout, the node-0 agent's job session and store), write job.yaml and manifest.json,
// then one attempt after another (plan the workers, supervise them, agree on the job's code,
// write outcome.json, requeue on Slurm), until one does not restart.

#include <spdlog/logger.h>

#include <memory>

#include "runner/agent.h"
#include "runner/control_plane.h"
#include "runner/startup_record.h"

namespace runner {

// Returns the job's agreed exit code. Throws common::Error for failures before the workers start.
// `started`: the agent's start, before its control plane (the start-up record counts from it).
[[nodiscard]] int RunAgentWith(const AgentRequest& request, ControlPlane& control_plane,
                               const std::shared_ptr<spdlog::logger>& log, StepClock started);

}  // namespace runner

#pragma once
// The names of the shared-memory segments (common/shm_collective.h) of one job, attempt and node,
// shared by the trainer (which creates and joins the segment) and the runner's agent (which
// removes it when the attempt ends, and sweeps the ones that agents killed by SIGKILL left).
//
//   /runner-<16 hex digits>-a<attempt>-n<node>[-p<agent pid>]
//
// The hex digits are an FNV-1a hash of RUNNER_JOB_TOKEN, the run id and the store's address:
// the same on every local rank of one attempt, different for every job, and no secret in
// /dev/shm. The agent pid (RUNNER_NODE_AGENT_PID: the node's first agent) says who owns the name:
// a name whose agent is gone is stale. Without it (a worker not under the runner) there is no
// "-p" part and no agent cleans up. At most 8 + 16 + 2 + 7 + 2 + 7 + 2 + 10 characters: far
// below NAME_MAX.

#include <string>

#include "common/worker_contract.h"

namespace common {

[[nodiscard]] std::string ShmSegmentName(const std::string& token, const std::string& run_id,
                                         int attempt, int node, int agent_pid = 0);

// The name for `contract`'s node and attempt; the one function the runner and the trainer call.
[[nodiscard]] std::string ShmSegmentName(const WorkerContract& contract);

// The agent pid in `name` (with or without the leading "/"); 0 when `name` is not a segment name
// with one.
[[nodiscard]] int ShmSegmentAgentPid(const std::string& name);

// Removes from `dir` (the node's /dev/shm) the segments whose agent is gone (no /proc/<pid>):
// regular files named by ShmSegmentName with an agent pid, owned by this user. Leaves everything
// else, a live agent's segments included. Returns how many it removed.
int RemoveStaleShmSegments(const std::string& dir);

}  // namespace common

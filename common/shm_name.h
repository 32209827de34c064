#pragma once
// The names of the shared-memory segments (common/shm_collective.h) of one job, attempt and node,
// shared by the trainer (which creates and joins the segment) and the runner's agent (which
// removes it when the attempt ends, and sweeps the ones that agents killed by SIGKILL left).
//
//   /runner-<16 hex digits>-a<attempt>-n<node>[-p<agent pid>-ns<pid namespace>]
//
// The hex digits are an FNV-1a hash of RUNNER_JOB_TOKEN, the run id and the store's address:
// the same on every local rank of one attempt, different for every job, and no secret in
// /dev/shm. The agent pid (RUNNER_NODE_AGENT_PID: the node's first agent) says who owns the name,
// and the pid namespace (the inode of /proc/self/ns/pid, shared by an agent and its workers)
// where that pid means something: /dev/shm may be shared by containers with pid namespaces of
// their own (docker --ipc=host). A name whose agent is gone from this namespace is stale.
// Without an agent pid (a worker not under the runner) there is no owner and no agent cleans up.
// At most 8 + 16 + 2 + 7 + 2 + 7 + 2 + 9 + 3 + 19 characters: far below NAME_MAX.

#include <cstdint>
#include <string>

#include "common/worker_contract.h"

namespace common {

[[nodiscard]] std::string ShmSegmentName(const std::string& token, const std::string& run_id,
                                         int attempt, int node, int agent_pid = 0,
                                         uint64_t pid_namespace = 0);

// The name for `contract`'s node and attempt in this process's pid namespace; the one function
// the runner and the trainer call.
[[nodiscard]] std::string ShmSegmentName(const WorkerContract& contract);

// This process's pid namespace (the inode of /proc/self/ns/pid); 0 when it cannot be read.
[[nodiscard]] uint64_t PidNamespace();

struct ShmSegmentOwner {
  int pid = 0;  // 0: `name` is not a segment name with an owner
  uint64_t pid_namespace = 0;
};

// The owner in `name` (with or without the leading "/").
[[nodiscard]] ShmSegmentOwner ShmSegmentOwnerOf(const std::string& name);

// Removes from `dir` (the node's /dev/shm) the segments whose agent is gone: regular files of
// this user named by ShmSegmentName with an owner in this process's pid namespace whose pid has
// no /proc/<pid>. Leaves everything else: a live agent's segments, and those of another pid
// namespace (whose pids cannot be checked from here). Returns how many it removed.
int RemoveStaleShmSegments(const std::string& dir);

}  // namespace common

#pragma once
// The node's shared-memory segment of one attempt (common/shm_name.h; the bundled trainer's local
// rank 0 creates it, and unlinks it once every local rank has opened it). A rank killed before
// that (SIGKILL, or a stop signal before the trainer handles them) leaves the name in /dev/shm,
// so the agent removes it when the attempt ends, whatever happened; and an agent killed itself
// leaves it to the next agent that starts an attempt on the machine, which removes the names
// whose agent pid is gone. Workers that never create a segment (any other program) cost an
// unlink that finds nothing.

#include <string>
#include <vector>

#include "runner/supervisor.h"

namespace runner {

class AttemptShmSegment {
 public:
  // Sweeps the stale names out of /dev/shm; `launches` are this agent's workers of the attempt
  // (their contracts name the segment). `dir`: /dev/shm, or a test's directory.
  explicit AttemptShmSegment(const std::vector<WorkerLaunch>& launches,
                             const std::string& dir = "/dev/shm");
  // Removes the attempt's name (nothing when it is gone already).
  ~AttemptShmSegment();
  AttemptShmSegment(const AttemptShmSegment&) = delete;
  AttemptShmSegment& operator=(const AttemptShmSegment&) = delete;

  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;  // "" when this agent starts no worker
};

}  // namespace runner

#pragma once
// The hang watchdog's settings from the job config, the one line that prints every timeout at
// start, and the node-local directory that holds one attempt's heartbeat pages.

#include <cstdint>
#include <string>

#include "common/config.h"
#include "runner/hang_watch.h"

namespace runner {

[[nodiscard]] HangOptions HangOptionsFromConfig(const common::Config& config);

// "timeouts: rendezvous 300 s, first step 900 s, hang 300 s (warning at 150 s), checkpoint 900 s,
// collectives 1800 s"
[[nodiscard]] std::string TimeoutsLine(const common::Config& config);

// <base>/runner-<job id>-<attempt>-<agent>-<pid>-ns<pid namespace>/, created now and removed
// with everything in it when this goes. <base>: $RUNNER_HEARTBEAT_DIR if set, else /dev/shm when
// writable (memory: no disk traffic), else `fallback` (the attempt directory). An agent that was
// SIGKILLed could not remove its own: creating one in /dev/shm (node-local, unlike the other two)
// first removes those of agents (by the pid in the name) that are gone, so /dev/shm does not fill
// up with them. The pid namespace (common::PidNamespace) says where the pid means something:
// /dev/shm may be shared by containers with pid namespaces of their own (docker --ipc=host).
// Removes <base>/runner-*-<pid>-ns<pid_namespace> directories owned by this user whose agent
// <pid> no longer exists; never those of another namespace, nor names without one. Returns how
// many.
int RemoveStaleHeartbeatDirs(const std::string& base, uint64_t pid_namespace);

class HeartbeatDir {
 public:
  HeartbeatDir(const std::string& job_id, int attempt, int agent, const std::string& fallback);
  ~HeartbeatDir();
  HeartbeatDir(const HeartbeatDir&) = delete;
  HeartbeatDir& operator=(const HeartbeatDir&) = delete;

  [[nodiscard]] const std::string& path() const { return path_; }
  // "<path>/rank-<R>"
  [[nodiscard]] std::string RankFile(int rank) const;

 private:
  std::string path_;
};

}  // namespace runner

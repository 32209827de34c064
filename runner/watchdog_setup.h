#pragma once
// The hang watchdog's settings from the job config, the one line that prints every timeout at
// start, and the node-local directory that holds one attempt's heartbeat pages.

#include <string>

#include "common/config.h"
#include "runner/hang_watch.h"

namespace runner {

[[nodiscard]] HangOptions HangOptionsFromConfig(const common::Config& config);

// "timeouts: rendezvous 300 s, first step 900 s, hang 300 s (warning at 150 s), checkpoint 900 s,
// collectives 1800 s"
[[nodiscard]] std::string TimeoutsLine(const common::Config& config);

// <base>/runner-<job id>-<attempt>-<agent>-<pid>/, created now and removed with everything in it
// when this goes. <base>: $RUNNER_HEARTBEAT_DIR if set, else /dev/shm when writable (memory: no
// disk traffic), else `fallback` (the attempt directory). An agent that was SIGKILLed could not
// remove its own: creating one in /dev/shm (node-local, unlike the other two) first removes those
// of agents (by the pid in the name) that are gone, so /dev/shm does not fill up with them.
// Removes <base>/runner-*-<pid> directories owned by this user whose agent <pid> no longer exists;
// returns how many.
int RemoveStaleHeartbeatDirs(const std::string& base);

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

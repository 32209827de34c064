#pragma once
// train.fault_inject, a test-only setting: delays injected into the bundled trainer so that tests
// of the runner's hang and straggler watchdog have a slow or stuck rank on demand.
//
//   RANK:PHASE:SECONDS[@STEP]  (several separated by ',')
//
// Rank RANK sleeps SECONDS each time it enters PHASE (data, forward, backward, optimizer,
// evaluation, checkpoint): at every step (a straggler), or only when STEP optimizer steps are
// done (@5: during the 6th step; a long sleep there is a hang). The trainer names the phase in its
// heartbeat before it sleeps, so the watchdog sees where the rank is. Parsed when the config is
// loaded, by the runner and by the trainer alike. Pure.
//
// One more phase comes before the steps, once (steps done 0): comm-setup, while the
// communicator is built. With train.allreduce auto or shm, a rank of a machine with two or more
// workers sleeps where that machine's shared-memory segment exists in /dev/shm but not every
// local rank has opened it yet (local rank 0 after making it, the others before opening it):
// the window in which a killed worker leaves the name to the runner's agent to remove.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace common {

inline constexpr char kFaultInjectKey[] = "train.fault_inject";
inline constexpr char kFaultInjectFormat[] =
    "RANK:PHASE:SECONDS[@STEP], several separated by ',' (e.g. 1:forward:0.02 or "
    "0:backward:600@5)";

struct InjectedFault {
  int rank = 0;
  std::string phase;
  double seconds = 0;
  int64_t step = -1;  // steps done when it fires; -1: every step
  bool operator==(const InjectedFault& other) const {
    return rank == other.rank && phase == other.phase && seconds == other.seconds &&
           step == other.step;
  }
};

// The phases a fault may name, in the order a step goes through them.
[[nodiscard]] const std::vector<std::string_view>& FaultPhases();

// The faults `value` lists ("" = none). Throws common::ConfigError starting with `origin` (where
// the value came from), naming the key and the raw value, which fault and which part of it is
// wrong, and the format.
[[nodiscard]] std::vector<InjectedFault> ParseFaultInjection(std::string_view value,
                                                             const std::string& origin);

// Seconds rank `rank` sleeps entering `phase` with `steps_done` steps done (summed when several
// faults match); 0 when none.
[[nodiscard]] double InjectedDelay(const std::vector<InjectedFault>& faults, int rank,
                                   std::string_view phase, int64_t steps_done);

}  // namespace common

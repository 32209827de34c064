#pragma once
// Where this rank is, for the runner's hang and straggler watchdog: the training loop names each
// phase it enters ("init", "data", "forward", "backward", "optimizer", "evaluation",
// "checkpoint") and numbers every collective it issues through the process's heartbeat record
// (common/heartbeat.h), in the same order on every rank, so the agent can compare ranks by
// (step, collective). An inactive writer (no RUNNER_HEARTBEAT_FILE) makes every call a no-op but
// the count. Also where the test-only delays of train.fault_inject (common/fault_inject.h) are
// slept: after the phase is published, so the watchdog sees it. Free of LibTorch; one thread (the
// training loop) calls it.
//
// The collectives the trainer issues, all numbered, in this order:
//   "broadcast"   the initial parameters and buffers from rank 0 (once, during init)
//   "all-reduce"  each gradient bucket of a step (bucket k of n; trainer/reducer.h)
//   "agree"       the per-step agreement (loss, divergence, stops; trainer/stop_decision.h)
//   "timing"      every train.log_every steps: each rank's compute and wait times
//   "evaluation"  the test-split sums after each epoch
//   "checkpoint"  every rank waits there while rank 0 writes (phase "checkpoint")

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "common/fault_inject.h"
#include "common/heartbeat.h"

namespace trainer {

class PhaseTracker {
 public:
  PhaseTracker(common::HeartbeatWriter& writer, int rank,
               std::vector<common::InjectedFault> faults = {})
      : writer_(writer), rank_(rank), faults_(std::move(faults)) {}

  // Publishes `phase` (outside any collective), then sleeps any delay injected there.
  void Enter(std::string_view phase) {
    writer_.Phase(phase);
    Inject(phase);
  }
  // Sleeps the delay injected into `phase` at this step, if any: for a phase someone else
  // published (the reducer ends its collective in "optimizer").
  void Inject(std::string_view phase) {
    if (!faults_.empty()) Sleep(common::InjectedDelay(faults_, rank_, phase, step_));
  }
  // Optimizer steps done; published with the next update.
  void Step(int64_t steps_done) {
    step_ = steps_done;
    writer_.Step(steps_done);
  }
  [[nodiscard]] int64_t step() const { return step_; }
  [[nodiscard]] common::HeartbeatWriter& writer() { return writer_; }

 private:
  static void Sleep(double seconds);

  common::HeartbeatWriter& writer_;
  int rank_;
  std::vector<common::InjectedFault> faults_;
  int64_t step_ = 0;
};

}  // namespace trainer

#pragma once
// Where this rank is, for the runner's hang and straggler watchdog: the training loop names each
// phase it enters ("init", "data", "forward", "backward", "optimizer", "evaluation",
// "checkpoint") and numbers every collective it issues through the process's heartbeat record
// (common/heartbeat.h), in the same order on every rank, so the agent can compare ranks by
// (step, collective). An inactive writer (no RUNNER_HEARTBEAT_FILE) makes every call a no-op but
// the count. Free of LibTorch; one thread (the training loop) calls it.
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

#include "common/heartbeat.h"

namespace trainer {

class PhaseTracker {
 public:
  explicit PhaseTracker(common::HeartbeatWriter& writer) : writer_(writer) {}

  // Publishes `phase` (outside any collective).
  void Enter(std::string_view phase) { writer_.Phase(phase); }
  // Optimizer steps done; published with the next update.
  void Step(int64_t steps_done) {
    step_ = steps_done;
    writer_.Step(steps_done);
  }
  [[nodiscard]] int64_t step() const { return step_; }
  [[nodiscard]] common::HeartbeatWriter& writer() { return writer_; }

 private:
  common::HeartbeatWriter& writer_;
  int64_t step_ = 0;
};

}  // namespace trainer

#pragma once
// The data-parallel training loop: parameters and buffers broadcast from rank 0, a distributed
// sampler, micro-steps with gradient accumulation (communication only on the last), bucketed
// all-reduce overlapped with backward (trainer/reducer.h), clipping, the optimizer and LR
// schedule, per-step loss averaged over ranks, evaluation on the test split each epoch
// (distributed, counts all-reduced), progress in train.log / metrics.jsonl from rank 0.

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "common/config.h"
#include "common/heartbeat.h"
#include "trainer/comm.h"

namespace trainer {

struct TrainContext {
  std::string output_dir;      // where rank 0 writes train.log, metrics.jsonl, loss.svg; "" none
  std::string checkpoint_dir;  // the job's checkpoints/; "" = no checkpoints, no resume
  std::string events_path;     // the job's events.jsonl (checkpoint, straggler events); "" none
  bool overlap = true;         // false: all-reduce after backward (bench baseline)
  double job_end_time = 0;  // Unix seconds the scheduler ends the job (SLURM_JOB_END_TIME); 0 none
  int64_t stop_at_step = -1;  // tests: behave as if a stop signal arrived after this step
};

struct TrainResult {
  std::vector<at::Tensor> parameters;  // final values (detached copies)
  int64_t steps = 0;
  double last_loss = 0;           // mean over ranks, last step
  double test_accuracy = -1;      // last evaluation; -1 if none
  double samples_per_second = 0;  // global, over the whole run
  double seconds = 0;
  std::string stop_reason;         // "" (finished), "signal", "preempt" or "walltime"
  std::string parameter_digest;    // CRC-32 of the final parameters (bit-identity checks)
  int64_t resumed_from_step = -1;  // the checkpoint's step, or -1
};

// Publishes where the rank is (phases, steps, numbered collectives: trainer/phase_tracker.h)
// through `heartbeat` (common::ProcessHeartbeat() in the trainer; an inactive writer publishes
// nothing). Throws common::ConfigError (bad combinations found at start: batch smaller than the
// world, fp16 without CUDA, ...), common::TrainingError (NaN/Inf loss, naming the step), and
// common::CommunicationError.
[[nodiscard]] TrainResult Train(const common::Config& config, Communicator& comm,
                                const TrainContext& context, common::HeartbeatWriter& heartbeat);

}  // namespace trainer

#pragma once
// Every train.* and job.* value the training loop uses, read once from the validated config
// (common/config.h) and typed. Also the one derived value: the per-rank batch, which is
// train.batch_size, or train.batch_size / world when train.keep_effective_batch_size makes it the
// global batch. Free of LibTorch, so it can be read and tested cheaply.

#include <cstdint>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/fault_inject.h"

namespace trainer {

struct TrainOptions {
  int world_size = 1;
  uint64_t seed = 0;  // job.seed

  // Precision: "fp32" or "bf16" (fp16 is refused on CPU).
  std::string precision = "fp32";
  [[nodiscard]] bool bf16() const { return precision == "bf16"; }

  // Batches.
  int64_t batch_per_rank = 0;  // what each rank's micro-batch holds
  int64_t grad_accum_steps = 1;
  // Global samples per optimizer step: per-rank batch x accumulation x world.
  [[nodiscard]] int64_t SamplesPerStep() const {
    return batch_per_rank * grad_accum_steps * world_size;
  }

  // Data.
  std::string dataset;  // "synthetic" or an idx dataset under data_dir
  std::string data_dir;
  int64_t data_limit = 0;  // > 0: only the first data_limit samples
  int64_t synthetic_samples = 0;
  bool drop_last = false;
  bool augment = false;

  // Length.
  int64_t epochs = 1;
  int64_t max_steps = 0;  // > 0: stop after this many steps

  // Optimizer and learning rate.
  std::string optimizer;  // "sgd" or "adamw"
  double lr = 0;
  double momentum = 0;
  double weight_decay = 0;
  double grad_clip_norm = 0;  // > 0: clip the global gradient norm
  std::string lr_scaling;
  std::string lr_schedule;
  int64_t warmup_steps = 0;
  int64_t lr_step_size = 0;
  double lr_gamma = 0;

  // Communication.
  double bucket_size_mb = 0;
  double collective_timeout_s = 0;

  // Checkpoints and stops.
  int keep_checkpoints = 1;
  std::string resume;  // "auto", "none" or a path
  int64_t checkpoint_every = 0;
  double stop_margin_s = 0;

  // Reporting.
  int64_t log_every = 1;
  bool eval_every_epoch = true;
  double straggler_margin = 0;  // 0.2: warn about ranks computing 20% slower than the median

  // Tests only: delays injected into phases of some ranks (common/fault_inject.h).
  std::vector<common::InjectedFault> faults;

  // Reads them. Throws common::ConfigError, naming the key's origin, for train.precision=fp16,
  // for a global batch (train.keep_effective_batch_size) smaller than the world, and for a fault
  // (train.fault_inject) on a rank outside the world.
  [[nodiscard]] static TrainOptions FromConfig(const common::Config& config, int world_size);
};

}  // namespace trainer

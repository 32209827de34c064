#include "trainer/train_options.h"

#include "common/errors.h"

namespace trainer {

namespace {

std::string CheckedPrecision(const common::Config& config) {
  std::string precision = config.GetString("train.precision");
  if (precision == "fp16") {
    throw common::ConfigError(
        config.Origin("train.precision") +
        ": train.precision: fp16 with dynamic "
        "loss scaling needs CUDA, and this trainer runs on CPU; use bf16 or fp32");
  }
  return precision;
}

int64_t BatchPerRank(const common::Config& config, int64_t batch, bool global, int world) {
  if (!global) return batch;
  if (batch < world) {
    throw common::ConfigError(
        config.Origin("train.batch_size") + ": train.batch_size=" + std::to_string(batch) +
        " is the global batch (train.keep_effective_batch_size: true) but the world has " +
        std::to_string(world) + " ranks: each rank needs at least one sample; raise it to " +
        std::to_string(world) + " or more");
  }
  return batch / world;
}

std::vector<common::InjectedFault> CheckedFaults(const common::Config& config, int world) {
  const std::string value = config.GetString(common::kFaultInjectKey);
  const std::string& origin = config.Origin(common::kFaultInjectKey);
  std::vector<common::InjectedFault> faults = common::ParseFaultInjection(value, origin);
  for (const common::InjectedFault& f : faults) {
    if (f.rank >= world) {
      throw common::ConfigError(origin + ": " + common::kFaultInjectKey + "='" + value +
                                "': rank " + std::to_string(f.rank) + " is not in the world of " +
                                std::to_string(world) + " ranks (0.." + std::to_string(world - 1) +
                                "); the format is " + common::kFaultInjectFormat);
    }
  }
  return faults;
}

}  // namespace

TrainOptions TrainOptions::FromConfig(const common::Config& config, int world_size) {
  TrainOptions o;
  o.world_size = world_size;
  o.seed = static_cast<uint64_t>(config.GetInt("job.seed"));
  o.precision = CheckedPrecision(config);
  o.batch_per_rank = BatchPerRank(config, config.GetInt("train.batch_size"),
                                  config.GetBool("train.keep_effective_batch_size"), world_size);
  o.grad_accum_steps = config.GetInt("train.grad_accum_steps");
  o.dataset = config.GetString("train.dataset");
  o.data_dir = config.GetString("train.data_dir");
  o.data_limit = config.GetInt("train.data_limit");
  o.synthetic_samples = config.GetInt("train.synthetic_samples");
  o.drop_last = config.GetBool("train.drop_last");
  o.augment = config.GetBool("train.augment");
  o.epochs = config.GetInt("train.epochs");
  o.max_steps = config.GetInt("train.max_steps");
  o.optimizer = config.GetString("train.optimizer");
  o.lr = config.GetFloat("train.lr");
  o.momentum = config.GetFloat("train.momentum");
  o.weight_decay = config.GetFloat("train.weight_decay");
  o.grad_clip_norm = config.GetFloat("train.grad_clip_norm");
  o.lr_scaling = config.GetString("train.lr_scaling");
  o.lr_schedule = config.GetString("train.lr_schedule");
  o.warmup_steps = config.GetInt("train.warmup_steps");
  o.lr_step_size = config.GetInt("train.lr_step_size");
  o.lr_gamma = config.GetFloat("train.lr_gamma");
  o.bucket_size_mb = config.GetFloat("train.bucket_size_mb");
  o.collective_timeout_s = config.GetFloat("train.collective_timeout_s");
  o.keep_checkpoints = static_cast<int>(config.GetInt("train.keep_checkpoints"));
  o.resume = config.GetString("train.resume");
  o.checkpoint_every = config.GetInt("train.checkpoint_every");
  o.stop_margin_s = config.GetFloat("train.stop_margin_s");
  o.log_every = config.GetInt("train.log_every");
  o.eval_every_epoch = config.GetBool("train.eval_every_epoch");
  o.straggler_margin = config.GetFloat("train.straggler_margin");
  o.faults = CheckedFaults(config, world_size);
  return o;
}

}  // namespace trainer

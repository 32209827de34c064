#pragma once
// The pieces a training run is built from, each from the typed options (trainer/train_options.h):
// the datasets, the steps per epoch, the model (identical on every rank), the optimizer and the
// learning-rate schedule.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "common/config.h"
#include "common/heartbeat.h"
#include "trainer/comm.h"
#include "trainer/data.h"
#include "trainer/sampler.h"
#include "trainer/schedule.h"
#include "trainer/train_options.h"

namespace torch::optim {
class Optimizer;
}

namespace trainer {

class Model;

struct Datasets {
  Dataset train, test;
};

// The same datasets on every rank (the sampler gives each rank its shard): synthetic, or the idx
// files under train.data_dir; train.data_limit caps both (the test split at a sixth of it).
// Throws common::ConfigError for missing or malformed files.
[[nodiscard]] Datasets LoadData(const TrainOptions& options);

// Optimizer steps in one epoch of this rank's shard. Throws common::ConfigError when one step
// needs more samples than a rank gets.
[[nodiscard]] int64_t StepsPerEpoch(const TrainOptions& options, const DistributedSampler& sampler,
                                    int64_t train_size);

// train.epochs x steps_per_epoch, capped by train.max_steps when that is set.
[[nodiscard]] int64_t TotalSteps(const TrainOptions& options, int64_t steps_per_epoch);

// train.model initialised from job.seed, then its parameters and buffers broadcast from rank 0
// (published as collective "broadcast"; the rank goes on in "init").
[[nodiscard]] std::unique_ptr<Model> BuildModel(const common::Config& config, uint64_t seed,
                                                Communicator& comm,
                                                common::HeartbeatWriter& heartbeat);

// SGD (with momentum) or AdamW over `params`.
[[nodiscard]] std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(
    const TrainOptions& options, const std::vector<at::Tensor>& params);

[[nodiscard]] LrSchedule MakeSchedule(const TrainOptions& options, int64_t total_steps);

}  // namespace trainer

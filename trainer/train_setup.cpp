#include "trainer/train_setup.h"

#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>
#include <torch/utils.h>

#include <algorithm>
#include <mutex>

#include "common/errors.h"
#include "trainer/models.h"

namespace trainer {

Datasets LoadData(const TrainOptions& o) {
  Datasets d;
  const int64_t limit = o.data_limit;
  if (o.dataset == "synthetic") {
    const int64_t n = limit > 0 ? std::min(limit, o.synthetic_samples) : o.synthetic_samples;
    d.train = SyntheticDataset(n, o.seed, false);
    d.test = SyntheticDataset(std::max<int64_t>(n / 6, 1), o.seed, true);
  } else {
    double mean = 0, std = 1;
    d.train = LoadIdxDataset(o.data_dir, false, limit, &mean, &std);
    d.test = LoadIdxDataset(o.data_dir, true, limit > 0 ? std::max<int64_t>(limit / 6, 1) : 0,
                            &mean, &std);
  }
  return d;
}

int64_t StepsPerEpoch(const TrainOptions& o, const DistributedSampler& sampler,
                      int64_t train_size) {
  const int64_t batch = o.batch_per_rank;
  const int64_t micro_per_epoch =
      o.drop_last ? sampler.per_rank() / batch : (sampler.per_rank() + batch - 1) / batch;
  const int64_t steps = micro_per_epoch / o.grad_accum_steps;
  if (steps < 1) {
    throw common::ConfigError(
        "one optimizer step needs " + std::to_string(batch * o.grad_accum_steps) +
        " samples per rank (train.batch_size x " + "train.grad_accum_steps) but each of the " +
        std::to_string(o.world_size) + " ranks gets " + std::to_string(sampler.per_rank()) +
        " of the " + std::to_string(train_size) +
        " training samples; lower the batch or use more data");
  }
  return steps;
}

std::unique_ptr<Model> BuildModel(const common::Config& config, uint64_t seed, Communicator& comm,
                                  common::HeartbeatWriter& heartbeat) {
  std::unique_ptr<Model> model;
  {
    // Modules initialise from the global generator; ranks running as threads of one process
    // (tests) must not interleave their draws.
    static std::mutex init_mutex;
    std::lock_guard<std::mutex> lock(init_mutex);
    torch::manual_seed(seed);
    model = MakeModel(config);
  }
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> state = model->Parameters();
  for (const at::Tensor& b : model->Buffers()) state.push_back(b);
  heartbeat.BeginCollective("broadcast");
  comm.Broadcast(state, 0);
  heartbeat.EndCollective("init");
  return model;
}

std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(const TrainOptions& o,
                                                       const std::vector<at::Tensor>& params) {
  if (o.optimizer == "sgd") {
    return std::make_unique<torch::optim::SGD>(
        params, torch::optim::SGDOptions(o.lr).momentum(o.momentum).weight_decay(o.weight_decay));
  }
  return std::make_unique<torch::optim::AdamW>(
      params, torch::optim::AdamWOptions(o.lr).weight_decay(o.weight_decay));
}

LrSchedule MakeSchedule(const TrainOptions& o, int64_t total_steps) {
  LrSchedule schedule;
  schedule.base_lr = o.lr;
  schedule.scaling = o.lr_scaling;
  schedule.kind = o.lr_schedule;
  schedule.warmup_steps = o.warmup_steps;
  schedule.total_steps = total_steps;
  schedule.step_size = o.lr_step_size;
  schedule.gamma = o.lr_gamma;
  schedule.world_size = o.world_size;
  return schedule;
}

int64_t TotalSteps(const TrainOptions& o, int64_t steps_per_epoch) {
  int64_t total = o.epochs * steps_per_epoch;
  if (o.max_steps > 0) total = std::min(total, o.max_steps);
  return total;
}

}  // namespace trainer

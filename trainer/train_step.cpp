#include "trainer/train_step.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/optimizer.h>

#include <algorithm>
#include <chrono>

#include "common/seconds.h"
#include "trainer/models.h"

namespace trainer {

namespace {

using Clock = std::chrono::steady_clock;

// Zeroes the gradients in place, as LibTorch 1.13's zero_grad does: never sets them to none (2.x's
// default), since the reducer's gradients are views of its buckets.
void ZeroGradientsInPlace(torch::optim::Optimizer& optimizer) {
  for (auto& group : optimizer.param_groups()) {
    for (at::Tensor& p : group.params()) {
      if (!p.grad().defined()) continue;
      p.mutable_grad().detach_();
      p.mutable_grad().zero_();
    }
  }
}

}  // namespace

at::Tensor ForwardWithPrecision(Model& model, const at::Tensor& input, bool bf16) {
  at::autocast::set_cpu_enabled(bf16);
  at::Tensor logits = model.Forward(input);
  at::autocast::set_cpu_enabled(false);
  // Autocast caches the bf16 copy of each weight while it is on (torch.autocast clears it on
  // exit; this C++ API does not): without this, every later step computes with the bf16 weights
  // of the first one, while the optimizer updates the fp32 ones.
  if (bf16) at::autocast::clear_cache();
  return logits;
}

at::Tensor Augment(const at::Tensor& images, at::Generator& generator) {
  const int64_t n = images.size(0);
  at::Tensor flip = at::rand({n}, generator) < 0.5;
  at::Tensor out = at::where(flip.view({n, 1, 1, 1}), images.flip({3}), images);
  const auto shift = at::randint(-2, 3, {2}, generator, at::kLong);
  return at::roll(out, {shift[0].item<int64_t>(), shift[1].item<int64_t>()}, {2, 3});
}

StepRunner::StepRunner(const TrainOptions& options, int rank, Model& model,
                       torch::optim::Optimizer& optimizer, Reducer& reducer, const Dataset& train,
                       PhaseTracker& phases)
    : options_(options),
      rank_(rank),
      model_(model),
      params_(model.Parameters()),
      optimizer_(optimizer),
      reducer_(reducer),
      train_(train),
      phases_(phases) {
  if (options.bf16()) at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
}

double StepRunner::Run(const std::vector<int64_t>& indices, int64_t epoch, int64_t step_in_epoch,
                       double lr, StepTimes* times) {
  at::Generator augment = at::make_generator<at::CPUGeneratorImpl>(
      options_.seed + 7919 * static_cast<uint64_t>(rank_) + 104729 * static_cast<uint64_t>(epoch) +
      15485863 * static_cast<uint64_t>(step_in_epoch));
  for (auto& group : optimizer_.param_groups()) group.options().set_lr(lr);
  double loss_sum = 0;
  for (int64_t micro = 0; micro < options_.grad_accum_steps; ++micro)
    loss_sum += MicroBatch(indices, step_in_epoch, micro, augment, times);
  times->comm += reducer_.Finish("optimizer").count();  // publishes "optimizer"
  const auto start = Clock::now();
  phases_.Inject("optimizer");
  if (options_.grad_clip_norm > 0)
    torch::nn::utils::clip_grad_norm_(params_, options_.grad_clip_norm);
  optimizer_.step();
  ZeroGradientsInPlace(optimizer_);
  times->optimizer += common::Seconds(Clock::now() - start);
  return loss_sum / static_cast<double>(options_.grad_accum_steps);
}

double StepRunner::MicroBatch(const std::vector<int64_t>& indices, int64_t step_in_epoch,
                              int64_t micro, at::Generator& augment, StepTimes* times) {
  const int64_t batch = options_.batch_per_rank;
  const int64_t accum = options_.grad_accum_steps;
  const auto t0 = Clock::now();
  phases_.Enter("data");
  const int64_t first = (step_in_epoch * accum + micro) * batch;
  const auto begin = indices.begin() + static_cast<std::ptrdiff_t>(first);
  const auto end = indices.begin() + static_cast<std::ptrdiff_t>(std::min<int64_t>(
                                         first + batch, static_cast<int64_t>(indices.size())));
  auto [x, y] = train_.Batch(std::vector<int64_t>(begin, end));
  if (options_.augment) x = Augment(x, augment);
  const auto t1 = Clock::now();
  reducer_.Prepare(/*sync=*/micro == accum - 1);
  phases_.Enter("forward");
  at::Tensor loss = torch::nn::functional::cross_entropy(
      ForwardWithPrecision(model_, x, options_.bf16()).to(at::kFloat), y);
  phases_.Enter("backward");
  (loss / static_cast<double>(accum)).backward();
  const double value = loss.item<double>();
  const auto t2 = Clock::now();
  times->data += common::Seconds(t1 - t0);
  times->compute += common::Seconds(t2 - t1);
  return value;
}

}  // namespace trainer

#pragma once
// One optimizer step of data-parallel training on this rank: train.grad_accum_steps micro-batches
// taken in order from the rank's shard of the epoch, each augmented (when train.augment) with a
// generator seeded by rank, epoch and step (so a resumed run draws what the original drew),
// forward (under CPU autocast to bf16 when train.precision is bf16) and backward, the gradient
// all-reduce only on the last micro-batch (trainer/reducer.h), then clipping and the optimizer at
// the given rate. Gradients are zeroed after the step.

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "trainer/data.h"
#include "trainer/phase_tracker.h"
#include "trainer/reducer.h"
#include "trainer/train_options.h"
#include "trainer/train_report.h"

namespace torch::optim {
class Optimizer;
}

namespace trainer {

class Model;

// The model's logits for `input`; with bf16 the forward runs under CPU autocast to bfloat16 (the
// matmuls in bf16, so the logits come back as bfloat16). Autocast is off again on return.
[[nodiscard]] at::Tensor ForwardWithPrecision(Model& model, const at::Tensor& input, bool bf16);

// Random horizontal flips (per image) and one shift of up to 2 pixels in each direction.
[[nodiscard]] at::Tensor Augment(const at::Tensor& images, at::Generator& generator);

class StepRunner {
 public:
  StepRunner(const TrainOptions& options, int rank, Model& model,
             torch::optim::Optimizer& optimizer, Reducer& reducer, const Dataset& train,
             PhaseTracker& phases);

  // Runs step `step_in_epoch` of `epoch` over `indices` (this rank's shard of that epoch) at
  // rate `lr`; returns this rank's loss averaged over the micro-batches and adds the step's
  // times to *times. Publishes each phase (data, forward, backward per micro-batch, the gradient
  // all-reduce, optimizer) as it enters it.
  [[nodiscard]] double Run(const std::vector<int64_t>& indices, int64_t epoch,
                           int64_t step_in_epoch, double lr, StepTimes* times);

 private:
  // Forward and backward of one micro-batch; returns its loss.
  double MicroBatch(const std::vector<int64_t>& indices, int64_t step_in_epoch, int64_t micro,
                    at::Generator& augment, StepTimes* times);

  const TrainOptions& options_;
  int rank_;
  Model& model_;
  std::vector<at::Tensor> params_;
  torch::optim::Optimizer& optimizer_;
  Reducer& reducer_;
  const Dataset& train_;
  PhaseTracker& phases_;
};

}  // namespace trainer

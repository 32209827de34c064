#include "trainer/evaluate.h"

#include <ATen/ATen.h>
#include <torch/nn/functional/loss.h>
#include <torch/utils.h>

#include <algorithm>

#include "trainer/collectives.h"
#include "trainer/models.h"
#include "trainer/sampler.h"

namespace trainer {

Evaluation Evaluate(Model& model, const Dataset& test, Communicator& comm, PhaseTracker& phases,
                    int64_t batch) {
  phases.Enter("evaluation");
  model.SetTraining(false);
  torch::NoGradGuard no_grad;
  DistributedSampler sampler(test.size(), comm.rank(), comm.size(), 0, /*shuffle=*/false,
                             /*drop_last=*/false);
  std::vector<int64_t> mine = sampler.Indices(0);
  // Padding repeats samples on some ranks; count only the real ones.
  const int64_t real = std::max<int64_t>(
      0, std::min<int64_t>(sampler.per_rank(),
                           (test.size() - comm.rank() + comm.size() - 1) / comm.size()));
  mine.resize(static_cast<size_t>(real));
  double loss_sum = 0, correct = 0;
  for (size_t start = 0; start < mine.size(); start += static_cast<size_t>(batch)) {
    std::vector<int64_t> idx(mine.begin() + static_cast<std::ptrdiff_t>(start),
                             mine.begin() + static_cast<std::ptrdiff_t>(std::min(
                                                mine.size(), start + static_cast<size_t>(batch))));
    auto [x, y] = test.Batch(idx);
    at::Tensor logits = model.Forward(x).to(at::kFloat);
    loss_sum +=
        torch::nn::functional::cross_entropy(
            logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
            .item<double>();
    correct += logits.argmax(1).eq(y).sum().item<double>();
  }
  const std::vector<double> totals = SumOverRanks(
      comm, phases.writer(), {loss_sum, correct, static_cast<double>(mine.size())}, "evaluation");
  model.SetTraining(true);
  Evaluation e;
  e.samples = static_cast<int64_t>(totals[2]);
  e.loss = totals[0] / static_cast<double>(std::max<int64_t>(1, e.samples));
  e.accuracy = totals[1] / static_cast<double>(std::max<int64_t>(1, e.samples));
  return e;
}

}  // namespace trainer

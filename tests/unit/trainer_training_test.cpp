// The training loop's data-parallel semantics (ranks as threads over an in-memory store, real
// ProcessGroupGloo): equivalences between world sizes, batches and accumulation, training that
// learns, bf16 autocast, and the errors users get for bad inputs.

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/utils.h>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "common/errors.h"
#include "tests/unit/temp_dir.h"
#include "tests/unit/trainer_test_util.h"
#include "trainer/models.h"
#include "trainer/train_step.h"

namespace trainer {
namespace {

using namespace test_util;
using testing_support::TempDir;

// The two ways to sum gradients (train.allreduce): one flat Gloo group, or shared memory among
// the ranks of one machine (here every thread is a local rank).
const std::vector<std::string> kAllReduces = {"train.allreduce=gloo", "train.allreduce=shm"};

TEST(TrainerEquivalence, TwoRanksOfBEqualOneRankOf2B) {
  TrainResult one = RunRanks(1, With(kSmallJob, {"train.batch_size=32"}));
  for (const std::string& allreduce : kAllReduces) {
    SCOPED_TRACE(allreduce);
    TrainResult two = RunRanks(2, With(kSmallJob, {"train.batch_size=16", allreduce}));
    EXPECT_EQ(two.steps, 6);
    ExpectClose(two, one, 2e-5);
  }
  EXPECT_EQ(one.steps, 6);
  // And training moved the parameters (the comparison is not between two initial states).
  TrainResult none = RunRanks(1, With(kSmallJob, {"train.batch_size=32", "train.max_steps=1"}));
  double moved = 0;
  for (size_t k = 0; k < one.parameters.size(); ++k)
    moved += (one.parameters[k] - none.parameters[k]).abs().sum().item<double>();
  EXPECT_GT(moved, 1e-3);
}

TEST(TrainerEquivalence, KeepEffectiveBatchSizeSplitsTheGlobalBatch) {
  TrainResult two =
      RunRanks(2, With(kSmallJob, {"train.batch_size=32", "train.keep_effective_batch_size=true"}));
  TrainResult one = RunRanks(1, With(kSmallJob, {"train.batch_size=32"}));
  ExpectClose(two, one, 2e-5);
}

TEST(TrainerEquivalence, AccumulationEqualsOneBigStep) {
  TrainResult accumulated =
      RunRanks(1, With(kSmallJob, {"train.batch_size=8", "train.grad_accum_steps=4"}));
  TrainResult big = RunRanks(1, With(kSmallJob, {"train.batch_size=32"}));
  ExpectClose(accumulated, big, 2e-5);
  // Across ranks too: 2 ranks x 8 x 2 micro-steps = 1 rank x 32.
  TrainResult both =
      RunRanks(2, With(kSmallJob, {"train.batch_size=8", "train.grad_accum_steps=2"}));
  ExpectClose(both, big, 2e-5);
}

TEST(TrainerEquivalence, OverlapDoesNotChangeTheResultAndSmallBucketsWork) {
  for (const std::string& allreduce : kAllReduces) {
    SCOPED_TRACE(allreduce);
    const auto job =
        With(kSmallJob, {"train.batch_size=16", "train.bucket_size_mb=0.01", allreduce});
    TrainResult overlapped = RunRanks(2, job, true);
    TrainResult after = RunRanks(2, job, false);
    ExpectClose(overlapped, after, 1e-6);
  }
}

// Shared memory and Gloo train the same model: with 2 ranks to the bit (a + b either way), with
// 3 to float tolerance (another summation order); accumulation, a CNN (whose buffers include
// integers, broadcast at start) and small buckets included. RunRanks checks every rank ends
// bit-identical to rank 0.
TEST(TrainerEquivalence, SharedMemoryAndGlooTrainTheSameParameters) {
  struct Row {
    int world;
    std::vector<std::string> job;
    double atol;
  };
  const std::vector<Row> rows = {
      {2, With(kSmallJob, {"train.batch_size=16"}), 0},
      {3, With(kSmallJob, {"train.batch_size=8", "train.bucket_size_mb=0.01"}), 1e-6},
      {2, With(kSmallJob, {"train.batch_size=8", "train.grad_accum_steps=2"}), 0},
      {2, With(kSmallJob, {"train.model=cnn", "train.batch_size=4", "train.max_steps=3"}), 0},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(std::to_string(row.world) + " ranks, " + row.job.back());
    TrainResult gloo = RunRanks(row.world, With(row.job, {"train.allreduce=gloo"}));
    TrainResult shm = RunRanks(row.world, With(row.job, {"train.allreduce=shm"}));
    if (row.atol == 0) {
      ExpectBitIdentical(shm, gloo);
    } else {
      ExpectClose(shm, gloo, row.atol);
    }
  }
}

// The losses rank 0 wrote to <dir>/metrics.jsonl, step by step (train.log_every=1).
std::vector<double> LoggedLosses(const std::string& dir) {
  std::vector<double> losses;
  std::ifstream in(dir + "/metrics.jsonl");
  const std::string key = "\"loss\":";
  for (std::string line; std::getline(in, line);) {
    const size_t at = line.find(key);
    if (at != std::string::npos) losses.push_back(std::stod(line.substr(at + key.size())));
  }
  return losses;
}

TEST(TrainerEquivalence, CnnAndTransformerTrainOnTwoRanks) {
  for (const char* model : {"train.model=cnn", "train.model=transformer"}) {
    SCOPED_TRACE(model);
    TempDir out;
    TrainContext context;
    context.output_dir = out.path();
    std::vector<TrainResult> ranks = RunRanksAll(
        2,
        With(kSmallJob, {model, "train.batch_size=8", "train.max_steps=20", "train.optimizer=adamw",
                         "train.lr=0.001", "train.log_every=1"}),
        true, context);
    ASSERT_EQ(ranks.size(), 2u);
    EXPECT_EQ(ranks[0].steps, 20);
    EXPECT_EQ(ranks[1].steps, 20);
    // Data parallelism: both ranks end with the same parameters, to the last bit.
    ExpectBitIdentical(ranks[1], ranks[0]);
    // And they learned: the loss (mean over ranks) fell from the first steps to the last.
    const std::vector<double> losses = LoggedLosses(out.path());
    ASSERT_EQ(losses.size(), 20u);
    EXPECT_NEAR(losses.back(), ranks[0].last_loss, 1e-12);  // as metrics.jsonl rounds it
    const double first = (losses[0] + losses[1] + losses[2]) / 3;
    const double last = (losses[17] + losses[18] + losses[19]) / 3;
    EXPECT_LT(last, 0.97 * first) << "mean loss of the first 3 steps " << first << ", last 3 "
                                  << last;
  }
}

TEST(TrainerTraining, SyntheticMlpLearnsAndEvaluates) {
  TrainResult r =
      RunRanks(2, {"train.model=mlp", "train.hidden_sizes=[64]", "train.synthetic_samples=2048",
                   "train.epochs=2", "train.batch_size=32", "train.lr=0.05", "train.log_every=1000",
                   "train.lr_schedule=cosine", "train.warmup_steps=5", "train.grad_clip_norm=1.0"});
  EXPECT_GT(r.test_accuracy, 0.9);
  TrainResult adamw =
      RunRanks(2, With(kSmallJob, {"train.optimizer=adamw", "train.lr=0.001", "train.augment=true",
                                   "train.batch_size=16", "train.weight_decay=0.01"}));
  EXPECT_TRUE(std::isfinite(adamw.last_loss));
}

TEST(TrainerTraining, Bf16AutocastRunsTheMatmulsInBf16) {
  // The forward the training step uses: under bf16 the MLP's logits are what an explicit bf16
  // computation gives (inputs and weights rounded to bf16, matmuls in bf16), and not fp32's.
  std::unique_ptr<Model> model;
  {
    torch::manual_seed(3);
    model = MakeModel(MakeConfig({"train.model=mlp", "train.hidden_sizes=[32]"}));
  }
  torch::NoGradGuard no_grad;
  const at::Tensor x = at::randn({4, 1, 28, 28});
  const at::Tensor bf16 = ForwardWithPrecision(*model, x, /*bf16=*/true);
  const at::Tensor fp32 = ForwardWithPrecision(*model, x, /*bf16=*/false);
  EXPECT_EQ(bf16.scalar_type(), at::kBFloat16);
  EXPECT_EQ(fp32.scalar_type(), at::kFloat);
  const auto p = model->NamedParameters();  // layers.0.{weight,bias}, layers.2.{weight,bias}
  ASSERT_EQ(p.size(), 4u);
  auto b = [](const at::Tensor& t) { return t.to(at::kBFloat16); };
  const at::Tensor hidden = at::relu(at::linear(b(x.flatten(1)), b(p[0].second), b(p[1].second)));
  const at::Tensor expected = at::linear(hidden, b(p[2].second), b(p[3].second));
  EXPECT_TRUE(at::equal(bf16, expected))
      << "differs from explicit bf16 by " << (bf16 - expected).abs().max().item<double>();
  EXPECT_GT((bf16.to(at::kFloat) - fp32).abs().max().item<double>(), 1e-4)
      << "bf16 logits equal the fp32 ones: autocast did not run";
  EXPECT_FALSE(at::autocast::is_cpu_enabled()) << "autocast left on after the forward";

  // The loop uses it: bf16 training ends near fp32 training, but not on it.
  TrainResult with_bf16 =
      RunRanks(1, With(kSmallJob, {"train.batch_size=32", "train.precision=bf16"}));
  TrainResult with_fp32 = RunRanks(1, With(kSmallJob, {"train.batch_size=32"}));
  EXPECT_TRUE(std::isfinite(with_bf16.last_loss));
  EXPECT_NE(with_bf16.parameter_digest, with_fp32.parameter_digest);
  EXPECT_NE(with_bf16.last_loss, with_fp32.last_loss);
  ExpectClose(with_bf16, with_fp32, 0.05);
}

TEST(TrainerTraining, Bf16ForwardSeesTheWeightsOfEveryStep) {
  // With gradients on, as in training: after the optimizer changes the weights in place, the
  // next bf16 forward must use the new weights (no cast cached from an earlier step).
  std::unique_ptr<Model> model;
  {
    torch::manual_seed(4);
    model = MakeModel(MakeConfig({"train.model=mlp", "train.hidden_sizes=[16]"}));
  }
  const at::Tensor x = at::randn({3, 1, 28, 28});
  const at::Tensor before = ForwardWithPrecision(*model, x, /*bf16=*/true).detach();
  {
    torch::NoGradGuard no_grad;
    for (const at::Tensor& p : model->Parameters()) p.add_(0.25);
  }
  const at::Tensor after = ForwardWithPrecision(*model, x, /*bf16=*/true).detach();
  const auto p = model->NamedParameters();
  auto b = [](const at::Tensor& t) { return t.detach().to(at::kBFloat16); };
  const at::Tensor hidden = at::relu(at::linear(b(x.flatten(1)), b(p[0].second), b(p[1].second)));
  const at::Tensor expected = at::linear(hidden, b(p[2].second), b(p[3].second));
  EXPECT_FALSE(at::equal(before, after)) << "the second forward used the first step's weights";
  EXPECT_TRUE(at::equal(after, expected))
      << "differs from explicit bf16 of the new weights by "
      << (after.to(at::kFloat) - expected.to(at::kFloat)).abs().max().item<double>();
}

TEST(TrainerErrors, BadInputsGetClearErrors) {
  struct Row {
    std::string name;
    int world;
    std::vector<std::string> overrides;
    std::string fragment;
    common::ExitCode code;
  };
  const std::vector<Row> rows = {
      {"global batch smaller than the world", 2,
       With(kSmallJob, {"train.batch_size=1", "train.keep_effective_batch_size=true"}),
       "train.batch_size=1 is the global batch (train.keep_effective_batch_size: true) but the "
       "world has 2 ranks",
       common::kExitConfig},
      {"NaN loss names the step", 1,
       With(kSmallJob,
            {"train.batch_size=32", "train.lr=100", "train.momentum=0", "train.max_steps=16"}),
       "at step ", common::kExitDiverged},
      {"fp16 on CPU", 1, With(kSmallJob, {"train.precision=fp16"}),
       "fp16 with dynamic loss scaling needs CUDA", common::kExitConfig},
      {"missing data files", 1,
       With(kSmallJob, {"train.dataset=mnist", "train.data_dir=/nonexistent"}),
       "neither /nonexistent/train-images-idx3-ubyte.gz nor /nonexistent/train-images-idx3-ubyte "
       "exists",
       common::kExitConfig},
      {"missing TorchScript file", 1,
       With(kSmallJob, {"train.model=torchscript", "train.model_path=/nonexistent.pt"}),
       "train.model_path: '/nonexistent.pt' does not load as a TorchScript module",
       common::kExitConfig},
      {"too little data for one step", 2, With(kSmallJob, {"train.batch_size=512"}),
       "one optimizer step needs 512 samples per rank", common::kExitConfig},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    try {
      (void)RunRanks(row.world, row.overrides);
      ADD_FAILURE() << "no error";
    } catch (const common::Error& e) {
      EXPECT_NE(std::string(e.what()).find(row.fragment), std::string::npos) << e.what();
      EXPECT_EQ(e.code(), row.code) << e.what();
    }
  }
}

}  // namespace
}  // namespace trainer

// The trainer's parts and its data-parallel semantics, with ranks as threads over an in-memory
// store and real ProcessGroupGloo (no subprocesses).

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <thread>

#include "common/config.h"
#include "common/errors.h"
#include "tests/unit/temp_dir.h"
#include "trainer/checkpoint.h"
#include "trainer/comm.h"
#include "trainer/data.h"
#include "trainer/models.h"
#include "trainer/sampler.h"
#include "trainer/schedule.h"
#include "trainer/train_loop.h"

namespace trainer {
namespace {

using testing_support::TempDir;

namespace fs = std::filesystem;
using namespace std::chrono_literals;

common::Config MakeConfig(std::vector<std::string> overrides) {
  common::MapEnvironment env;
  return common::LoadConfig({std::nullopt, &env, std::move(overrides)});
}

// Runs Train on `world` ranks as threads; returns rank 0's result (or rethrows the first error).
TrainResult RunRanks(int world, const std::vector<std::string>& overrides, bool overlap = true,
                     const TrainContext& base = TrainContext()) {
  at::set_num_threads(1);
  auto store = MakeInProcessStore();
  std::vector<TrainResult> results(static_cast<size_t>(world));
  std::vector<std::exception_ptr> errors(static_cast<size_t>(world));
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      try {
        auto comm = MakeInProcessCommunicator(store, r, world, 60s);
        TrainContext context = base;
        context.overlap = overlap;
        results[static_cast<size_t>(r)] = Train(MakeConfig(overrides), *comm, context);
      } catch (...) {
        errors[static_cast<size_t>(r)] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  // Every rank ends with the same parameters.
  for (int r = 1; r < world; ++r) {
    for (size_t k = 0; k < results[0].parameters.size(); ++k) {
      EXPECT_TRUE(
          at::equal(results[0].parameters[k], results[static_cast<size_t>(r)].parameters[k]))
          << "rank " << r << " parameter " << k << " differs from rank 0's";
    }
  }
  return results[0];
}

void ExpectClose(const TrainResult& a, const TrainResult& b, double atol) {
  ASSERT_EQ(a.parameters.size(), b.parameters.size());
  for (size_t k = 0; k < a.parameters.size(); ++k) {
    const double diff = (a.parameters[k] - b.parameters[k]).abs().max().item<double>();
    EXPECT_LE(diff, atol) << "parameter " << k << " differs by " << diff;
  }
}

const std::vector<std::string> kSmallJob = {"train.model=mlp",
                                            "train.hidden_sizes=[32]",
                                            "train.dataset=synthetic",
                                            "train.synthetic_samples=512",
                                            "train.epochs=1",
                                            "train.max_steps=6",
                                            "train.lr=0.1",
                                            "train.momentum=0.9",
                                            "train.eval_every_epoch=false",
                                            "train.log_every=1000",
                                            "job.seed=7"};

std::vector<std::string> With(std::vector<std::string> base, const std::vector<std::string>& more) {
  base.insert(base.end(), more.begin(), more.end());
  return base;
}

TEST(TrainerEquivalence, TwoRanksOfBEqualOneRankOf2B) {
  TrainResult two = RunRanks(2, With(kSmallJob, {"train.batch_size=16"}));
  TrainResult one = RunRanks(1, With(kSmallJob, {"train.batch_size=32"}));
  EXPECT_EQ(two.steps, 6);
  EXPECT_EQ(one.steps, 6);
  ExpectClose(two, one, 2e-5);
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
  TrainResult overlapped =
      RunRanks(2, With(kSmallJob, {"train.batch_size=16", "train.bucket_size_mb=0.01"}), true);
  TrainResult after =
      RunRanks(2, With(kSmallJob, {"train.batch_size=16", "train.bucket_size_mb=0.01"}), false);
  ExpectClose(overlapped, after, 1e-6);
}

TEST(TrainerEquivalence, CnnAndTransformerTrainOnTwoRanks) {
  for (const char* model : {"train.model=cnn", "train.model=transformer"}) {
    SCOPED_TRACE(model);
    TrainResult r = RunRanks(
        2, With(kSmallJob, {model, "train.batch_size=8", "train.max_steps=3", "train.lr=0.01"}));
    EXPECT_EQ(r.steps, 3);
    EXPECT_TRUE(std::isfinite(r.last_loss));
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

TEST(TrainerTraining, Bf16AutocastTrains) {
  TrainResult r = RunRanks(1, With(kSmallJob, {"train.batch_size=32", "train.precision=bf16"}));
  EXPECT_TRUE(std::isfinite(r.last_loss));
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

void WriteIdx(const std::string& path, uint32_t magic, std::vector<uint32_t> dims, size_t payload) {
  std::ofstream out(path, std::ios::binary);
  auto be = [&](uint32_t v) {
    char b[4] = {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
    out.write(b, 4);
  };
  be(magic);
  for (uint32_t d : dims) be(d);
  out << std::string(payload, '\1');
}

TEST(TrainerData, IdxFilesAreValidated) {
  struct Row {
    std::string name;
    std::vector<uint32_t> image_dims;
    size_t image_payload;
    uint32_t label_count;
    uint32_t image_magic;
    std::string fragment;
  };
  const std::vector<Row> rows = {
      {"wrong image size",
       {10, 32, 32},
       10 * 32 * 32,
       10,
       0x803,
       "holds 32x32 images; the built-in models expect 28x28"},
      {"count mismatch", {10, 28, 28}, 10 * 784, 9, 0x803, "has 10 images but"},
      {"truncated", {10, 28, 28}, 5 * 784, 10, 0x803, "is truncated"},
      {"bad magic", {10, 28, 28}, 10 * 784, 10, 0x801, "is not an idx3 image file"},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    TempDir dir;
    WriteIdx(dir.path() + "/train-images-idx3-ubyte", row.image_magic, row.image_dims,
             row.image_payload);
    WriteIdx(dir.path() + "/train-labels-idx1-ubyte", 0x801, {row.label_count}, row.label_count);
    double mean = 0, std = 1;
    try {
      (void)LoadIdxDataset(dir.path(), false, 0, &mean, &std);
      ADD_FAILURE() << "no error";
    } catch (const common::ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(row.fragment), std::string::npos) << e.what();
    }
  }
}

TEST(TrainerData, FashionMnistFromDebianLoads) {
  double mean = 0, std = 1;
  Dataset train = LoadIdxDataset("/usr/share/datasets/fashion-mnist", false, 1000, &mean, &std);
  Dataset test = LoadIdxDataset("/usr/share/datasets/fashion-mnist", true, 100, &mean, &std);
  EXPECT_EQ(train.size(), 1000);
  EXPECT_EQ(test.size(), 100);
  EXPECT_EQ(train.images.sizes(), (std::vector<int64_t>{1000, 1, 28, 28}));
  EXPECT_NEAR(train.images.mean().item<double>(), 0, 1e-4);
  EXPECT_NEAR(train.images.std().item<double>(), 1, 1e-3);
  EXPECT_LT(train.labels.max().item<int64_t>(), 10);
}

TEST(TrainerData, GarbageTorchScriptIsRefused) {
  TempDir dir;
  std::ofstream(dir.path() + "/bad.pt") << "not a zip archive";
  try {
    (void)MakeModel(
        MakeConfig({"train.model=torchscript", "train.model_path=" + dir.path() + "/bad.pt"}));
    FAIL() << "no error";
  } catch (const common::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("does not load as a TorchScript module"),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("torch.jit.save"), std::string::npos) << e.what();
  }
}

TEST(SamplerTest, ShardsAreDisjointEqualAndReshuffledPerEpoch) {
  struct Row {
    int64_t n;
    int world;
    bool drop_last;
    int64_t per_rank;
  };
  for (const Row& row : std::vector<Row>{{10, 2, true, 5},
                                         {10, 3, true, 3},
                                         {10, 3, false, 4},
                                         {7, 7, true, 1},
                                         {5, 8, false, 1}}) {
    SCOPED_TRACE("n=" + std::to_string(row.n) + " world=" + std::to_string(row.world) +
                 " drop_last=" + std::to_string(row.drop_last));
    std::multiset<int64_t> seen;
    for (int r = 0; r < row.world; ++r) {
      DistributedSampler s(row.n, r, row.world, 42, true, row.drop_last);
      EXPECT_EQ(s.per_rank(), row.per_rank);
      std::vector<int64_t> idx = s.Indices(0);
      EXPECT_EQ(static_cast<int64_t>(idx.size()), row.per_rank);
      if (row.per_rank >= 3) {
        EXPECT_NE(idx, s.Indices(1)) << "no reshuffle between epochs";
      }
      EXPECT_EQ(idx, DistributedSampler(row.n, r, row.world, 42, true, row.drop_last).Indices(0));
      seen.insert(idx.begin(), idx.end());
    }
    std::set<int64_t> distinct(seen.begin(), seen.end());
    if (row.drop_last) {
      EXPECT_EQ(distinct.size(), seen.size()) << "shards overlap";
    } else {
      EXPECT_EQ(static_cast<int64_t>(distinct.size()), row.n) << "padding lost samples";
    }
  }
  // A permutation: every index once; fixed by the seed, and different for another seed.
  std::vector<int64_t> p = Permutation(100, 3);
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 100; ++i) EXPECT_EQ(sorted[static_cast<size_t>(i)], i);
  EXPECT_EQ(p, Permutation(100, 3));
  EXPECT_NE(p, Permutation(100, 4));
}

TEST(ScheduleTest, WarmupCosineStepAndScaling) {
  LrSchedule s;
  s.base_lr = 0.1;
  s.world_size = 4;
  s.scaling = "linear";
  EXPECT_DOUBLE_EQ(s.PeakLr(), 0.4);
  s.scaling = "sqrt";
  EXPECT_DOUBLE_EQ(s.PeakLr(), 0.2);
  s.scaling = "none";
  s.warmup_steps = 4;
  s.total_steps = 104;
  s.kind = "cosine";
  EXPECT_DOUBLE_EQ(s.At(0), 0.025);
  EXPECT_DOUBLE_EQ(s.At(3), 0.1);
  EXPECT_DOUBLE_EQ(s.At(4), 0.1);
  EXPECT_NEAR(s.At(54), 0.05, 1e-12);
  EXPECT_NEAR(s.At(104), 0.0, 1e-12);
  s.kind = "step";
  s.step_size = 10;
  s.gamma = 0.5;
  EXPECT_DOUBLE_EQ(s.At(13), 0.1);
  EXPECT_DOUBLE_EQ(s.At(14), 0.05);
  EXPECT_DOUBLE_EQ(s.At(34), 0.0125);
}

// ---- Checkpoints, stops and exact resume ----

const std::vector<std::string> kResumeJob = {"train.model=mlp",
                                             "train.hidden_sizes=[32]",
                                             "train.dataset=synthetic",
                                             "train.synthetic_samples=512",
                                             "train.epochs=2",
                                             "train.batch_size=16",
                                             "train.lr=0.1",
                                             "train.momentum=0.9",
                                             "train.lr_schedule=cosine",
                                             "train.warmup_steps=3",
                                             "train.augment=true",
                                             "train.eval_every_epoch=false",
                                             "train.log_every=1000",
                                             "job.seed=11",
                                             "train.keep_checkpoints=10"};

TrainContext WithCheckpoints(const std::string& dir, int64_t stop_at = -1) {
  TrainContext c;
  c.checkpoint_dir = dir;
  c.stop_at_step = stop_at;
  return c;
}

TEST(TrainerResume, StoppedAndResumedIsBitIdentical) {
  TempDir a, b;
  TrainResult straight = RunRanks(2, kResumeJob, true, WithCheckpoints(a.path()));
  EXPECT_EQ(straight.steps, 32);  // 2 epochs x 16 steps: the resume crosses an epoch boundary
  TrainResult first = RunRanks(2, kResumeJob, true, WithCheckpoints(b.path(), 11));
  EXPECT_EQ(first.stop_reason, "signal");
  EXPECT_EQ(first.steps, 11);
  TrainResult second = RunRanks(2, kResumeJob, true, WithCheckpoints(b.path()));
  EXPECT_EQ(second.resumed_from_step, 11);
  EXPECT_EQ(second.steps, 32);
  EXPECT_EQ(second.parameter_digest, straight.parameter_digest);
  EXPECT_EQ(second.last_loss, straight.last_loss);  // the same loss line, to the last bit
  for (size_t k = 0; k < straight.parameters.size(); ++k) {
    EXPECT_TRUE(at::equal(second.parameters[k], straight.parameters[k])) << "parameter " << k;
  }
}

TEST(TrainerResume, WorldSizeChangeKeepsTheTrajectoryWithinTolerance) {
  // Resume a 2-rank run on 1 rank; with keep_effective_batch_size the global batch is the same.
  std::vector<std::string> job =
      With(kResumeJob,
           {"train.batch_size=32", "train.keep_effective_batch_size=true", "train.augment=false"});
  TempDir a, b;
  TrainResult straight = RunRanks(2, job, true, WithCheckpoints(a.path()));
  TrainResult first = RunRanks(2, job, true, WithCheckpoints(b.path(), 7));
  EXPECT_EQ(first.steps, 7);
  TrainResult second = RunRanks(1, job, true, WithCheckpoints(b.path()));
  EXPECT_EQ(second.resumed_from_step, 7);
  EXPECT_EQ(second.steps, straight.steps);
  ExpectClose(second, straight, 2e-5);
}

TEST(TrainerResume, GrowingTheWorldKeepsTheStepCounterAndFinishes) {
  // 1 rank -> 2 ranks: the resumed run must continue at the same global step, not skip ahead.
  std::vector<std::string> job =
      With(kResumeJob,
           {"train.batch_size=32", "train.keep_effective_batch_size=true", "train.augment=false"});
  TempDir a, b;
  TrainResult straight = RunRanks(2, job, true, WithCheckpoints(a.path()));
  TrainResult first =
      RunRanks(1, job, true, WithCheckpoints(b.path(), 20));  // epoch 2, step 4 of 16
  EXPECT_EQ(first.steps, 20);
  TrainResult second = RunRanks(2, job, true, WithCheckpoints(b.path()));
  EXPECT_EQ(second.resumed_from_step, 20);
  EXPECT_EQ(second.steps, 32);
  ExpectClose(second, straight, 2e-5);
}

TEST(TrainerResume, KeepsTheNewestCheckpointsAndMovesLatest) {
  TempDir dir;
  TrainResult r =
      RunRanks(1, With(kResumeJob, {"train.checkpoint_every=4", "train.keep_checkpoints=2"}), true,
               WithCheckpoints(dir.path()));
  EXPECT_EQ(r.steps, 64);  // one rank of 16: 32 steps per epoch
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir.path()))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"latest", "step-000060", "step-000064"}));
  std::ifstream latest(dir.path() + "/latest");
  std::string name;
  latest >> name;
  EXPECT_EQ(name, "step-000064");
}

TEST(TrainerResume, DamagedOrMismatchedCheckpointsAreRefused) {
  TempDir dir;
  (void)RunRanks(1, With(kResumeJob, {"train.max_steps=4", "train.checkpoint_every=2"}), true,
                 WithCheckpoints(dir.path()));
  struct Row {
    std::string name;
    std::function<void(const std::string& last)> damage;  // gets checkpoints/step-000004
    std::vector<std::string> overrides;
    std::string fragment;
  };
  const std::vector<Row> rows = {
      {"corrupted byte",
       [](const std::string& last) {
         std::fstream f(last + "/model.pt", std::ios::in | std::ios::out | std::ios::binary);
         f.seekp(100);
         f.put('\x5a');
       },
       {},
       "/model.pt is corrupted: CRC-32"},
      {"truncated file",
       [](const std::string& last) { fs::resize_file(last + "/optimizer.pt", 10); },
       {},
       "/optimizer.pt is truncated or damaged: 10 bytes"},
      {"missing state",
       [](const std::string& last) { fs::remove(last + "/state.yaml"); },
       {},
       "names 'step-000004', which is missing or incomplete"},
      {"other model",
       [](const std::string&) {},
       {"train.hidden_sizes=[48]", "train.allow_config_change=true"},
       "parameter 'layers.0.weight' has shape [32, 784] there but [48, 784] in the model"},
      {"other config",
       [](const std::string&) {},
       {"train.lr=0.2"},
       "was written with a different config (train.lr 0.1 -> 0.2)"},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    TempDir copy;
    fs::copy(dir.path(), copy.path(),
             fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    row.damage(copy.path() + "/step-000004");
    try {
      (void)RunRanks(1, With(With(kResumeJob, {"train.max_steps=6"}), row.overrides), true,
                     WithCheckpoints(copy.path()));
      ADD_FAILURE() << "no error";
    } catch (const common::Error& e) {
      EXPECT_NE(std::string(e.what()).find(row.fragment), std::string::npos) << e.what();
    }
    // The earlier checkpoint is still there and loads.
    EXPECT_NO_THROW((void)RunRanks(
        1, With(kResumeJob, {"train.max_steps=6", "train.resume=" + copy.path() + "/step-000002"}),
        true, WithCheckpoints(copy.path())));
  }
}

TEST(TrainerResume, WalltimeStopsBeforeTheJobEnds) {
  TempDir dir;
  TrainContext context = WithCheckpoints(dir.path());
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  // 20 s left, less than a step + a checkpoint + the 30 s margin: stop after the first step.
  context.job_end_time = now + 20;
  TrainResult r = RunRanks(2, With(kResumeJob, {"train.stop_margin_s=30"}), true, context);
  EXPECT_EQ(r.stop_reason, "walltime");
  EXPECT_EQ(r.steps, 1);
  EXPECT_TRUE(fs::exists(dir.path() + "/latest"));
  // An hour left: the run finishes.
  TempDir other;
  TrainContext relaxed = WithCheckpoints(other.path());
  relaxed.job_end_time = now + 3600;
  TrainResult full = RunRanks(2, With(kResumeJob, {"train.stop_margin_s=30"}), true, relaxed);
  EXPECT_EQ(full.stop_reason, "");
  EXPECT_EQ(full.steps, 32);
}

}  // namespace
}  // namespace trainer

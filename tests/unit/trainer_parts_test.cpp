// The training loop's pure parts, without training: the typed options read from the config, the
// resume point a checkpoint gives, the per-step agreement between ranks and the walltime rule.

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "common/errors.h"
#include "tests/unit/trainer_test_util.h"
#include "trainer/resume_point.h"
#include "trainer/stop_decision.h"
#include "trainer/train_options.h"

namespace trainer {
namespace {

using test_util::MakeConfig;

TEST(TrainerOptions, PerRankBatchFromTheConfiguredOne) {
  struct Row {
    std::string name;
    int world;
    std::vector<std::string> overrides;
    int64_t batch_per_rank;
    int64_t samples_per_step;
  };
  const std::vector<Row> rows = {
      {"per-rank batch as given", 4, {"train.batch_size=16"}, 16, 64},
      {"global batch split",
       4,
       {"train.batch_size=64", "train.keep_effective_batch_size=true"},
       16,
       64},
      {"global batch rounded down",
       3,
       {"train.batch_size=10", "train.keep_effective_batch_size=true"},
       3,
       9},
      {"accumulation multiplies", 2, {"train.batch_size=8", "train.grad_accum_steps=4"}, 8, 64},
      {"one sample per rank",
       8,
       {"train.batch_size=8", "train.keep_effective_batch_size=true"},
       1,
       8},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    const TrainOptions o = TrainOptions::FromConfig(MakeConfig(row.overrides), row.world);
    EXPECT_EQ(o.world_size, row.world);
    EXPECT_EQ(o.batch_per_rank, row.batch_per_rank);
    EXPECT_EQ(o.SamplesPerStep(), row.samples_per_step);
  }
}

TEST(TrainerOptions, ReadsEveryValueOnce) {
  const TrainOptions o = TrainOptions::FromConfig(MakeConfig({"job.seed=42",
                                                              "train.precision=bf16",
                                                              "train.dataset=synthetic",
                                                              "train.synthetic_samples=300",
                                                              "train.data_limit=200",
                                                              "train.drop_last=true",
                                                              "train.augment=true",
                                                              "train.epochs=3",
                                                              "train.max_steps=17",
                                                              "train.optimizer=adamw",
                                                              "train.lr=0.25",
                                                              "train.weight_decay=0.5",
                                                              "train.grad_clip_norm=2.5",
                                                              "train.lr_schedule=step",
                                                              "train.lr_step_size=9",
                                                              "train.lr_gamma=0.75",
                                                              "train.warmup_steps=4",
                                                              "train.lr_scaling=sqrt",
                                                              "train.keep_checkpoints=5",
                                                              "train.resume=none",
                                                              "train.checkpoint_every=6",
                                                              "train.stop_margin_s=12",
                                                              "train.log_every=7",
                                                              "train.eval_every_epoch=false",
                                                              "train.bucket_size_mb=0.5"}),
                                                  1);
  EXPECT_EQ(o.seed, 42u);
  EXPECT_TRUE(o.bf16());
  EXPECT_EQ(o.dataset, "synthetic");
  EXPECT_EQ(o.synthetic_samples, 300);
  EXPECT_EQ(o.data_limit, 200);
  EXPECT_TRUE(o.drop_last);
  EXPECT_TRUE(o.augment);
  EXPECT_EQ(o.epochs, 3);
  EXPECT_EQ(o.max_steps, 17);
  EXPECT_EQ(o.optimizer, "adamw");
  EXPECT_DOUBLE_EQ(o.lr, 0.25);
  EXPECT_DOUBLE_EQ(o.weight_decay, 0.5);
  EXPECT_DOUBLE_EQ(o.grad_clip_norm, 2.5);
  EXPECT_EQ(o.lr_schedule, "step");
  EXPECT_EQ(o.lr_step_size, 9);
  EXPECT_DOUBLE_EQ(o.lr_gamma, 0.75);
  EXPECT_EQ(o.warmup_steps, 4);
  EXPECT_EQ(o.lr_scaling, "sqrt");
  EXPECT_EQ(o.keep_checkpoints, 5);
  EXPECT_EQ(o.resume, "none");
  EXPECT_EQ(o.checkpoint_every, 6);
  EXPECT_DOUBLE_EQ(o.stop_margin_s, 12);
  EXPECT_EQ(o.log_every, 7);
  EXPECT_FALSE(o.eval_every_epoch);
  EXPECT_DOUBLE_EQ(o.bucket_size_mb, 0.5);
}

TEST(TrainerOptions, RefusedCombinationsNameTheKeyAndTheFix) {
  struct Row {
    std::string name;
    int world;
    std::vector<std::string> overrides;
    std::string key;  // whose origin starts the message
    std::string rest;
  };
  const std::vector<Row> rows = {
      {"fp16 on CPU",
       1,
       {"train.precision=fp16"},
       "train.precision",
       ": train.precision: fp16 with dynamic loss scaling needs CUDA, and this trainer runs on "
       "CPU; use bf16 or fp32"},
      {"global batch below the world",
       4,
       {"train.batch_size=3", "train.keep_effective_batch_size=true"},
       "train.batch_size",
       ": train.batch_size=3 is the global batch (train.keep_effective_batch_size: true) but the "
       "world has 4 ranks: each rank needs at least one sample; raise it to 4 or more"},
      {"a fault on a rank outside the world",
       2,
       {"train.fault_inject=0:data:1,2:forward:0.5@3"},
       "train.fault_inject",
       ": train.fault_inject='0:data:1,2:forward:0.5@3': rank 2 is not in the world of 2 ranks "
       "(0..1); the format is RANK:PHASE:SECONDS[@STEP], several separated by ',' (e.g. "
       "1:forward:0.02 or 0:backward:600@5)"},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    const common::Config config = MakeConfig(row.overrides);
    try {
      (void)TrainOptions::FromConfig(config, row.world);
      ADD_FAILURE() << "no error";
    } catch (const common::ConfigError& e) {
      EXPECT_EQ(std::string(e.what()), config.Origin(row.key) + row.rest);
      EXPECT_EQ(e.code(), common::kExitConfig);
    }
  }
  // A per-rank batch below the world is fine.
  EXPECT_EQ(TrainOptions::FromConfig(MakeConfig({"train.batch_size=3"}), 4).batch_per_rank, 3);
}

TEST(TrainerResumePoint, FromACheckpointAndThisRunsShape) {
  struct Row {
    std::string name;
    CheckpointPosition checkpoint;  // step, epoch, step_in_epoch, samples_in_epoch, world
    RunShape run;                   // world, batch per rank, accumulation, steps per epoch
    int64_t step, epoch, step_in_epoch;
    std::string note;
  };
  const std::vector<Row> rows = {
      {"same world, mid-epoch", {11, 0, 11, 352, 2}, {2, 16, 1, 16}, 11, 0, 11, ""},
      {"same world, second epoch", {20, 1, 4, 128, 2}, {2, 16, 1, 16}, 20, 1, 4, ""},
      {"same world, stopped at an epoch's last step",
       {16, 0, 16, 512, 2},
       {2, 16, 1, 16},
       16,
       1,
       0,
       ""},
      {"shrink 2 -> 1, same global batch",
       {7, 0, 7, 224, 2},
       {1, 32, 1, 16},
       7,
       0,
       7,
       " (written by 2 ranks; 224 samples of epoch 1 done = step 7 of it with 1 ranks)"},
      {"grow 1 -> 2 in the second epoch",
       {20, 1, 4, 128, 1},
       {2, 16, 1, 16},
       20,
       1,
       4,
       " (written by 1 ranks; 128 samples of epoch 2 done = step 4 of it with 2 ranks)"},
      {"grow with a bigger global step: the step counter follows this world",
       {10, 0, 10, 160, 1},
       {4, 16, 1, 8},
       2,
       0,
       2,
       " (written by 1 ranks; 160 samples of epoch 1 done = step 2 of it with 4 ranks, rounded "
       "down: not bit-exact)"},
      {"accumulation counts in the global step",
       {6, 0, 6, 384, 1},
       {2, 8, 2, 16},
       12,
       0,
       12,
       " (written by 1 ranks; 384 samples of epoch 1 done = step 12 of it with 2 ranks)"},
      {"rounded down",
       {5, 0, 5, 80, 1},
       {2, 16, 1, 16},
       2,
       0,
       2,
       " (written by 1 ranks; 80 samples of epoch 1 done = step 2 of it with 2 ranks, rounded "
       "down: not bit-exact)"},
      {"other world, the epoch's samples all done: next epoch",
       {32, 0, 32, 512, 1},
       {2, 16, 1, 16},
       16,
       1,
       0,
       " (written by 1 ranks; 512 samples of epoch 1 done = step 16 of it with 2 ranks)"},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    const ResumePoint p = ComputeResumePoint(row.checkpoint, row.run);
    EXPECT_EQ(p.step, row.step);
    EXPECT_EQ(p.epoch, row.epoch);
    EXPECT_EQ(p.step_in_epoch, row.step_in_epoch);
    EXPECT_EQ(p.note, row.note);
  }
}

TEST(TrainerResumePoint, DescribeNamesTheCheckpointAndCountsEpochsFromOne) {
  const ResumePoint same = ComputeResumePoint({11, 0, 11, 352, 2}, {2, 16, 1, 16});
  EXPECT_EQ(same.Describe("/ck/step-000011"),
            "resumed from /ck/step-000011 at step 11, epoch 1 step 11");
  const ResumePoint other = ComputeResumePoint({5, 0, 5, 80, 1}, {2, 16, 1, 16});
  EXPECT_EQ(other.Describe("c/step-000005"),
            "resumed from c/step-000005 at step 2, epoch 1 step 2 (written by 1 ranks; 80 "
            "samples of epoch 1 done = step 2 of it with 2 ranks, rounded down: not bit-exact)");
}

// Sums ranks' packed agreements the way the all-reduce does.
StepAgreement SumOver(const std::vector<StepAgreement>& ranks) {
  StepAgreement::Packed sum{};
  for (const StepAgreement& r : ranks) {
    const StepAgreement::Packed p = r.Pack();
    for (size_t i = 0; i < sum.size(); ++i) sum[i] += p[i];
  }
  return StepAgreement::Unpack(sum);
}

struct AgreementRow {
  std::string name;
  std::vector<StepAgreement> ranks;
  double loss_sum;
  int non_finite;
  bool stop, preempt, out_of_time;
  std::string reason;
};

std::vector<AgreementRow> AgreementRows() {
  using A = StepAgreement;
  const A calm = A::Local(1, false, false, false);
  const A nan = A::Local(std::numeric_limits<double>::quiet_NaN(), false, false, false);
  const A inf = A::Local(-std::numeric_limits<double>::infinity(), false, false, false);
  const A stop = A::Local(1, true, false, false);
  const A preempt = A::Local(1, false, true, false);
  const A late = A::Local(1, false, false, true);
  const A both = A::Local(1, true, false, true);
  const A calm_a = A::Local(1.5, false, false, false);
  const A calm_b = A::Local(2.5, false, false, false);
  return {
      // name, ranks, then the sum: loss, non-finite ranks, stop, preempt, late, reason
      {"all well", {calm_a, calm_b}, 4, 0, false, false, false, ""},
      {"one NaN: its loss left out", {nan, calm}, 1, 1, false, false, false, ""},
      {"NaN and Inf", {nan, inf}, 0, 2, false, false, false, ""},
      {"a stop on one rank stops all", {stop, calm}, 2, 0, true, false, false, "signal"},
      {"the same stop on both ranks", {stop, stop}, 2, 0, true, false, false, "signal"},
      {"preempt outranks the rest", {both, preempt}, 2, 0, true, true, true, "preempt"},
      {"walltime alone", {calm, late}, 2, 0, false, false, true, "walltime"},
  };
}

TEST(TrainerStepAgreement, RanksAgreeOnLossAndStops) {
  for (const AgreementRow& row : AgreementRows()) {
    SCOPED_TRACE(row.name);
    const StepAgreement a = SumOver(row.ranks);
    EXPECT_EQ(a.loss_sum, row.loss_sum);
    EXPECT_EQ(a.non_finite_ranks, row.non_finite);
    EXPECT_EQ(a.stop, row.stop);
    EXPECT_EQ(a.preempt, row.preempt);
    EXPECT_EQ(a.out_of_time, row.out_of_time);
    EXPECT_EQ(a.AnyStop(), !row.reason.empty());
    EXPECT_EQ(a.StopReason(), row.reason);
  }
}

TEST(TrainerStepAgreement, DivergenceMessageSaysWhatWhereAndTheFix) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  struct Row {
    double local;
    int non_finite;
    std::string what;
  };
  for (const Row& row : std::vector<Row>{
           {nan, 1, "NaN"}, {inf, 2, "infinite"}, {0.5, 1, "non-finite on another rank"}}) {
    SCOPED_TRACE(row.what);
    StepAgreement agreed;
    agreed.non_finite_ranks = row.non_finite;
    EXPECT_EQ(DivergenceMessage(row.local, agreed, 12, 2, 0.1, 4),
              "the loss became " + row.what + " at step 12 (epoch 2, lr 0.100000) on " +
                  std::to_string(row.non_finite) +
                  " of 4 ranks; lower train.lr, set train.grad_clip_norm, or check the data");
  }
}

TEST(TrainerWalltime, StopsWhenAStepAndACheckpointNoLongerFit) {
  struct Row {
    std::string name;
    double job_end, now, step_ema, checkpoint, margin;
    bool out_of_time;
  };
  const std::vector<Row> rows = {
      {"no end time", 0, 1000, 5, 5, 30, false},
      {"an hour left", 4600, 1000, 1, 2, 30, false},
      {"20 s left, 30 s margin", 1020, 1000, 0.1, 0, 30, true},
      // needed: 2 + max(3, 4) + 10 = 16
      {"just enough", 1016, 1000, 2, 3, 10, false},
      {"just short", 1015.9, 1000, 2, 3, 10, true},
      // a slow checkpoint counts: 1 + max(20, 2) + 0 = 21
      {"checkpoint slower than two steps", 1020, 1000, 1, 20, 0, true},
      {"past the end", 999, 1000, 0, 0, 0, true},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    EXPECT_EQ(OutOfTime(row.job_end, row.now, row.step_ema, row.checkpoint, row.margin),
              row.out_of_time);
  }
}

TEST(TrainerWalltime, StepTimeAverageStartsAtTheFirstStep) {
  EXPECT_DOUBLE_EQ(StepTimeEma(0, 2.0), 2.0);
  EXPECT_DOUBLE_EQ(StepTimeEma(2.0, 4.0), 2.2);
  EXPECT_DOUBLE_EQ(StepTimeEma(StepTimeEma(0, 1.0), 1.0), 1.0);
}

}  // namespace
}  // namespace trainer

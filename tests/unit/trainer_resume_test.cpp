// Checkpoints, agreed stops and exact resume through Train (ranks as threads): a stopped and
// resumed run ends bit-identical, other world sizes stay within tolerance, old checkpoints are
// pruned, damaged or mismatched ones refused, and the walltime stop comes before the job's end.

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "common/errors.h"
#include "common/exit_codes.h"
#include "tests/unit/temp_dir.h"
#include "tests/unit/trainer_test_util.h"

namespace trainer {
namespace {

using namespace test_util;
using testing_support::TempDir;
namespace fs = std::filesystem;

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
       "step-000004' is not a checkpoint (no state.yaml)"},
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
    // Damage is refused when that checkpoint is asked for by name; a different model or config
    // is refused even under auto.
    const bool damage = row.overrides.empty();
    const std::string resume =
        "train.resume=" + (damage ? copy.path() + "/step-000004" : std::string("auto"));
    try {
      (void)RunRanks(1, With(With(kResumeJob, {"train.max_steps=6", resume}), row.overrides), true,
                     WithCheckpoints(copy.path()));
      ADD_FAILURE() << "no error";
    } catch (const common::Error& e) {
      EXPECT_NE(std::string(e.what()).find(row.fragment), std::string::npos) << e.what();
    }
    // Under auto a damaged newest checkpoint is skipped for the older one that verifies.
    if (damage) {
      const TrainResult r =
          RunRanks(1, With(kResumeJob, {"train.max_steps=6"}), true, WithCheckpoints(copy.path()));
      EXPECT_EQ(r.resumed_from_step, 2);
    }
    // The earlier checkpoint is still there and loads.
    EXPECT_NO_THROW((void)RunRanks(
        1, With(kResumeJob, {"train.max_steps=6", "train.resume=" + copy.path() + "/step-000002"}),
        true, WithCheckpoints(copy.path())));
  }
}

TEST(TrainerResume, AutoWithEveryCheckpointDamagedIsRefusedNamingEach) {
  TempDir dir;
  (void)RunRanks(1, With(kResumeJob, {"train.max_steps=4", "train.checkpoint_every=2"}), true,
                 WithCheckpoints(dir.path()));
  for (const char* step : {"step-000002", "step-000004"})
    fs::resize_file(dir.path() + "/" + step + "/model.pt", 10);
  try {
    (void)RunRanks(1, With(kResumeJob, {"train.max_steps=6"}), true, WithCheckpoints(dir.path()));
    ADD_FAILURE() << "no error";
  } catch (const common::Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(e.code(), common::kExitConfig);
    EXPECT_NE(what.find("train.resume auto: no checkpoint in " + dir.path() + " verifies"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("skipped checkpoint " + dir.path() + "/step-000004: checkpoint file"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("skipped checkpoint " + dir.path() + "/step-000002"), std::string::npos)
        << what;
  }
}

TEST(TrainerResume, TheLatestFileItselfIsAcceptedAsTrainResume) {
  TempDir dir;
  (void)RunRanks(1, With(kResumeJob, {"train.max_steps=4", "train.checkpoint_every=2"}), true,
                 WithCheckpoints(dir.path()));
  TempDir other;
  const TrainResult r =
      RunRanks(1, With(kResumeJob, {"train.max_steps=6", "train.resume=" + dir.path() + "/latest"}),
               true, WithCheckpoints(other.path()));
  EXPECT_EQ(r.resumed_from_step, 4);
}

TEST(TrainerResume, RerunningAFinishedJobSaysNothingWasLeftToTrain) {
  TempDir dir;
  (void)RunRanks(1, With(kResumeJob, {"train.max_steps=4"}), true, WithCheckpoints(dir.path()));
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  const TrainResult r =
      RunRanks(1, With(kResumeJob, {"train.max_steps=4"}), true, WithCheckpoints(dir.path()));
  const std::string out =
      ::testing::internal::GetCapturedStdout() + ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(r.resumed_from_step, 4);
  EXPECT_NE(out.find("done: nothing left to train: all 4 steps were done before this run"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find("last loss 0.0000"), std::string::npos) << out;
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

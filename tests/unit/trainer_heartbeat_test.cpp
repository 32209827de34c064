// What the trainer publishes in its heartbeat record (common/heartbeat.h) for the runner's
// watchdog: every rank numbers the same collectives in the same order, and the record ends on
// the last one with the steps done. Ranks as threads over an in-memory store, real
// ProcessGroupGloo.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/heartbeat.h"
#include "tests/unit/temp_dir.h"
#include "tests/unit/trainer_test_util.h"

namespace trainer {
namespace {

using namespace test_util;
using testing_support::TempDir;

struct NumberingCase {
  std::string name;
  int world;
  std::vector<std::string> overrides;
  bool checkpoints;
  int64_t steps;
  // Collectives: 1 broadcast + per step (buckets + 1 agree) + 1 timing exchange per log interval
  // (here one: the job ends before train.log_every) + 1 per evaluation + 1 per checkpoint.
  int64_t collectives;
};

void PrintTo(const NumberingCase& c, std::ostream* out) { *out << c.name; }

class HeartbeatNumbering : public testing::TestWithParam<NumberingCase> {};

TEST_P(HeartbeatNumbering, EveryRankNumbersTheSameCollectives) {
  const NumberingCase& c = GetParam();
  TempDir dir;
  std::vector<std::string> files;
  for (int r = 0; r < c.world; ++r) {
    files.push_back(dir.path() + "/rank-" + std::to_string(r));
    common::CreateHeartbeat(files.back());
  }
  TrainContext context;
  if (c.checkpoints) context.checkpoint_dir = dir.path() + "/checkpoints";
  const std::vector<TrainResult> results =
      RunRanksAll(c.world, With(kSmallJob, c.overrides), true, context, files);
  for (int r = 0; r < c.world; ++r) {
    SCOPED_TRACE("rank " + std::to_string(r));
    const std::optional<common::Heartbeat> h = common::ReadHeartbeat(files[r]);
    ASSERT_TRUE(h.has_value());
    EXPECT_EQ(results[r].steps, c.steps);
    EXPECT_EQ(h->step, c.steps);
    EXPECT_EQ(h->collective, c.collectives);
    EXPECT_FALSE(h->in_collective);
    EXPECT_GT(h->beats, static_cast<uint64_t>(c.steps * 4));  // data, forward, backward, ...
  }
}

INSTANTIATE_TEST_SUITE_P(
    Jobs, HeartbeatNumbering,
    testing::Values(
        // One bucket (25 MiB): 1 + 6 x (1 + 1) + 1.
        NumberingCase{"OneBucket", 2, {"train.batch_size=16"}, false, 6, 14},
        // 0.01 MiB buckets split the [32, 784] weight from the rest: 1 + 6 x (2 + 1) + 1.
        NumberingCase{
            "TwoBuckets", 2, {"train.batch_size=16", "train.bucket_size_mb=0.01"}, false, 6, 20},
        // A log interval every 2 steps: 1 + 6 x (1 + 1) + 3.
        NumberingCase{
            "LogEveryTwoSteps", 2, {"train.batch_size=16", "train.log_every=2"}, false, 6, 16},
        // Accumulation communicates once per step; evaluation and the final checkpoint add one
        // each: 1 + 6 x 2 + 1 + 1 + 1.
        NumberingCase{
            "AccumulationEvaluationCheckpoint",
            3,
            {"train.batch_size=8", "train.grad_accum_steps=2", "train.eval_every_epoch=true",
             "train.max_steps=0", "train.synthetic_samples=288"},
            true,
            6,
            16},
        // A world of one: no gradient all-reduce, the agreement still counts: 1 + 6 + 1 + 1.
        NumberingCase{"WorldOfOne", 1, {"train.batch_size=16"}, true, 6, 9}),
    [](const testing::TestParamInfo<NumberingCase>& param) { return param.param.name; });

}  // namespace
}  // namespace trainer

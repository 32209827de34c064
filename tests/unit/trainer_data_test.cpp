// The trainer's data-side parts: idx files, the Debian Fashion-MNIST copy, TorchScript models,
// the distributed sampler and the learning-rate schedule.

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "common/errors.h"
#include "tests/unit/temp_dir.h"
#include "tests/unit/trainer_test_util.h"
#include "trainer/data.h"
#include "trainer/models.h"
#include "trainer/sampler.h"
#include "trainer/schedule.h"

namespace trainer {
namespace {

using namespace test_util;
using testing_support::TempDir;

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

}  // namespace
}  // namespace trainer

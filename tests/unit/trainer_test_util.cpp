#include "tests/unit/trainer_test_util.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <chrono>
#include <exception>
#include <thread>

#include "trainer/comm.h"

namespace trainer::test_util {

using namespace std::chrono_literals;

common::Config MakeConfig(std::vector<std::string> overrides) {
  common::MapEnvironment env;
  return common::LoadConfig({std::nullopt, &env, std::move(overrides)});
}

std::vector<TrainResult> RunRanksAll(int world, const std::vector<std::string>& overrides,
                                     bool overlap, const TrainContext& base,
                                     const std::vector<std::string>& heartbeat_files) {
  at::set_num_threads(1);
  auto store = MakeInProcessStore();
  std::vector<TrainResult> results(static_cast<size_t>(world));
  std::vector<std::exception_ptr> errors(static_cast<size_t>(world));
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      try {
        const common::Config config = MakeConfig(overrides);
        auto comm =
            MakeInProcessCommunicator(store, r, world, 60s, config.GetString("train.allreduce"));
        TrainContext context = base;
        context.overlap = overlap;
        const size_t rank = static_cast<size_t>(r);
        common::HeartbeatWriter heartbeat = rank < heartbeat_files.size()
                                                ? common::HeartbeatWriter(heartbeat_files[rank])
                                                : common::HeartbeatWriter();
        results[rank] = Train(config, *comm, context, heartbeat);
      } catch (...) {
        errors[static_cast<size_t>(r)] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  return results;
}

TrainResult RunRanks(int world, const std::vector<std::string>& overrides, bool overlap,
                     const TrainContext& base) {
  std::vector<TrainResult> results = RunRanksAll(world, overrides, overlap, base);
  for (size_t r = 1; r < results.size(); ++r) {
    SCOPED_TRACE("rank " + std::to_string(r) + " against rank 0");
    ExpectBitIdentical(results[r], results[0]);
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

void ExpectBitIdentical(const TrainResult& a, const TrainResult& b) {
  ASSERT_EQ(a.parameters.size(), b.parameters.size());
  EXPECT_EQ(a.parameter_digest, b.parameter_digest);
  for (size_t k = 0; k < a.parameters.size(); ++k)
    EXPECT_TRUE(at::equal(a.parameters[k], b.parameters[k])) << "parameter " << k << " differs";
}

std::vector<std::string> With(std::vector<std::string> base, const std::vector<std::string>& more) {
  base.insert(base.end(), more.begin(), more.end());
  return base;
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

TrainContext WithCheckpoints(const std::string& dir, int64_t stop_at) {
  TrainContext c;
  c.checkpoint_dir = dir;
  c.stop_at_step = stop_at;
  return c;
}

}  // namespace trainer::test_util

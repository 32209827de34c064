#pragma once
// Shared by the trainer's test files: configs from overrides, Train run on N ranks as threads
// over an in-memory store with real ProcessGroupGloo (no subprocesses), and the small jobs the
// tests train.

#include <string>
#include <vector>

#include "common/config.h"
#include "trainer/train_loop.h"

namespace trainer::test_util {

[[nodiscard]] common::Config MakeConfig(std::vector<std::string> overrides);

// Runs Train on `world` ranks as threads; returns every rank's result (or rethrows the first
// error). Rank r publishes heartbeats to heartbeat_files[r] when given (files made with
// common::CreateHeartbeat), else nowhere.
[[nodiscard]] std::vector<TrainResult> RunRanksAll(
    int world, const std::vector<std::string>& overrides, bool overlap = true,
    const TrainContext& base = TrainContext(),
    const std::vector<std::string>& heartbeat_files = {});

// RunRanksAll, also expecting every rank to end with rank 0's parameters; returns rank 0's result.
[[nodiscard]] TrainResult RunRanks(int world, const std::vector<std::string>& overrides,
                                   bool overlap = true, const TrainContext& base = TrainContext());

// Expects every parameter of `a` within `atol` of `b`'s.
void ExpectClose(const TrainResult& a, const TrainResult& b, double atol);

// Expects the two results' parameters to be bit-identical.
void ExpectBitIdentical(const TrainResult& a, const TrainResult& b);

[[nodiscard]] std::vector<std::string> With(std::vector<std::string> base,
                                            const std::vector<std::string>& more);

// A 6-step MLP job on synthetic data (no batch size: each test sets it).
extern const std::vector<std::string> kSmallJob;
// 2 epochs of a 512-sample synthetic set, batch 16, augmentation, cosine schedule.
extern const std::vector<std::string> kResumeJob;

// Checkpoints in `dir`; stop_at >= 0 stops (as on a signal) after that step.
[[nodiscard]] TrainContext WithCheckpoints(const std::string& dir, int64_t stop_at = -1);

}  // namespace trainer::test_util

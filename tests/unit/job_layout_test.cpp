// The job directory's names (common/job_layout.h), as README.md documents them and operators
// tail them; a changed name breaks their scripts, so every one is spelled out here.

#include "common/job_layout.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace common::job_layout {
namespace {

TEST(JobLayoutTest, FixedNames) {
  const std::pair<std::string, std::string> rows[] = {
      {kJobConfig, "job.yaml"},     {kManifest, "manifest.json"},  {kEvents, "events.jsonl"},
      {kOutcome, "outcome.json"},   {kCheckpoints, "checkpoints"}, {kCurrent, "current"},
      {kTrainLog, "train.log"},     {kMetrics, "metrics.jsonl"},   {kLossCurve, "loss.svg"},
      {kAttemptPrefix, "attempt-"},
  };
  for (const auto& [got, want] : rows) EXPECT_EQ(got, want);
}

TEST(JobLayoutTest, BuiltNames) {
  const std::pair<std::string, std::string> rows[] = {
      {JobDirName("train", "42"), "train-42"},
      {AttemptDirName(0), "attempt-0"},
      {AttemptDirName(12), "attempt-12"},
      {RankLogName(0), "rank-0.log"},
      {RankLogName(17), "rank-17.log"},
      {RunnerLogName("n1"), "runner-n1.log"},
      {RunnerLogName("n1", 0), "runner-n1-0.log"},
      {RunnerLogName("n1", 3), "runner-n1-3.log"},
  };
  for (const auto& [got, want] : rows) EXPECT_EQ(got, want);
}

TEST(JobLayoutTest, AttemptNumbersAreReadStrictly) {
  const std::pair<std::string, std::optional<int>> rows[] = {
      {"attempt-0", 0},
      {"attempt-7", 7},
      {"attempt-007", 7},
      {"attempt-2147483647", 2147483647},
      {"attempt-2147483648", std::nullopt},
      {"attempt-", std::nullopt},
      {"attempt--1", std::nullopt},
      {"attempt-+1", std::nullopt},
      {"attempt- 1", std::nullopt},
      {"attempt-1.tmp", std::nullopt},
      {"attempt-x", std::nullopt},
      {"attempt1", std::nullopt},
      {"current", std::nullopt},
      {"checkpoints", std::nullopt},
      {"", std::nullopt},
  };
  for (const auto& [name, want] : rows) {
    SCOPED_TRACE("'" + name + "'");
    EXPECT_EQ(ParseAttemptDirName(name), want);
  }
}

}  // namespace
}  // namespace common::job_layout

// The strict integer parser (common/parse_int.h) and SLURM_JOB_END_TIME (common/job_end_time.h).

#include "common/parse_int.h"

#include <gtest/gtest.h>

#include <climits>
#include <optional>
#include <string>

#include "common/job_end_time.h"

namespace common {
namespace {

std::string Show(std::optional<int64_t> v) { return v ? std::to_string(*v) : "nullopt"; }

TEST(ParseIntTest, Table) {
  struct Row {
    std::string text;
    PlusSign plus;
    std::optional<int64_t> want;
  };
  const auto kR = PlusSign::kReject;
  const auto kA = PlusSign::kAccept;
  const Row rows[] = {
      {"0", kR, 0},
      {"42", kR, 42},
      {"-7", kR, -7},
      {"-0", kR, 0},
      {"007", kR, 7},
      {"9223372036854775807", kR, INT64_MAX},
      {"-9223372036854775808", kR, INT64_MIN},
      {"9223372036854775808", kR, std::nullopt},   // overflow
      {"-9223372036854775809", kR, std::nullopt},  // underflow
      {"99999999999999999999999", kR, std::nullopt},
      {"", kR, std::nullopt},
      {"", kA, std::nullopt},
      {"-", kR, std::nullopt},
      {"+", kA, std::nullopt},
      {"+5", kR, std::nullopt},  // environment variables: no '+'
      {"+5", kA, 5},             // config values: '+' allowed
      {"+-5", kA, std::nullopt},
      {"++5", kA, std::nullopt},
      {"--5", kR, std::nullopt},
      {" 5", kR, std::nullopt},
      {"5 ", kR, std::nullopt},
      {" 5", kA, std::nullopt},
      {"\t5", kR, std::nullopt},
      {"5\n", kR, std::nullopt},
      {"0x10", kR, std::nullopt},
      {"0x10", kA, std::nullopt},
      {"1e3", kR, std::nullopt},
      {"1.0", kR, std::nullopt},
      {"12abc", kR, std::nullopt},
      {"abc", kR, std::nullopt},
      {"1_000", kR, std::nullopt},
      {"٣", kR, std::nullopt},  // a non-ASCII digit
  };
  for (const Row& row : rows) {
    SCOPED_TRACE("text '" + row.text + "'" + (row.plus == kA ? " (plus accepted)" : ""));
    EXPECT_EQ(Show(ParseInt64(row.text, row.plus)), Show(row.want));
  }
}

TEST(ParseIntTest, DefaultRejectsPlus) { EXPECT_FALSE(ParseInt64("+1").has_value()); }

TEST(JobEndTimeTest, Table) {
  struct Row {
    std::string text;
    std::optional<int64_t> want;
  };
  const Row rows[] = {
      {"1700000000", 1700000000},
      {"0", 0},
      {"9223372036854775807", INT64_MAX},
      {"-1", std::nullopt},
      {"", std::nullopt},
      {"tomorrow", std::nullopt},
      {"1700000000.5", std::nullopt},
      {"1.7e9", std::nullopt},
      {" 1700000000", std::nullopt},
      {"1700000000 ", std::nullopt},
      {"+1700000000", std::nullopt},
      {"0x6553f100", std::nullopt},
      {"99999999999999999999", std::nullopt},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE("SLURM_JOB_END_TIME='" + row.text + "'");
    EXPECT_EQ(Show(ParseJobEndTime(row.text)), Show(row.want));
  }
  EXPECT_STREQ(kSlurmJobEndTimeVar, "SLURM_JOB_END_TIME");
}

}  // namespace
}  // namespace common

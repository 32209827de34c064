// The operator commands' small parts: rank lists, timestamps, durations, their command lines,
// and how `runner status|logs` sits next to `runner [options] [key=value] [-- cmd]`.

#include "runner/operator_cli.h"

#include <gtest/gtest.h>

#include <sstream>

#include "common/errors.h"
#include "runner/app.h"
#include "runner/job_files.h"
#include "runner/rank_list.h"
#include "tests/unit/test_helpers.h"

namespace runner {
namespace {

using Ints = std::vector<int>;

TEST(RankListTest, GoodLists) {
  const std::pair<const char*, Ints> rows[] = {
      {"0", {0}},   {"0,3-5", {0, 3, 4, 5}},      {"5,1,1,2-3", {1, 2, 3, 5}},
      {"7-7", {7}}, {"10-12,0", {0, 10, 11, 12}},
  };
  for (const auto& [text, ranks] : rows) EXPECT_EQ(ParseRankList(text, "--rank"), ranks) << text;
}

TEST(RankListTest, BadListsNameTheItem) {
  const std::pair<const char*, const char*> rows[] = {
      {"", "--rank '': no ranks given"},
      {"0,,3", "--rank '0,,3': item 2 '' is empty"},
      {"0,", "--rank '0,': item 2 '' is empty"},
      {"x", "--rank 'x': item 1 'x' is not a rank (a non-negative integer)"},
      {"-1", "--rank '-1': item 1 '-1' is not a range of ranks"},
      {"1, 2", "--rank '1, 2': item 2 ' 2' is not a rank"},
      {"5-3", "--rank '5-3': item 1 '5-3' runs backwards (write it 3-5)"},
      {"1-2-3", "--rank '1-2-3': item 1 '1-2-3' is not a range of ranks"},
      {"0-99999999", "item 1 '0-99999999' is larger than any job"},
      {"+1", "item 1 '+1' is not a rank"},
  };
  for (const auto& [text, message] : rows) {
    try {
      (void)ParseRankList(text, "--rank");
      ADD_FAILURE() << "accepted '" << text << "'";
    } catch (const common::UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("like 0,3-5"), std::string::npos) << e.what();
    }
  }
}

TEST(RankListTest, FormatIsTheShortestReadBack) {
  EXPECT_EQ(FormatRankList({}), "");
  EXPECT_EQ(FormatRankList({3}), "3");
  EXPECT_EQ(FormatRankList({0, 1, 2, 3, 5}), "0-3,5");
  EXPECT_EQ(FormatRankList({5, 0, 1, 1, 7, 6}), "0-1,5-7");
}

TEST(JobFilesTest, TimestampsInAnyZoneCompareInUnixTime) {
  const std::pair<const char*, int64_t> rows[] = {
      {"2026-12-02T10:00:00.123+00:00 text", 1796205600123},
      {"2026-12-02T11:00:00.123+01:00", 1796205600123},
      {"2026-12-02T05:30:00.123-04:30", 1796205600123},
      {"2026-12-02T10:00:00Z", 1796205600000},
      {"2026-12-02 10:00:00,5", 1796205600500},
      {"1970-01-01T00:00:00+00:00", 0},
      {"2024-02-29T00:00:00+0000", 1709164800000},
  };
  for (const auto& [text, ms] : rows) EXPECT_EQ(ParseTimestampMs(text), ms) << text;
  for (const char* bad : {"", "hello", "2026-12-02", "2026-13-02T10:00:00", "2026-12-02T25:00:00",
                          "2026-12-02T10:00:00+1"}) {
    EXPECT_EQ(ParseTimestampMs(bad), std::nullopt) << bad;
  }
}

TEST(JobFilesTest, Durations) {
  const std::pair<double, const char*> rows[] = {{-3, "0s"},      {0.4, "0s"},     {12, "12s"},
                                                 {245, "4m05s"},  {3600, "1h00m"}, {3725, "1h02m"},
                                                 {90000, "1d01h"}};
  for (const auto& [seconds, text] : rows) EXPECT_EQ(FormatDuration(seconds), text) << seconds;
}

TEST(OperatorCliTest, StatusArguments) {
  StatusOptions o = ParseStatusArgs({"logs/j", "--json"});
  EXPECT_EQ(o.job, "logs/j");
  EXPECT_TRUE(o.json);
  EXPECT_EQ(o.watch_s, std::nullopt);
  EXPECT_EQ(ParseStatusArgs({"--watch", "logs/j"}).watch_s, 2.0);
  EXPECT_EQ(ParseStatusArgs({"--watch", "5", "logs/j"}).watch_s, 5.0);
  EXPECT_EQ(ParseStatusArgs({"logs/j", "--watch=0.5"}).watch_s, 0.5);
  EXPECT_EQ(ParseStatusArgs({"logs/j", "--watch"}).watch_s, 2.0);
  EXPECT_TRUE(ParseStatusArgs({"--help"}).help);
}

TEST(OperatorCliTest, LogsArguments) {
  LogsOptions o = ParseLogsArgs(
      {"logs/j", "--rank", "0,3-5", "--attempt", "1", "-f", "--grep", "loss", "--runner"});
  EXPECT_EQ(o.job, "logs/j");
  EXPECT_EQ(o.ranks, (Ints{0, 3, 4, 5}));
  EXPECT_EQ(o.attempt, 1);
  EXPECT_TRUE(o.follow);
  EXPECT_TRUE(o.runner_logs);
  EXPECT_EQ(o.grep, "loss");
  EXPECT_EQ(ParseLogsArgs({"logs/j"}).ranks, std::nullopt);
}

TEST(OperatorCliTest, BadArgumentsAreUsageErrors) {
  const std::pair<std::vector<std::string>, const char*> status_rows[] = {
      {{}, "runner status needs a job directory"},
      {{"a", "b"}, "runner status takes one job directory, got 2: 'a', 'b'"},
      {{"a", "--watch=0"}, "--watch '0': expected the seconds between redraws"},
      {{"a", "--watch=x"}, "--watch 'x'"},
      {{"a", "--jsn"}, "--json"},
  };
  for (const auto& [args, message] : status_rows) {
    try {
      (void)ParseStatusArgs(args);
      ADD_FAILURE() << "accepted " << testing_support::Join(args);
    } catch (const common::UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
  }
  const std::pair<std::vector<std::string>, const char*> logs_rows[] = {
      {{"a", "--rank", "1,x"}, "--rank '1,x': item 2 'x' is not a rank"},
      {{"a", "--attempt", "-1"}, "--attempt '-1': expected an attempt number"},
      {{"a", "--attempt", "one"}, "--attempt 'one'"},
      {{"a", "--follw"}, "--follow"},
  };
  for (const auto& [args, message] : logs_rows) {
    try {
      (void)ParseLogsArgs(args);
      ADD_FAILURE() << "accepted " << testing_support::Join(args);
    } catch (const common::UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
  }
}

struct AppRun {
  int code;
  std::string out, err;
};

AppRun RunApp(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  common::MapEnvironment env;
  const int code = RunRunner(args, env, testing_support::Host("n1"), out, err);
  return {code, out.str(), err.str()};
}

TEST(OperatorCliTest, SubcommandsSitNextToTheAgentsCommandLine) {
  EXPECT_TRUE(IsOperatorCommand({"status", "x"}));
  EXPECT_TRUE(IsOperatorCommand({"logs"}));
  EXPECT_FALSE(IsOperatorCommand({"--", "status"}));
  EXPECT_FALSE(IsOperatorCommand({"--dry-run", "status"}));
  EXPECT_FALSE(IsOperatorCommand({"train.lr=0.1", "status"}));
  EXPECT_FALSE(IsOperatorCommand({}));
  // The agent's own command line is as before.
  EXPECT_EQ(RunApp({"--dry-run", "train.lr=0.1"}).code, 0);
  AppRun r = RunApp({"--dry-run", "--", "status"});
  EXPECT_EQ(r.code, 0) << r.err;
  r = RunApp({"--dry-run", "status"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("argument 'status' is neither an option nor"), std::string::npos) << r.err;
  // The subcommands, their help, and --help listing them.
  r = RunApp({"--help"});
  EXPECT_NE(r.out.find("  runner status JOBDIR [--json] [--watch [SECONDS]]\n"), std::string::npos);
  EXPECT_NE(r.out.find("  runner logs JOBDIR [--rank LIST]"), std::string::npos);
  r = RunApp({"status", "--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out.rfind("Usage: runner status JOBDIR", 0), 0u) << r.out;
  r = RunApp({"logs", "-h"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out.rfind("Usage: runner logs JOBDIR", 0), 0u) << r.out;
  r = RunApp({"status"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err,
            "runner: usage error: runner status needs a job directory, like 'runner "
            "status logs/train-123456' (see 'runner status --help')\n");
}

}  // namespace
}  // namespace runner

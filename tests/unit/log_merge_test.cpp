// `runner logs` on written rank logs: merged by time across hosts and time zones, prefixed
// host:rank, a rank list, the agents' logs, --grep, lines without a timestamp and unterminated
// last lines, the errors an operator can make, and --follow on an attempt that has ended.

#include "runner/log_merge.h"

#include <gtest/gtest.h>

#include <sstream>

#include "common/errors.h"
#include "runner/operator_cli.h"
#include "tests/unit/job_fixture.h"

namespace runner {
namespace {

using testing_support::JobFixture;

struct Output {
  int code;
  std::string text;
};

Output Logs(const std::vector<std::string>& args) {
  std::ostringstream out;
  const int code = RunOperatorCommand(args, out);
  return {code, out.str()};
}

std::string Banner(int rank, const std::string& host, const std::string& time) {
  return time + " [runner] rank " + std::to_string(rank) + "/4 local_rank " +
         std::to_string(rank % 2) + " node " + std::to_string(rank / 2) + " host " + host +
         " pid 44" + std::to_string(rank) + " device cpu attempt 0 runner 0.1.0: sh\n";
}

// n1 writes UTC, n2 writes +01:00: ordering is by the instant, not the text.
void Write(const JobFixture& job) {
  job.BeginAttempt(0);
  job.Write("attempt-0/rank-0.log", Banner(0, "n1", "2026-12-02T10:00:00.000+00:00") +
                                        "2026-12-02T10:00:01.000+00:00 r0 first\n"
                                        "2026-12-02T10:00:03.000+00:00 r0 second\n"
                                        "    a traceback line without a time of its own\n");
  job.Write("attempt-0/rank-1.log", Banner(1, "n1", "2026-12-02T10:00:00.100+00:00") +
                                        "2026-12-02T10:00:02.000+00:00 r1 loss 0.5\n");
  job.Write("attempt-0/rank-2.log", Banner(2, "n2", "2026-12-02T11:00:00.200+01:00") +
                                        "2026-12-02T11:00:02.500+01:00 r2 loss 0.6\n"
                                        "2026-12-02T11:00:04.000+01:00 r2 no newline at the end");
  job.Write("attempt-0/rank-3.log", "2026-12-02T10:00:00.300+00:00 r3 before its banner\n");
  job.Write("attempt-0/runner-n1.log", "2026-12-02T10:00:01.500+00:00 info  [runner n1] hi\n");
}

TEST(LogMergeTest, EveryRankMergedByTime) {
  JobFixture job;
  Write(job);
  const Output o = Logs({"logs", job.dir()});
  EXPECT_EQ(o.code, 0);
  EXPECT_EQ(o.text, "n1:0 " + Banner(0, "n1", "2026-12-02T10:00:00.000+00:00") + "n1:1 " +
                        Banner(1, "n1", "2026-12-02T10:00:00.100+00:00") + "n2:2 " +
                        Banner(2, "n2", "2026-12-02T11:00:00.200+01:00") +
                        "n2:3 2026-12-02T10:00:00.300+00:00 r3 before its banner\n"
                        "n1:0 2026-12-02T10:00:01.000+00:00 r0 first\n"
                        "n1:1 2026-12-02T10:00:02.000+00:00 r1 loss 0.5\n"
                        "n2:2 2026-12-02T11:00:02.500+01:00 r2 loss 0.6\n"
                        "n1:0 2026-12-02T10:00:03.000+00:00 r0 second\n"
                        "n1:0     a traceback line without a time of its own\n"
                        "n2:2 2026-12-02T11:00:04.000+01:00 r2 no newline at the end\n");
}

TEST(LogMergeTest, ARankListTheAgentsLogsAndGrep) {
  JobFixture job;
  Write(job);
  EXPECT_EQ(Logs({"logs", job.dir(), "--rank", "1-2", "--grep", "loss"}).text,
            "n1:1 2026-12-02T10:00:02.000+00:00 r1 loss 0.5\n"
            "n2:2 2026-12-02T11:00:02.500+01:00 r2 loss 0.6\n");
  EXPECT_EQ(Logs({"logs", job.dir() + "/current", "--rank", "0", "--runner"}).text,
            "n1:0 " + Banner(0, "n1", "2026-12-02T10:00:00.000+00:00") +
                "n1:0 2026-12-02T10:00:01.000+00:00 r0 first\n"
                "n1:runner 2026-12-02T10:00:01.500+00:00 info  [runner n1] hi\n"
                "n1:0 2026-12-02T10:00:03.000+00:00 r0 second\n"
                "n1:0     a traceback line without a time of its own\n");
}

TEST(LogMergeTest, TheHostComesFromTheBannerElseTheManifest) {
  JobFixture job;
  Write(job);
  // Rank 3 has no banner: its host is the manifest's; rank 2's banner names its own host.
  job.Write("attempt-0/rank-2.log", Banner(2, "elsewhere", "2026-12-02T10:00:00.200+00:00"));
  EXPECT_EQ(Logs({"logs", job.dir(), "--rank", "2,3"}).text,
            "elsewhere:2 " + Banner(2, "elsewhere", "2026-12-02T10:00:00.200+00:00") +
                "n2:3 2026-12-02T10:00:00.300+00:00 r3 before its banner\n");
  EXPECT_EQ(BannerHost("2026-12-02T10:00:00.000+00:00 plain text host x pid 1"), "");
}

TEST(LogMergeTest, AttemptsByFlagOrPath) {
  JobFixture job;
  Write(job);
  job.BeginAttempt(1);
  job.Write("attempt-1/rank-0.log", "2026-12-02T10:05:00.000+00:00 attempt one\n");
  EXPECT_EQ(Logs({"logs", job.dir(), "--rank", "0"}).text,
            "n1:0 2026-12-02T10:05:00.000+00:00 attempt one\n");
  EXPECT_EQ(Logs({"logs", job.dir(), "--rank", "1", "--attempt", "0"}).text.substr(0, 5), "n1:1 ");
  EXPECT_EQ(Logs({"logs", job.dir() + "/attempt-0", "--rank", "1"}).text.substr(0, 5), "n1:1 ");
}

TEST(LogMergeTest, MistakesAreUsageErrorsThatSayWhatIsThere) {
  JobFixture job;
  Write(job);
  const std::pair<std::vector<std::string>, std::string> rows[] = {
      {{"logs", job.dir(), "--rank", "3-5"},
       "--rank: no log for ranks 4-5 in " + job.dir() +
           "/attempt-0 (rank logs there: 0-3); the job has ranks 0-3"},
      {{"logs", job.dir(), "--attempt", "4"},
       "--attempt 4: no attempt-4/ in " + job.dir() + " (attempts there: 0)"},
      {{"logs", job.dir() + "/missing"}, "does not exist"},
  };
  for (const auto& [args, message] : rows) {
    try {
      (void)Logs(args);
      ADD_FAILURE() << args[1];
    } catch (const common::UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
  }
}

TEST(LogMergeTest, FollowingAnEndedAttemptDrainsAndReturns) {
  JobFixture job;
  Write(job);
  job.Outcome(0, "succeeded", 0, "success");
  const Output o = Logs({"logs", job.dir(), "--follow", "--rank", "2"});
  EXPECT_EQ(o.code, 0);
  EXPECT_EQ(o.text, "n2:2 " + Banner(2, "n2", "2026-12-02T11:00:00.200+01:00") +
                        "n2:2 2026-12-02T11:00:02.500+01:00 r2 loss 0.6\n"
                        "n2:2 2026-12-02T11:00:04.000+01:00 r2 no newline at the end\n");
}

TEST(LogMergeTest, ASourceReadsOnlyWhatIsNew) {
  JobFixture job;
  job.Write("a.log", "2026-12-02T10:00:00.000+00:00 one\n2026-12-02T10:00:01.000+00:00 tw");
  std::vector<LogSource> sources;
  sources.emplace_back(job.dir() + "/a.log", "h:0", true);
  std::ostringstream out;
  MergeAvailable(sources, "", false, out);
  EXPECT_EQ(out.str(), "h:0 2026-12-02T10:00:00.000+00:00 one\n");
  job.Append("a.log", "o\n");
  MergeAvailable(sources, "", false, out);
  EXPECT_EQ(out.str(),
            "h:0 2026-12-02T10:00:00.000+00:00 one\n"
            "h:0 2026-12-02T10:00:01.000+00:00 two\n");
  EXPECT_EQ(MergeAvailable(sources, "", true, out), 0u);
}

}  // namespace
}  // namespace runner

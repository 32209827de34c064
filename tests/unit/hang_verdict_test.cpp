// The hang verdict from invented rank views, one row per situation; the headline is what an
// operator reads first, so it is asserted exactly.
#include "runner/hang_verdict.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>

#include "common/errors.h"
#include "runner/proc_probe.h"

namespace runner {
namespace {

RankView Rank(int rank, int64_t step, int64_t collective, bool inside, const std::string& phase,
              char state = 'S') {
  RankView v;
  v.rank = rank;
  v.host = rank < 2 ? "n1" : "n2";
  v.pid = 1000 + rank;
  v.published = true;
  v.step = step;
  v.collective = collective;
  v.in_collective = inside;
  v.phase = phase;
  v.proc_state = state;
  v.stalled_s = 312;
  return v;
}

RankView Silent(int rank, double cpu_window_s, char state = 'S') {
  RankView v;
  v.rank = rank;
  v.host = "n1";
  v.pid = 1000 + rank;
  v.proc_state = state;
  v.cpu_window_s = cpu_window_s;
  v.stalled_s = 60;
  return v;
}

struct Row {
  const char* name;
  std::vector<RankView> views;
  std::string headline;
  std::vector<int> laggards;
};

TEST(HangVerdict, NamesTheRanksBehindAndGroupsTheWaitingOnes) {
  RankView bucket = Rank(0, 1200, 4812, true, "all-reduce");
  bucket.bucket = 2;
  bucket.buckets = 3;
  RankView ended = Rank(1, 1200, 4811, false, "data");
  ended.ended = true;
  ended.status = "exited with code 0";
  const std::vector<Row> rows = {
      {"a stopped rank in phase data",
       {bucket,
        [&] {
          RankView v = bucket;
          v.rank = 1;
          return v;
        }(),
        [&] {
          RankView v = bucket;
          v.rank = 2;
          v.host = "n2";
          return v;
        }(),
        Rank(3, 1200, 4811, false, "data", 'T')},
       "HANG at step 1200: rank 3 (n2, pid 1003) stopped (T) in phase data at step 1200 for 312 s; "
       "ranks 0-2 waiting in all-reduce #4812 (bucket 2/3)",
       {3}},
      {"a rank stopped inside an all-reduce leaves its neighbours in it: only it is named",
       {Rank(0, 36, 37, true, "all-reduce"), Rank(1, 37, 38, true, "all-reduce"),
        Rank(2, 36, 37, true, "all-reduce"), Rank(3, 36, 37, true, "all-reduce", 'T')},
       "HANG at step 36: rank 3 (n2, pid 1003) stopped (T) in all-reduce #37 at step 36 for 312 "
       "s; ranks 0,2 waiting in all-reduce #37; rank 1 waiting in all-reduce #38",
       {3}},
      {"a rank behind in a collective of a lower number",
       {Rank(0, 7, 20, true, "all-reduce"), Rank(1, 7, 19, true, "all-reduce")},
       "HANG at step 7: rank 1 (n1, pid 1001) sleeping (S) in all-reduce #19 at step 7 for 312 s; "
       "rank 0 waiting in all-reduce #20",
       {1}},
      {"a rank that skipped a collective and waits in the next one",
       {Rank(0, 4, 5, true, "all-reduce"), Rank(1, 4, 5, true, "barrier"),
        Rank(2, 4, 5, true, "all-reduce")},
       "HANG at step 4: rank 1 (n1, pid 1001) sleeping (S) in barrier #5 at step 4 for 312 s; "
       "ranks 0,2 waiting in all-reduce #5",
       {1}},
      {"a rank that never entered the collective the others wait in",
       {Rank(0, 3, 9, true, "all-reduce"), Rank(1, 3, 9, false, "evaluation")},
       "HANG at step 3: rank 1 (n1, pid 1001) sleeping (S) in phase evaluation at step 3 for 312 "
       "s; "
       "rank 0 waiting in all-reduce #9",
       {1}},
      {"everyone in the very same collective",
       {Rank(0, 3, 9, true, "all-reduce"), Rank(1, 3, 9, true, "all-reduce")},
       "HANG at step 3: no rank is behind: every rank waits in the same collective (suspect the "
       "network or a device); ranks 0-1 waiting in all-reduce #9",
       {}},
      {"a rank that ended while the others wait",
       {Rank(0, 1200, 4812, true, "all-reduce"), ended},
       "HANG at step 1200: rank 1 (n1, pid 1001) exited with code 0; rank 0 waiting in all-reduce "
       "#4812",
       {1}},
      {"no heartbeats: the ranks with no CPU while stalled, weak evidence",
       {Silent(0, 0.0), Silent(1, 30.0, 'R')},
       "HANG: rank 0 (n1, pid 1000) sleeping (S), publishes no heartbeat for 60 s; rank 1 "
       "publishing no heartbeat, running (R)",
       {0}},
      {"no heartbeats, one stopped: that one",
       {Silent(0, 0.0, 'T'), Silent(1, 0.0)},
       "HANG: rank 0 (n1, pid 1000) stopped (T), publishes no heartbeat for 60 s; rank 1 "
       "publishing no heartbeat, sleeping (S)",
       {0}},
  };
  for (const Row& row : rows) {
    const HangVerdict verdict = JudgeHang(row.views, 300);
    ASSERT_FALSE(verdict.lines.empty()) << row.name;
    EXPECT_EQ(verdict.lines.front(), row.headline) << row.name;
    std::vector<int> named;
    for (const RankView& v : verdict.laggards) named.push_back(v.rank);
    EXPECT_EQ(named, row.laggards) << row.name;
  }
}

TEST(HangVerdict, DetailLinesSayTheKernelWaitTheCpuAndWhereTheStackIs) {
  RankView stuck = Rank(1, 5, 8, false, "data", 'D');
  stuck.wchan = "nfs_wait_on_request";
  stuck.cpu_window_s = 0.04;
  stuck.output_age_s = 320;
  const HangVerdict verdict = JudgeHang({Rank(0, 5, 9, true, "all-reduce"), stuck}, 300);
  ASSERT_GE(verdict.lines.size(), 3u);
  EXPECT_EQ(verdict.lines[1],
            "rank 1 on n1: uninterruptible (D) in nfs_wait_on_request, 0.0 s CPU while stalled, "
            "last output 320 s ago; stack in diagnosis/rank-1.txt");
  EXPECT_EQ(verdict.lines.back(), "no rank advanced for 312 s (launch.hang_timeout_s 300)");
  EXPECT_FALSE(verdict.weak_evidence);
  EXPECT_EQ(verdict.step, 5);
}

// Thousands of ranks: the lines stay a screenful (each agent's outcome and the verdict sent to
// every agent carry them); diagnosis.json keeps every rank.
TEST(HangVerdict, ManyNamedRanksAndPlacesStayAFewLines) {
  std::vector<RankView> silent;
  for (int r = 0; r < 4000; ++r) silent.push_back(Silent(r, 0.0));
  const HangVerdict all_silent = JudgeHang(silent, 300);
  EXPECT_EQ(all_silent.laggards.size(), 4000u);
  EXPECT_LE(all_silent.lines.size(), 12u);
  size_t bytes = 0;
  for (const std::string& line : all_silent.lines) bytes += line.size();
  EXPECT_LT(bytes, 4000u);
  EXPECT_NE(all_silent.lines[0].find("and 3992 more named: ranks 8-3999 (each in "
                                     "diagnosis/diagnosis.json)"),
            std::string::npos)
      << all_silent.lines[0];
  EXPECT_EQ(all_silent.lines[9],
            "the other 3992 named ranks: diagnosis/diagnosis.json and diagnosis/rank-<R>.txt");
  EXPECT_NE(HangVerdictJson(all_silent, 300, {}).find("\"rank\":3999"), std::string::npos);

  // Rank 0 behind; the others wait in 2000 different collectives, every other rank in the same.
  std::vector<RankView> spread = {Rank(0, 4, 1, false, "data")};
  for (int r = 1; r < 4000; ++r) spread.push_back(Rank(r, 5, 10 + r % 2000, true, "all-reduce"));
  const HangVerdict spread_out = JudgeHang(spread, 300);
  ASSERT_EQ(spread_out.laggards.size(), 1u);
  EXPECT_LE(spread_out.lines[0].size(), 3000u);
  EXPECT_NE(spread_out.lines[0].find("waiting in 1992 other places (diagnosis/diagnosis.json)"),
            std::string::npos)
      << spread_out.lines[0];
  // Even and odd ranks in two collectives: each list is cut.
  std::vector<RankView> alternate = {Rank(0, 4, 1, false, "data")};
  for (int r = 1; r < 4000; ++r) alternate.push_back(Rank(r, 5, 10 + r % 2, true, "all-reduce"));
  const std::string headline = JudgeHang(alternate, 300).lines[0];
  EXPECT_LE(headline.size(), 600u);
  EXPECT_NE(headline.find("ranks 2,4,6,"), std::string::npos) << headline;
  EXPECT_NE(headline.find(",...,3998 (1999 ranks) waiting in all-reduce #10"), std::string::npos)
      << headline;
}

TEST(HangVerdict, TheMismatchIsSpelledOut) {
  const HangVerdict verdict =
      JudgeHang({Rank(0, 4, 5, true, "all-reduce"), Rank(1, 4, 5, true, "barrier")}, 300);
  ASSERT_GE(verdict.lines.size(), 2u);
  EXPECT_EQ(verdict.lines[1],
            "the ranks disagree on collective #5: rank 0 in all-reduce, rank 1 in barrier (a "
            "collective skipped or added on some ranks)");
}

TEST(HangVerdict, ViewsTravelAsRecordsUnchanged) {
  RankView v = Rank(3, 1200, 4812, true, "all-reduce", 'T');
  v.wchan = "do_signal_stop";
  v.bucket = 2;
  v.buckets = 3;
  v.cpu_s = 12.5;
  v.output_age_s = -1;
  HangMessage message{HangMessage::Kind::kSuspect, 1, "n2", {v, Silent(4, 0.5)}, {}};
  const std::optional<HangMessage> back = HangMessage::Parse(message.Serialize());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->agent, 1);
  ASSERT_EQ(back->views.size(), 2u);
  EXPECT_EQ(SerializeRankView(back->views[0]), SerializeRankView(v));
  EXPECT_EQ(back->views[0].Where(), "all-reduce #4812 (bucket 2/3)");
  EXPECT_FALSE(HangMessage::Parse("kind=stop\nhost=n1\nstatus=received SIGTERM\n").has_value());
  // A verdict carries its lines, and one without any is refused.
  const HangMessage verdict{HangMessage::Kind::kVerdict, 0, "n1", {}, {"HANG at step 5", "more"}};
  EXPECT_EQ(HangMessage::Parse(verdict.Serialize())->lines, verdict.lines);
  HangMessage empty = verdict;
  empty.lines.clear();
  EXPECT_THROW((void)HangMessage::Parse(empty.Serialize()), common::CommunicationError);
}

TEST(HangVerdict, FormatRanksCompressesRuns) {
  EXPECT_EQ(FormatRanks({0, 1, 2, 5, 7, 8}), "0-2,5,7-8");
  EXPECT_EQ(FormatRanks({3}), "3");
  EXPECT_EQ(FormatRanks({}), "");
}

TEST(ProcProbe, StatLinesParseEvenWithOddCommandNames) {
  struct StatRow {
    const char* line;
    char state;
    double cpu_s;
  };
  const std::vector<StatRow> rows = {
      {"4411 (python3) T 1 2 3 0 -1 0 0 0 0 0 150 50 0 0 20 0 1 0", 'T', 2.0},
      {"4411 (a (weird) name) S 1 2 3 0 -1 0 0 0 0 0 100 0 0 0", 'S', 1.0},
      {"9 (x) D 1 2 3 0 -1 0 0 0 0 0 0 0", 'D', 0.0},
  };
  for (const StatRow& row : rows) {
    const std::optional<ProcSample> sample = ParseProcStat(row.line, 100);
    ASSERT_TRUE(sample.has_value()) << row.line;
    EXPECT_EQ(sample->state, row.state) << row.line;
    EXPECT_DOUBLE_EQ(sample->cpu_s, row.cpu_s) << row.line;
  }
  EXPECT_FALSE(ParseProcStat("garbage", 100).has_value());
  EXPECT_FALSE(ParseProcStat("1 (x) S 1 2", 100).has_value());
  EXPECT_EQ(DescribeProcState('D'), "uninterruptible (D)");
}

}  // namespace
}  // namespace runner

namespace runner {
namespace {

TEST(ProcProbe, TheCaughtSignalsMaskIsReadFromStatus) {
  // A worker that has installed handlers for SIGUSR1 (10), SIGTERM (15) and SIGINT (2).
  const std::string status =
      "Name:\ttrainer\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000001000\n"
      "SigCgt:\t0000000000004202\nCapInh:\t0000000000000000\n";
  const std::optional<uint64_t> mask = ParseCaughtSignals(status);
  ASSERT_TRUE(mask.has_value());
  EXPECT_EQ(*mask, (1u << (SIGUSR1 - 1)) | (1u << (SIGTERM - 1)) | (1u << (SIGINT - 1)));
  EXPECT_FALSE(ParseCaughtSignals("Name:\tx\n").has_value());
  EXPECT_FALSE(ParseCaughtSignals("SigCgt:\t\n").has_value());
  EXPECT_FALSE(ParseCaughtSignals("SigCgt:\t00000000000000000000\n").has_value());
  // This test process catches nothing by default; a process that is gone cannot be hurt.
  EXPECT_FALSE(CatchesSignal(static_cast<int>(getpid()), SIGUSR2));
  EXPECT_TRUE(CatchesSignal(999999999, SIGUSR1));
}

}  // namespace
}  // namespace runner

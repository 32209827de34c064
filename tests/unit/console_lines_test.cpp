// What reaches the agent's console besides rank 0's mirror: the warning/error rule as a table,
// the prefixes set aside, and the collapsing of equal lines across ranks on invented time.

#include "runner/console_lines.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace runner {
namespace {

using Strings = std::vector<std::string>;

TEST(ConsoleLinesTest, WarningAndErrorLinesByTheRule) {
  struct Row {
    const char* line;
    bool counts;
  };
  const Row rows[] = {
      // 1. a level word first, any case, bare or in brackets
      {"WARNING: the learning rate is high", true},
      {"Warning: thing", true},
      {"warning: unused variable 'x'", true},
      {"error: cannot open file", true},
      {"Error opening the data", true},
      {"warn  [runner n1 agent=0] worker rank 3 is slow", true},
      {"critical: out of memory", true},
      {"[error] disk full", true},
      {"FATAL", true},
      // 2. an upper-case level word anywhere
      {"n1:4411:4411 [0] NCCL WARN Call to connect returned Connection refused", true},
      {"2026-12-02 10:00:00,123 ERROR root: failed to load", true},
      {"some module - CRITICAL - gave up", true},
      // 3. a bracketed level word anywhere
      {"[2026-12-02 10:00:00.123] [warning] slow step", true},
      {"[trainer] [Error] bad batch", true},
      // 4. a word ending in Error, Exception or Warning, then ':'
      {"RuntimeError: CUDA out of memory", true},
      {"torch.distributed.DistBackendError: NCCL error", true},
      {"/usr/lib/python3/torch/storage.py:12: UserWarning: TypedStorage is deprecated", true},
      {"ValueException: bad", true},
      // 5. the start of a Python traceback or of an uncaught C++ exception
      {"Traceback (most recent call last):", true},
      {"terminate called after throwing an instance of 'c10::Error'", true},
      // prefixes are set aside first
      {"2026-12-02T10:00:00.123+00:00 WARNING: x", true},
      {"[rank 3] warning: x", true},
      {"rank 3 | error: x", true},
      {"[default3]:Traceback (most recent call last):", true},
      // not warnings or errors
      {"epoch 1/5 step 100/600 loss 0.4000 lr 0.100000", false},
      {"errors=0 warnings=0", false},
      {"mean error 0.1 over the test set", false},
      {"forewarned is forearmed", false},
      {"ERRORS: none", false},
      {"Error rate: see above", true},  // a level word first counts, whatever follows
      {"c10::Error::what", false},
      {"the Warning class", false},
      {"", false},
      {"   ", false},
      {"[rank 3]", false},
  };
  for (const Row& row : rows) {
    EXPECT_EQ(IsWarningOrError(row.line), row.counts) << "'" << row.line << "'";
  }
}

TEST(ConsoleLinesTest, TimestampsAndRankTagsAreSetAside) {
  const std::pair<const char*, const char*> rows[] = {
      {"2026-12-02T10:00:00.123+00:00 text", "text"},
      {"2026-12-02T10:00:00Z text", "text"},
      {"2026-12-02 10:00:00,123 text", "text"},
      {"[2026-12-02 10:00:00.123] [warning] x", "[warning] x"},
      {"10:00:00.5 text", "text"},
      {"[rank 3] text", "text"},
      {"[RANK 3]: text", "text"},
      {"rank 3 | text", "text"},
      {"rank3: text", "text"},
      {"(rank=3/8) text", "text"},
      {"[default12]:text", "text"},
      {"[3] text", "text"},
      {"2026-12-02T10:00:00.123+00:00 [rank 3] 10:00:00 text", "text"},
      {"ranking: text", "ranking: text"},
      {"[rank x] text", "[rank x] text"},
      {"2026 text", "2026 text"},
      {"12:30 text", "12:30 text"},
  };
  for (const auto& [line, expected] : rows) {
    EXPECT_EQ(StripLinePrefix(line), expected) << "'" << line << "'";
  }
}

TEST(ConsoleCollapserTest, EqualLinesOfSeveralRanksBecomeOne) {
  ConsoleCollapser c(2.0);
  for (int r = 0; r < 8; ++r) {
    c.Add(r, "T" + std::to_string(r), "[rank " + std::to_string(r) + "] WARNING: slow",
          10 + r * 0.1);
  }
  c.Add(5, "T9", "RuntimeError: boom", 10.5);
  EXPECT_EQ(c.Flush(11.9), Strings{});  // the first group's window is 2 s
  EXPECT_EQ(c.Flush(12.0), Strings{"T0 [ranks 0-7 x8] WARNING: slow"});
  EXPECT_EQ(c.Flush(12.5), Strings{"T9 [rank 5] RuntimeError: boom"});
  EXPECT_TRUE(c.empty());
}

TEST(ConsoleCollapserTest, RepeatsOfOneRankAndGapsInTheRanks) {
  ConsoleCollapser c(1.0);
  c.Add(3, "A", "warning: x", 0);
  c.Add(3, "B", "warning: x", 0.2);
  c.Add(0, "C", "error: y", 0.3);
  c.Add(1, "D", "error: y", 0.4);
  c.Add(5, "E", "error: y", 0.5);
  EXPECT_EQ(c.Flush(5), (Strings{"A [rank 3 x2] warning: x", "C [ranks 0-1,5 x3] error: y"}));
}

TEST(ConsoleCollapserTest, ALineAfterTheWindowStartsANewGroup) {
  ConsoleCollapser c(1.0);
  c.Add(1, "A", "warning: x", 0);
  EXPECT_EQ(c.Flush(1.0), Strings{"A [rank 1] warning: x"});
  c.Add(2, "B", "warning: x", 1.1);
  EXPECT_EQ(c.Flush(1.5), Strings{});
  EXPECT_EQ(c.Flush(1.5, /*all=*/true), Strings{"B [rank 2] warning: x"});
}

TEST(ConsoleCollapserTest, TheMirroredRankAloneIsNotPrintedTwice) {
  ConsoleCollapser c(1.0, /*shown_rank=*/0);
  c.Add(0, "A", "warning: only rank 0", 0);
  c.Add(0, "B", "warning: all", 0);
  c.Add(1, "C", "warning: all", 0);
  EXPECT_EQ(c.Flush(2), Strings{"B [ranks 0-1 x2] warning: all"});
}

TEST(ConsoleCollapserTest, TooManyOpenGroupsFlushTheOldestEarly) {
  ConsoleCollapser c(10.0, -1, /*max_groups=*/2);
  c.Add(1, "A", "warning: 1", 0);
  c.Add(1, "B", "warning: 2", 0);
  c.Add(1, "C", "warning: 3", 0);
  EXPECT_EQ(c.Flush(0), Strings{"A [rank 1] warning: 1"});
  c.Add(2, "D", "warning: 2", 0);  // still open: joins its group
  EXPECT_EQ(c.Flush(0, true), (Strings{"B [ranks 1-2 x2] warning: 2", "C [rank 1] warning: 3"}));
}

}  // namespace
}  // namespace runner

// Stragglers (trainer/straggler.h): the exchange's packing, the median, the slowest rank, the
// margin, and the words train.log uses. Pure.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "trainer/straggler.h"

namespace trainer {
namespace {

TEST(Straggler, EachRankFillsItsOwnSlotsAndTheSumHasEveryone) {
  const int world = 3;
  std::vector<double> sum(2 * world, 0.0);
  const double compute[] = {0.30, 0.36, 0.33};  // seconds over the interval
  const double wait[] = {0.06, 0.0, 0.03};
  for (int r = 0; r < world; ++r) {
    const std::vector<double> mine = PackRankTimes(r, world, compute[r], wait[r]);
    ASSERT_EQ(mine.size(), 6u);
    for (size_t i = 0; i < mine.size(); ++i) {
      if (i != static_cast<size_t>(r) && i != static_cast<size_t>(world + r)) {
        EXPECT_EQ(mine[i], 0.0) << "rank " << r << " slot " << i;
      }
      sum[i] += mine[i];
    }
  }
  const RankTimes t = UnpackRankTimes(sum, /*steps=*/10);  // per step, in ms
  EXPECT_EQ(t.compute_ms.size(), 3u);
  for (int r = 0; r < world; ++r) {
    EXPECT_DOUBLE_EQ(t.compute_ms[r], compute[r] * 100);
    EXPECT_DOUBLE_EQ(t.wait_ms[r], wait[r] * 100);
  }
}

struct StragglerRow {
  std::string name;
  std::vector<double> compute_ms;
  double margin;
  double median;
  int slowest;
  std::vector<int> stragglers;
  std::string described;
};
const StragglerRow kStragglerRows[] = {
    {"one rank", {35}, 0.2, 35, 0, {}, "slowest rank 0 (+0% compute: 35.0 ms vs median 35.0 ms)"},
    {"even ranks",
     {30, 30, 30, 30},
     0.2,
     30,
     0,
     {},
     "slowest rank 0 (+0% compute: 30.0 ms vs median 30.0 ms)"},
    {"odd count: the middle value",
     {35, 41.3, 34, 36, 35.5},
     0.1,
     35.5,
     1,
     {1},
     "slowest rank 1 (+16% compute: 41.3 ms vs median 35.5 ms)"},
    {"even count: the mean of the middle two",
     {10, 30, 20, 40},
     0.1,
     25,
     3,
     {1, 3},
     "slowest rank 3 (+60% compute: 40.0 ms vs median 25.0 ms)"},
    {"two ranks, one slowed",
     {5, 25},
     0.2,
     15,
     1,
     {1},
     "slowest rank 1 (+67% compute: 25.0 ms vs median 15.0 ms)"},
    {"within the margin",
     {35, 41.2, 35, 35},
     0.2,
     35,
     1,
     {},
     "slowest rank 1 (+18% compute: 41.2 ms vs median 35.0 ms)"},
    {"exactly the margin is not over it",
     {10, 12, 10},
     0.2,
     10,
     1,
     {},
     "slowest rank 1 (+20% compute: 12.0 ms vs median 10.0 ms)"},
    {"margin 0: no warnings",
     {5, 50, 5},
     0,
     5,
     1,
     {},
     "slowest rank 1 (+900% compute: 50.0 ms vs median 5.0 ms)"},
    {"ties: the lowest rank",
     {5, 9, 9},
     0.5,
     9,
     1,
     {},
     "slowest rank 1 (+0% compute: 9.0 ms vs median 9.0 ms)"},
    {"all zero", {0, 0}, 0.2, 0, 0, {}, "slowest rank 0 (+0% compute: 0.0 ms vs median 0.0 ms)"},
};
TEST(Straggler, Table) {
  for (const StragglerRow& row : kStragglerRows) {
    SCOPED_TRACE(row.name);
    RankTimes times;
    times.compute_ms = row.compute_ms;
    times.wait_ms.assign(row.compute_ms.size(), 0.0);
    const StragglerReport report = FindStragglers(times, row.margin);
    EXPECT_DOUBLE_EQ(report.median_compute_ms, row.median);
    EXPECT_EQ(report.slowest.rank, row.slowest);
    std::vector<int> ranks;
    for (const Straggler& s : report.stragglers) {
      ranks.push_back(s.rank);
      EXPECT_DOUBLE_EQ(s.compute_ms, row.compute_ms[static_cast<size_t>(s.rank)]);
      EXPECT_DOUBLE_EQ(s.median_ms, row.median);
      EXPECT_DOUBLE_EQ(s.lag, (s.compute_ms - row.median) / row.median);
    }
    EXPECT_EQ(ranks, row.stragglers);
    EXPECT_EQ(report.DescribeSlowest(), row.described);
  }
}

TEST(Straggler, Warning) {
  const Straggler s{3, 41.24, 35.0, 0.1783};
  EXPECT_EQ(StragglerWarning(s, 11, 20, 0.1),
            "warning: rank 3 is a straggler: compute 41.2 ms per step over steps 11-20, 18% above "
            "the median of 35.0 ms (more than train.straggler_margin 10%)");
  EXPECT_EQ(StragglerWarning(s, 20, 20, 0.15),
            "warning: rank 3 is a straggler: compute 41.2 ms per step over step 20, 18% above "
            "the median of 35.0 ms (more than train.straggler_margin 15%)");
}

}  // namespace
}  // namespace trainer

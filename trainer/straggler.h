#pragma once
// Stragglers: which rank computes slowest, from every rank's own times over one reporting
// interval (train.log_every steps). Each rank measures its compute time (data + forward +
// backward + optimizer, waits excluded) and its communication wait (blocked in the gradient
// all-reduce and the step agreement); the ranks exchange them in one small all-reduce (each rank
// fills its own slots of a 2 x world vector of zeros; the sum has everyone's). A rank whose
// compute time exceeds the median of all ranks' by more than train.straggler_margin is a
// straggler. Pure: no LibTorch, no I/O.

#include <cstdint>
#include <string>
#include <vector>

namespace trainer {

// Every rank's mean time per step over the interval, in milliseconds, indexed by rank.
struct RankTimes {
  std::vector<double> compute_ms;
  std::vector<double> wait_ms;
};

// This rank's slots: [compute_0 .. compute_{world-1}, wait_0 .. wait_{world-1}], seconds over the
// interval at index `rank` and `world + rank`, zeros elsewhere.
[[nodiscard]] std::vector<double> PackRankTimes(int rank, int world, double compute_seconds,
                                                double wait_seconds);
// From the element-wise sum of every rank's PackRankTimes, over an interval of `steps` steps.
[[nodiscard]] RankTimes UnpackRankTimes(const std::vector<double>& summed, int64_t steps);

struct Straggler {
  int rank = 0;
  double compute_ms = 0;
  double median_ms = 0;
  double lag = 0;  // (compute - median) / median: 0.18 = 18% slower
};

struct StragglerReport {
  double median_compute_ms = 0;  // of all ranks (the mean of the middle two for an even count)
  Straggler slowest;             // the rank with the longest compute time (lowest rank on ties)
  std::vector<Straggler> stragglers;  // lag > margin, in rank order; none when margin <= 0

  // "slowest rank 3 (+18% compute: 41.2 ms vs median 35.0 ms)"
  [[nodiscard]] std::string DescribeSlowest() const;
};

// margin: train.straggler_margin (0.2 = 20%); 0 turns the warnings off. A median of 0 makes every
// lag 0.
[[nodiscard]] StragglerReport FindStragglers(const RankTimes& times, double margin);

// The warning for one straggler over steps first..last, e.g. "warning: rank 1 is a straggler:
// compute 41.2 ms per step over steps 11-20, 18% above the median of 35.0 ms (more than
// train.straggler_margin 10%)".
[[nodiscard]] std::string StragglerWarning(const Straggler& s, int64_t first_step,
                                           int64_t last_step, double margin);

}  // namespace trainer

#include "trainer/straggler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace trainer {

namespace {

std::string Format(const char* format, double value) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, value);
  return buf;
}

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

Straggler Of(int rank, double compute_ms, double median_ms) {
  return {rank, compute_ms, median_ms, median_ms > 0 ? (compute_ms - median_ms) / median_ms : 0};
}

}  // namespace

std::vector<double> PackRankTimes(int rank, int world, double compute_seconds,
                                  double wait_seconds) {
  std::vector<double> slots(2 * static_cast<size_t>(world), 0.0);
  slots[static_cast<size_t>(rank)] = compute_seconds;
  slots[static_cast<size_t>(world + rank)] = wait_seconds;
  return slots;
}

RankTimes UnpackRankTimes(const std::vector<double>& summed, int64_t steps) {
  const size_t world = summed.size() / 2;
  const double per_step_ms = 1000.0 / static_cast<double>(std::max<int64_t>(1, steps));
  RankTimes t;
  for (size_t r = 0; r < world; ++r) {
    t.compute_ms.push_back(summed[r] * per_step_ms);
    t.wait_ms.push_back(summed[world + r] * per_step_ms);
  }
  return t;
}

StragglerReport FindStragglers(const RankTimes& times, double margin) {
  StragglerReport report;
  report.median_compute_ms = Median(times.compute_ms);
  const std::vector<double>& c = times.compute_ms;
  if (c.empty()) return report;
  const auto slowest = std::max_element(c.begin(), c.end());
  report.slowest = Of(static_cast<int>(slowest - c.begin()), *slowest, report.median_compute_ms);
  for (size_t r = 0; r < c.size(); ++r) {
    const Straggler s = Of(static_cast<int>(r), c[r], report.median_compute_ms);
    if (margin > 0 && s.lag > margin) report.stragglers.push_back(s);
  }
  return report;
}

std::string StragglerReport::DescribeSlowest() const {
  return "slowest rank " + std::to_string(slowest.rank) + " (" +
         Format("%+.0f", slowest.lag * 100) + "% compute: " + Format("%.1f", slowest.compute_ms) +
         " ms vs median " + Format("%.1f", median_compute_ms) + " ms)";
}

std::string StragglerWarning(const Straggler& s, int64_t first_step, int64_t last_step,
                             double margin) {
  const std::string steps = first_step == last_step ? "step " + std::to_string(last_step)
                                                    : "steps " + std::to_string(first_step) + "-" +
                                                          std::to_string(last_step);
  return "warning: rank " + std::to_string(s.rank) + " is a straggler: compute " +
         Format("%.1f", s.compute_ms) + " ms per step over " + steps + ", " +
         Format("%.0f", s.lag * 100) + "% above the median of " + Format("%.1f", s.median_ms) +
         " ms (more than train.straggler_margin " + Format("%.0f", margin * 100) + "%)";
}

}  // namespace trainer

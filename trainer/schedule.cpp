#include "trainer/schedule.h"

#include <algorithm>
#include <cmath>

namespace trainer {

double LrSchedule::PeakLr() const {
  if (scaling == "linear") return base_lr * world_size;
  if (scaling == "sqrt") return base_lr * std::sqrt(static_cast<double>(world_size));
  return base_lr;
}

double LrSchedule::At(int64_t step) const {
  const double peak = PeakLr();
  if (step < warmup_steps)
    return peak * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  const int64_t after = step - warmup_steps;
  if (kind == "cosine") {
    const int64_t span = std::max<int64_t>(1, total_steps - warmup_steps);
    const double progress = std::min(1.0, static_cast<double>(after) / static_cast<double>(span));
    return peak * 0.5 * (1.0 + std::cos(M_PI * progress));
  }
  if (kind == "step")
    return peak * std::pow(gamma, static_cast<double>(after / std::max<int64_t>(1, step_size)));
  return peak;
}

}  // namespace trainer

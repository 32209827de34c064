#pragma once
// Learning rate as a pure function of the step: the scaling rule applied to the base rate, then
// linear warmup, then the schedule (constant, cosine to zero at the last step, or step decay).

#include <cstdint>
#include <string>

namespace trainer {

struct LrSchedule {
  double base_lr = 0.01;
  std::string scaling = "none";   // none | linear | sqrt (by the world size)
  std::string kind = "constant";  // constant | cosine | step
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  int64_t step_size = 1000;
  double gamma = 0.1;
  int world_size = 1;

  // The rate after scaling, before warmup and schedule.
  [[nodiscard]] double PeakLr() const;
  // The rate for optimizer step `step` (0-based).
  [[nodiscard]] double At(int64_t step) const;
};

}  // namespace trainer

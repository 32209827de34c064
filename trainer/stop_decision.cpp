#include "trainer/stop_decision.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace trainer {

StepAgreement StepAgreement::Local(double loss, bool stop, bool preempt, bool out_of_time) {
  StepAgreement a;
  const bool finite = std::isfinite(loss);
  a.loss_sum = finite ? loss : 0.0;
  a.non_finite_ranks = finite ? 0 : 1;
  a.stop = stop;
  a.preempt = preempt;
  a.out_of_time = out_of_time;
  return a;
}

StepAgreement::Packed StepAgreement::Pack() const {
  return {loss_sum, static_cast<double>(non_finite_ranks), stop ? 1.0 : 0.0, preempt ? 1.0 : 0.0,
          out_of_time ? 1.0 : 0.0};
}

StepAgreement StepAgreement::Unpack(const Packed& summed) {
  StepAgreement a;
  a.loss_sum = summed[0];
  a.non_finite_ranks = static_cast<int>(std::lround(summed[1]));
  a.stop = summed[2] > 0;
  a.preempt = summed[3] > 0;
  a.out_of_time = summed[4] > 0;
  return a;
}

std::string StepAgreement::StopReason() const {
  if (preempt) return "preempt";
  if (stop) return "signal";
  if (out_of_time) return "walltime";
  return "";
}

std::string DivergenceMessage(double local_loss, const StepAgreement& agreed, int64_t step_number,
                              int64_t epoch_number, double lr, int world_size) {
  char rate[64];
  std::snprintf(rate, sizeof(rate), "%.6f", lr);
  const char* what = std::isnan(local_loss)      ? "NaN"
                     : std::isfinite(local_loss) ? "non-finite on another rank"
                                                 : "infinite";
  return "the loss became " + std::string(what) + " at step " + std::to_string(step_number) +
         " (epoch " + std::to_string(epoch_number) + ", lr " + rate + ") on " +
         std::to_string(agreed.non_finite_ranks) + " of " + std::to_string(world_size) +
         " ranks; lower train.lr, set train.grad_clip_norm, or check the data";
}

double StepTimeEma(double ema, double step_seconds) {
  return ema == 0 ? step_seconds : 0.9 * ema + 0.1 * step_seconds;
}

bool OutOfTime(double job_end_time, double now, double step_seconds_ema, double checkpoint_seconds,
               double stop_margin_s) {
  if (job_end_time <= 0) return false;
  const double left = job_end_time - now;
  return left <
         step_seconds_ema + std::max(checkpoint_seconds, 2 * step_seconds_ema) + stop_margin_s;
}

}  // namespace trainer

#pragma once
// What the ranks agree on after every optimizer step, in one small all-reduce (a sum): the loss
// summed over ranks, how many ranks saw a non-finite loss, and whether any rank wants to stop
// (a stop signal or the test's stop_at_step), to checkpoint for a requeue (the preempt signal),
// or is out of time before the job's end. A flag set on any rank is set for all, so all ranks
// stop at the same step boundary. Also the walltime rule that sets out_of_time. Pure, no
// LibTorch: the loop moves the packed values through its communicator.

#include <array>
#include <cstdint>
#include <string>

namespace trainer {

struct StepAgreement {
  double loss_sum = 0;       // finite losses, summed over ranks
  int non_finite_ranks = 0;  // ranks whose loss was NaN or infinite
  bool stop = false;         // a stop signal (or stop_at_step) on some rank
  bool preempt = false;      // a preemption signal on some rank
  bool out_of_time = false;  // some rank expects the job's end before the next step's checkpoint

  static constexpr size_t kPackedSize = 5;
  using Packed = std::array<double, kPackedSize>;

  // One rank's contribution: a non-finite loss counts as a rank, not as a loss.
  [[nodiscard]] static StepAgreement Local(double loss, bool stop, bool preempt, bool out_of_time);
  // The order of the values on the wire: loss, non-finite, stop, preempt, out of time.
  [[nodiscard]] Packed Pack() const;
  // From the element-wise sum of every rank's Pack(): a flag any rank set is set.
  [[nodiscard]] static StepAgreement Unpack(const Packed& summed);

  [[nodiscard]] bool AnyStop() const { return stop || preempt || out_of_time; }
  // "preempt", "signal" or "walltime" (in that precedence); "" when no stop was agreed.
  [[nodiscard]] std::string StopReason() const;
};

// The TrainingError text for a step where non_finite_ranks > 0: what this rank's own loss was
// ("NaN", "infinite", or "non-finite on another rank"), the 1-based step and epoch, the rate,
// how many ranks, and what to change.
[[nodiscard]] std::string DivergenceMessage(double local_loss, const StepAgreement& agreed,
                                            int64_t step_number, int64_t epoch_number, double lr,
                                            int world_size);

// The step time's moving average: the first sample as it is, then 0.9 old + 0.1 new.
[[nodiscard]] double StepTimeEma(double ema, double step_seconds);

// Whether to stop now for the job's end: true when the seconds left (job_end_time - now) are
// fewer than one more step + the longer of the last checkpoint's time and two steps + the
// margin. job_end_time <= 0 (no end known): never.
[[nodiscard]] bool OutOfTime(double job_end_time, double now, double step_seconds_ema,
                             double checkpoint_seconds, double stop_margin_s);

}  // namespace trainer

#include "trainer/train_report.h"

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "common/atomic_file.h"
#include "common/job_layout.h"
#include "common/json.h"
#include "common/logging.h"
#include "common/seconds.h"

namespace trainer {

StepTimes& StepTimes::operator+=(const StepTimes& other) {
  data += other.data;
  compute += other.compute;
  comm += other.comm;
  optimizer += other.optimizer;
  agree += other.agree;
  return *this;
}

namespace {

// [41.234, 35.012]: milliseconds to the microsecond.
std::string MillisecondsArray(const std::vector<double>& values) {
  std::vector<std::string> items;
  items.reserve(values.size());
  for (double v : values) items.push_back(Fixed(v, 3));
  return common::JsonArray(items);
}

}  // namespace

std::string Fixed(double value, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, value);
  return buf;
}

TrainReporter::TrainReporter(int rank, const std::string& output_dir, std::string events_path,
                             const TrainOptions& options, int64_t total_steps)
    : rank_(rank),
      progress_(rank == 0 ? std::make_unique<Progress>(output_dir) : nullptr),
      output_dir_(output_dir),
      events_path_(std::move(events_path)),
      options_(options),
      total_steps_(total_steps) {}

void TrainReporter::Say(const std::string& line) {
  if (progress_) progress_->Line(line);
}

void TrainReporter::Startup(const std::string& backend, const std::string& model, size_t buckets,
                            bool overlap, const std::string& data, int64_t steps_per_epoch,
                            const LrSchedule& schedule) {
  const TrainOptions& o = options_;
  Say("world_size=" + std::to_string(o.world_size) + " rank=" + std::to_string(rank_) +
      " backend=" + backend + " collective_timeout=" + Fixed(o.collective_timeout_s, 0) +
      "s model=" + model + " precision=" + o.precision + " buckets=" + std::to_string(buckets) +
      " (" + Fixed(o.bucket_size_mb, 1) + " MiB)" + (overlap ? "" : " overlap=off"));
  Say("data: " + data);
  Say("effective batch = " + std::to_string(o.batch_per_rank) + " per rank x " +
      std::to_string(o.world_size) + " ranks x " + std::to_string(o.grad_accum_steps) +
      " accumulation steps = " + std::to_string(o.SamplesPerStep()) + "; " +
      std::to_string(steps_per_epoch) + " steps per epoch, " + std::to_string(total_steps_) +
      " steps in all; lr " + Fixed(schedule.base_lr, 6) + " x " + schedule.scaling +
      " scaling = " + Fixed(schedule.PeakLr(), 6) + ", " + schedule.kind + " schedule, " +
      std::to_string(schedule.warmup_steps) + " warmup steps; optimizer " + o.optimizer);
}

void TrainReporter::StepDone(int64_t step_number, double mean_loss, const StepTimes& times) {
  loss_curve_.push_back({static_cast<double>(step_number), mean_loss});
  ++window_steps_;
  window_times_ += times;
}

bool TrainReporter::IntervalEnds(int64_t step_number) const {
  return step_number % options_.log_every == 0 || step_number == total_steps_;
}

std::vector<double> TrainReporter::IntervalTimes() const {
  return PackRankTimes(rank_, options_.world_size, window_times_.ComputeSeconds(),
                       window_times_.WaitSeconds());
}

void TrainReporter::EndInterval(int64_t step_number, int64_t epoch, double mean_loss, double lr,
                                const std::vector<double>& all_times) {
  const RankTimes ranks = UnpackRankTimes(all_times, window_steps_);
  LogWindow(step_number, epoch, mean_loss, lr, ranks);
  WarnStragglers(step_number, ranks);
  window_start_ = std::chrono::steady_clock::now();
  window_steps_ = 0;
  window_times_ = StepTimes();
}

void TrainReporter::LogWindow(int64_t step_number, int64_t epoch, double mean_loss, double lr,
                              const RankTimes& ranks) {
  if (!progress_) return;
  const double elapsed = common::Seconds(std::chrono::steady_clock::now() - window_start_);
  const double rate =
      static_cast<double>(window_steps_ * options_.SamplesPerStep()) / std::max(1e-9, elapsed);
  const double per_step = elapsed / static_cast<double>(window_steps_);
  const double eta = per_step * static_cast<double>(total_steps_ - step_number);
  const double n = static_cast<double>(window_steps_);
  const StepTimes& t = window_times_;
  const StragglerReport report = FindStragglers(ranks, options_.straggler_margin);
  Say("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(options_.epochs) + " step " +
      std::to_string(step_number) + "/" + std::to_string(total_steps_) + " loss " +
      Fixed(mean_loss, 4) + " lr " + Fixed(lr, 6) + " samples/s " + Fixed(rate, 0) + " step " +
      Fixed(per_step * 1000, 1) + "ms (data " + Fixed(t.data / n * 1000, 1) + " fwd+bwd " +
      Fixed(t.compute / n * 1000, 1) + " comm-wait " + Fixed(t.comm / n * 1000, 1) + " opt " +
      Fixed(t.optimizer / n * 1000, 1) + ") eta " + FormatDuration(eta) +
      (options_.world_size > 1 ? ", " + report.DescribeSlowest() : std::string()));
  progress_->Metrics(common::JsonObject()
                         .Add("step", step_number)
                         .Add("epoch", epoch + 1)
                         .Add("loss", mean_loss)
                         .Add("lr", lr)
                         .Add("samples_per_s", rate)
                         .Add("step_ms", per_step * 1000)
                         .Add("data_ms", t.data / n * 1000)
                         .Add("compute_ms", t.compute / n * 1000)
                         .Add("comm_wait_ms", t.comm / n * 1000)
                         .Add("optimizer_ms", t.optimizer / n * 1000)
                         .AddRaw("rank_compute_ms", MillisecondsArray(ranks.compute_ms))
                         .AddRaw("rank_wait_ms", MillisecondsArray(ranks.wait_ms))
                         .Add("median_compute_ms", report.median_compute_ms)
                         .Add("slowest_rank", report.slowest.rank)
                         .Add("slowest_lag", report.slowest.lag)
                         .str());
}

// A rank is warned about once it has been over the margin for consecutive intervals covering at
// least this many steps: persistently slow, not one noisy short interval (train.log_every 1).
constexpr int64_t kPersistentSteps = 10;

void TrainReporter::WarnStragglers(int64_t step_number, const RankTimes& ranks) {
  if (!progress_) return;
  const double margin = options_.straggler_margin;
  const std::vector<Straggler> stragglers = FindStragglers(ranks, margin).stragglers;
  std::vector<int64_t> slow(ranks.compute_ms.size(), 0);
  for (const Straggler& s : stragglers) {
    const auto r = static_cast<size_t>(s.rank);
    slow[r] = (r < slow_steps_.size() ? slow_steps_[r] : 0) + window_steps_;
  }
  slow_steps_ = slow;
  for (const Straggler& s : stragglers) {
    const int64_t streak = slow_steps_[static_cast<size_t>(s.rank)];
    if (streak < kPersistentSteps) continue;
    const int64_t first = step_number - std::min(streak, window_steps_) + 1;
    Say(StragglerWarning(s, first, step_number, margin));
    Event(common::JsonObject()
              .Add("event", "straggler")
              .Add("step", step_number)
              .Add("steps", window_steps_)
              .Add("rank", s.rank)
              .Add("compute_ms", s.compute_ms)
              .Add("median_ms", s.median_ms)
              .Add("lag", s.lag)
              .Add("margin", margin));
  }
}

void TrainReporter::Event(const common::JsonObject& event) const {
  // Events are a record for people: one that cannot be written does not stop training.
  if (progress_ && !events_path_.empty()) {
    (void)common::AppendEventLine(
        events_path_, common::JsonObject().Add("time", common::Timestamp()).Extend(event));
  }
}

void TrainReporter::Evaluated(int64_t steps_done, int64_t epoch, double loss, double accuracy,
                              int64_t samples) {
  accuracy_curve_.push_back({static_cast<double>(steps_done), accuracy});
  Say("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(options_.epochs) +
      " eval: test loss " + Fixed(loss, 4) + " accuracy " + Fixed(accuracy, 4) + " on " +
      std::to_string(samples) + " samples");
  if (!progress_) return;
  progress_->Metrics(common::JsonObject()
                         .Add("step", steps_done)
                         .Add("epoch", epoch + 1)
                         .Add("test_loss", loss)
                         .Add("test_accuracy", accuracy)
                         .Add("test_samples", samples)
                         .str());
}

void TrainReporter::Checkpointed(int64_t steps_done, const std::string& why, const std::string& dir,
                                 double seconds) {
  Say("checkpoint step " + std::to_string(steps_done) + " (" + why + ") written to " + dir +
      " in " + Fixed(seconds, 2) + " s");
  Event(common::JsonObject()
            .Add("event", "checkpoint")
            .Add("step", steps_done)
            .Add("reason", why)
            .Add("seconds", seconds));
}

void TrainReporter::Stopping(int64_t steps_done, const StepAgreement& agreed, double seconds_left) {
  Say("stopping after step " + std::to_string(steps_done) + ": " +
      (agreed.preempt ? std::string("preemption signal (checkpoint, then requeue)")
       : agreed.stop  ? std::string("stop signal")
                      : "the job's end time (SLURM_JOB_END_TIME) is near: " +
                           FormatDuration(seconds_left) + " left"));
}

void TrainReporter::Done(const RunSummary& s) {
  if (s.samples_per_second <= 0)
    return Say("done: nothing left to train: all " + std::to_string(s.steps) +
               " steps were done before this run, parameter digest " + s.parameter_digest);
  Say("done: " + std::to_string(s.steps) + " steps in " + FormatDuration(s.seconds) + ", " +
      Fixed(s.samples_per_second, 0) + " samples/s, last loss " + Fixed(s.last_loss, 4) +
      (s.test_accuracy >= 0 ? ", test accuracy " + Fixed(s.test_accuracy, 4) : std::string()) +
      ", parameter digest " + s.parameter_digest +
      (s.stop_reason.empty() ? "" : ", stopped: " + s.stop_reason));
}

void TrainReporter::WriteLossCurve(const std::string& model) const {
  if (!progress_ || output_dir_.empty()) return;
  std::ofstream(output_dir_ + "/" + common::job_layout::kLossCurve) << LossCurveSvg(
      loss_curve_, accuracy_curve_, "training loss and test accuracy (" + model + ")");
}

}  // namespace trainer

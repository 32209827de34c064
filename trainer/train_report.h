#pragma once
// What the training loop tells people, from rank 0 only (other ranks' reporters stay silent):
// the startup lines, one progress line and one metrics.jsonl record every train.log_every steps
// (and at the last step) with the time split over the steps since the previous line and every
// rank's compute and wait times (the slowest rank named, stragglers warned about in train.log
// and events.jsonl: trainer/straggler.h), evaluation results, checkpoints (also an event), the
// stop, the closing summary, and loss.svg. Keeps the loss and accuracy curves. Free of LibTorch.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/json.h"
#include "trainer/progress.h"
#include "trainer/schedule.h"
#include "trainer/stop_decision.h"
#include "trainer/straggler.h"
#include "trainer/train_options.h"

namespace trainer {

// Where one optimizer step's time went, in seconds (summed over its micro-batches).
struct StepTimes {
  double data = 0;       // batch assembly and augmentation
  double compute = 0;    // forward and backward
  double comm = 0;       // waiting for the gradient all-reduce after backward
  double optimizer = 0;  // clipping and the optimizer step
  double agree = 0;      // waiting in the step agreement's all-reduce
  StepTimes& operator+=(const StepTimes& other);
  // What this rank computed (data + forward + backward + optimizer) and how long it waited for
  // the others (gradient all-reduce + agreement).
  [[nodiscard]] double ComputeSeconds() const { return data + compute + optimizer; }
  [[nodiscard]] double WaitSeconds() const { return comm + agree; }
};

// What the closing line reports.
struct RunSummary {
  int64_t steps = 0;
  double seconds = 0;
  double samples_per_second = 0;
  double last_loss = 0;
  double test_accuracy = -1;  // -1: not evaluated
  std::string parameter_digest;
  std::string stop_reason;  // "" when finished
};

// "0.123457" for Fixed(0.1234567, 6).
[[nodiscard]] std::string Fixed(double value, int digits);

class TrainReporter {
 public:
  // Rank 0 writes to output_dir (see Progress; "" = stdout only) and appends events to
  // events_path ("" = none); other ranks say nothing. Throws common::EnvironmentError when the
  // files cannot be opened.
  TrainReporter(int rank, const std::string& output_dir, std::string events_path,
                const TrainOptions& options, int64_t total_steps);

  void Say(const std::string& line);
  // The three lines that describe the run before its first step.
  void Startup(const std::string& backend, const std::string& model, size_t buckets, bool overlap,
               const std::string& data, int64_t steps_per_epoch, const LrSchedule& schedule);
  // Starts the first timing window.
  void Start(std::chrono::steady_clock::time_point now) { window_start_ = now; }
  // After optimizer step `step_number` (1-based): adds it to the reporting interval.
  void StepDone(int64_t step_number, double mean_loss, const StepTimes& times);
  // Whether step `step_number` ends the interval (every train.log_every steps, and the last):
  // the same answer on every rank, which then all exchange IntervalTimes().
  [[nodiscard]] bool IntervalEnds(int64_t step_number) const;
  // This rank's slots of the exchange (trainer/straggler.h: PackRankTimes).
  [[nodiscard]] std::vector<double> IntervalTimes() const;
  // With the exchange summed over ranks: the progress line, the metrics record and the straggler
  // warnings (rank 0); then the next interval starts, on every rank.
  void EndInterval(int64_t step_number, int64_t epoch, double mean_loss, double lr,
                   const std::vector<double>& all_times);
  void Evaluated(int64_t steps_done, int64_t epoch, double loss, double accuracy, int64_t samples);
  void Checkpointed(int64_t steps_done, const std::string& why, const std::string& dir,
                    double seconds);
  // The agreed stop after `steps_done` steps; seconds_left until the job's end (walltime).
  void Stopping(int64_t steps_done, const StepAgreement& agreed, double seconds_left);
  void Done(const RunSummary& summary);
  // <output_dir>/loss.svg, from rank 0 when an output directory is set.
  void WriteLossCurve(const std::string& model) const;

 private:
  void LogWindow(int64_t step_number, int64_t epoch, double mean_loss, double lr,
                 const RankTimes& ranks);
  void WarnStragglers(int64_t step_number, const RankTimes& ranks);
  void Event(const common::JsonObject& event) const;

  int rank_;
  std::unique_ptr<Progress> progress_;  // null on other ranks
  std::string output_dir_;
  std::string events_path_;
  TrainOptions options_;
  int64_t total_steps_;
  std::vector<CurvePoint> loss_curve_, accuracy_curve_;
  std::chrono::steady_clock::time_point window_start_;
  int64_t window_steps_ = 0;
  StepTimes window_times_;
  // Per rank: the steps of the consecutive intervals it has been over the straggler margin.
  std::vector<int64_t> slow_steps_;
};

}  // namespace trainer

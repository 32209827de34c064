#include "trainer/train_loop.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/optim/optimizer.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <optional>

#include "common/errors.h"
#include "common/seconds.h"
#include "trainer/checkpoint.h"
#include "trainer/collectives.h"
#include "trainer/evaluate.h"
#include "trainer/models.h"
#include "trainer/phase_tracker.h"
#include "trainer/reducer.h"
#include "trainer/resume_point.h"
#include "trainer/stop_decision.h"
#include "trainer/stop_signals.h"
#include "trainer/train_options.h"
#include "trainer/train_report.h"
#include "trainer/train_setup.h"
#include "trainer/train_step.h"

namespace trainer {

namespace {

// The data, with a line once it is in memory (the model is built next; bench/first_step.py times
// each from the rank logs).
Datasets LoadDataAndSay(const TrainOptions& o) {
  Datasets d = LoadData(o);
  std::cout << "data loaded: " << d.train.size() << " training and " << d.test.size()
            << " test samples" << std::endl;
  return d;
}

using Clock = std::chrono::steady_clock;

// Sums every rank's StepAgreement (one small all-reduce, collective "agree").
StepAgreement AllReduce(Communicator& comm, common::HeartbeatWriter& heartbeat,
                        const StepAgreement& local) {
  const StepAgreement::Packed packed = local.Pack();
  const std::vector<double> sum =
      SumOverRanks(comm, heartbeat, std::vector<double>(packed.begin(), packed.end()), "agree");
  StepAgreement::Packed summed{};
  std::copy(sum.begin(), sum.end(), summed.begin());
  return StepAgreement::Unpack(summed);
}

// Where the next optimizer step starts.
struct Position {
  int64_t epoch = 0;
  int64_t step_in_epoch = 0;
};

// One call of Train: everything built in the order the ranks must agree on (members are
// initialised in declaration order), then the epochs.
class TrainingRun {
 public:
  TrainingRun(const common::Config& config, Communicator& comm, const TrainContext& context,
              common::HeartbeatWriter& heartbeat)
      : config_(config),
        comm_(comm),
        context_(context),
        options_(TrainOptions::FromConfig(config, comm.size())),
        phases_(heartbeat, comm.rank(), options_.faults),
        data_(LoadDataAndSay(options_)),
        sampler_(data_.train.size(), comm.rank(), comm.size(), options_.seed, /*shuffle=*/true,
                 options_.drop_last),
        steps_per_epoch_(StepsPerEpoch(options_, sampler_, data_.train.size())),
        total_steps_(TotalSteps(options_, steps_per_epoch_)),
        model_(BuildModel(config, options_.seed, comm, heartbeat)),
        optimizer_(MakeOptimizer(options_, model_->Parameters())),
        schedule_(MakeSchedule(options_, total_steps_)),
        checkpoints_(context.checkpoint_dir.empty()
                         ? nullptr
                         : std::make_unique<CheckpointStore>(context.checkpoint_dir,
                                                             options_.keep_checkpoints)),
        start_(Resume()),
        reducer_(model_->Parameters(), comm, heartbeat, BucketBytes(options_), context.overlap),
        reporter_(comm.rank(), context.output_dir, context.events_path, options_, total_steps_),
        step_runner_(options_, comm.rank(), *model_, *optimizer_, reducer_, data_.train, phases_) {}

  TrainResult Run();

 private:
  static int64_t BucketBytes(const TrainOptions& o) {
    return static_cast<int64_t>(o.bucket_size_mb * 1024 * 1024);
  }
  ResumePoint Resume();
  // Returns whether the ranks agreed to stop.
  bool RunEpoch(int64_t epoch, int64_t first_step);
  bool RunStep(const std::vector<int64_t>& indices, int64_t epoch, int64_t step_in_epoch);
  StepAgreement Agree(double local_loss, Clock::time_point step_start);
  void Stop(const StepAgreement& agreed, int64_t epoch);
  void EvaluateEpoch(int64_t epoch);
  // Rank 0 writes the state after `steps_done` steps, the next step at `next`; every rank waits
  // for it and learns how long it took.
  void SaveCheckpoint(int64_t steps_done, const Position& next, const std::string& why);
  void Finish(Clock::time_point start, int64_t steps_at_start);

  const common::Config& config_;
  Communicator& comm_;
  const TrainContext& context_;
  const TrainOptions options_;
  PhaseTracker phases_;
  Datasets data_;
  DistributedSampler sampler_;
  const int64_t steps_per_epoch_;
  const int64_t total_steps_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  const LrSchedule schedule_;
  TrainResult result_;
  std::unique_ptr<CheckpointStore> checkpoints_;  // null: no checkpoints, no resume
  std::string resume_note_;
  const ResumePoint start_;
  Reducer reducer_;
  TrainReporter reporter_;
  StepRunner step_runner_;

  int64_t step_ = 0;  // optimizer steps done
  Position next_;     // where the next step starts
  double step_seconds_ema_ = 0;
  double checkpoint_seconds_ = 0;
};

// Every rank loads the same checkpoint from the shared job directory.
ResumePoint TrainingRun::Resume() {
  if (!checkpoints_) return ResumePoint();
  const std::optional<CheckpointStore::Resumed> resumed =
      checkpoints_->LoadForResume(options_.resume, *model_, *optimizer_, config_);
  if (!resumed) return ResumePoint();
  const std::string* from = &resumed->path;
  const TrainingState& state = resumed->state;
  for (const std::string& skipped : resumed->skipped) resume_note_ += skipped + "\n";
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  generator.set_state(state.rng_state);
  result_.resumed_from_step = state.step;
  const ResumePoint point = ComputeResumePoint(
      {state.step, state.epoch, state.step_in_epoch, state.samples_in_epoch, state.world_size},
      {options_.world_size, options_.batch_per_rank, options_.grad_accum_steps, steps_per_epoch_});
  resume_note_ += point.Describe(*from);
  return point;
}

TrainResult TrainingRun::Run() {
  reporter_.Startup(comm_.backend(), model_->Describe(), reducer_.num_buckets(), context_.overlap,
                    data_.train.description + "; " + data_.test.description, steps_per_epoch_,
                    schedule_);
  for (size_t at = 0, end = 0; at < resume_note_.size(); at = end + 1) {
    end = std::min(resume_note_.find('\n', at), resume_note_.size());
    reporter_.Say(resume_note_.substr(at, end - at));  // skipped checkpoints, then where from
  }
  model_->SetTraining(true);
  const auto start = Clock::now();
  reporter_.Start(start);
  step_ = start_.step;
  phases_.Step(step_);
  next_ = {start_.epoch, start_.step_in_epoch};
  const int64_t steps_at_start = step_;
  bool stopped = false;
  for (int64_t epoch = start_.epoch; epoch < options_.epochs && step_ < total_steps_; ++epoch) {
    stopped = RunEpoch(epoch, epoch == start_.epoch ? start_.step_in_epoch : 0);
    if (stopped) break;
    EvaluateEpoch(epoch);
  }
  if (!stopped && step_ > steps_at_start) SaveCheckpoint(step_, next_, "end of training");
  // Every collective is behind this rank and its work is saved: from here it only reports and
  // tears down, so a second stop signal must not kill it (runner/supervision_policy.h). Said
  // before "done:" reaches train.log, which is what people (and tests) watch for.
  phases_.writer().Phase(common::kPhaseExiting);
  Finish(start, steps_at_start);
  return result_;
}

bool TrainingRun::RunEpoch(int64_t epoch, int64_t first_step) {
  const std::vector<int64_t> indices = sampler_.Indices(epoch);
  for (int64_t s = first_step; s < steps_per_epoch_ && step_ < total_steps_; ++s) {
    if (RunStep(indices, epoch, s)) return true;
  }
  return false;
}

bool TrainingRun::RunStep(const std::vector<int64_t>& indices, int64_t epoch,
                          int64_t step_in_epoch) {
  const auto step_start = Clock::now();
  const double lr = schedule_.At(step_);
  StepTimes times;
  const double local = step_runner_.Run(indices, epoch, step_in_epoch, lr, &times);
  phases_.Step(step_ + 1);
  const auto agree_start = Clock::now();
  const StepAgreement agreed = Agree(local, step_start);
  times.agree = common::Seconds(Clock::now() - agree_start);
  if (agreed.non_finite_ranks > 0) {
    throw common::TrainingError(
        DivergenceMessage(local, agreed, step_ + 1, epoch + 1, lr, options_.world_size));
  }
  const double mean_loss = agreed.loss_sum / options_.world_size;
  result_.last_loss = mean_loss;
  ++step_;
  reporter_.StepDone(step_, mean_loss, times);
  if (reporter_.IntervalEnds(step_)) {
    // Every rank's compute and wait times, for the progress line and the straggler warnings.
    const std::vector<double> all =
        SumOverRanks(comm_, phases_.writer(), reporter_.IntervalTimes(), "timing");
    reporter_.EndInterval(step_, epoch, mean_loss, lr, all);
  }
  const bool epoch_done = step_in_epoch + 1 >= steps_per_epoch_;
  next_ = {epoch_done ? epoch + 1 : epoch, epoch_done ? 0 : step_in_epoch + 1};
  if (agreed.AnyStop()) {
    Stop(agreed, epoch);
    return true;
  }
  const int64_t every = options_.checkpoint_every;
  if (every > 0 && step_ % every == 0 && step_ < total_steps_) {
    SaveCheckpoint(step_, next_, "every " + std::to_string(every) + " steps");
  }
  return false;
}

// The loss averaged over ranks, whether any rank's was not finite, and the stops any rank asks
// for, in one tiny all-reduce.
StepAgreement TrainingRun::Agree(double local_loss, Clock::time_point step_start) {
  const StopRequests requests = PendingStops();
  step_seconds_ema_ = StepTimeEma(step_seconds_ema_, common::Seconds(Clock::now() - step_start));
  const bool out_of_time =
      OutOfTime(context_.job_end_time, common::UnixSeconds(), step_seconds_ema_,
                checkpoint_seconds_, options_.stop_margin_s);
  const bool stop_now =
      requests.stop || (context_.stop_at_step >= 0 && step_ + 1 >= context_.stop_at_step);
  return AllReduce(comm_, phases_.writer(),
                   StepAgreement::Local(local_loss, stop_now, requests.preempt, out_of_time));
}

// A stop the ranks agreed on, at this step boundary: checkpoint, then leave together.
void TrainingRun::Stop(const StepAgreement& agreed, int64_t epoch) {
  result_.stop_reason = agreed.StopReason();
  reporter_.Stopping(step_, agreed, context_.job_end_time - common::UnixSeconds());
  // A stop at an epoch's last step still owes that epoch its evaluation (the resume starts in
  // the next epoch); not for the walltime stop, which has no time to spare.
  if (next_.step_in_epoch == 0 && !agreed.out_of_time) EvaluateEpoch(epoch);
  SaveCheckpoint(step_, next_, result_.stop_reason);
}

void TrainingRun::EvaluateEpoch(int64_t epoch) {
  if (!options_.eval_every_epoch) return;
  const Evaluation e = Evaluate(*model_, data_.test, comm_, phases_,
                                std::max<int64_t>(options_.batch_per_rank, 256));
  result_.test_accuracy = e.accuracy;
  reporter_.Evaluated(step_, epoch, e.loss, e.accuracy, e.samples);
}

void TrainingRun::SaveCheckpoint(int64_t steps_done, const Position& next, const std::string& why) {
  if (!checkpoints_) return;
  phases_.Enter("checkpoint");
  double measured = 0;  // only rank 0 writes, so only its time counts
  if (comm_.rank() == 0) {
    TrainingState state;
    state.step = steps_done;
    state.epoch = next.epoch;
    state.step_in_epoch = next.step_in_epoch;
    state.samples_in_epoch = next.step_in_epoch * options_.SamplesPerStep();
    state.world_size = options_.world_size;
    state.rng_state = at::detail::getDefaultCPUGenerator().get_state();
    measured = checkpoints_->Save(state, *model_, *optimizer_, config_);
    reporter_.Checkpointed(steps_done, why, checkpoints_->dir(), measured);
  }
  // Nobody moves on (or exits) before the checkpoint is complete; all learn how long it took.
  checkpoint_seconds_ = SumOverRanks(comm_, phases_.writer(), {measured}, "checkpoint")[0];
}

void TrainingRun::Finish(Clock::time_point start, int64_t steps_at_start) {
  result_.steps = step_;
  result_.seconds = common::Seconds(Clock::now() - start);
  result_.samples_per_second =
      static_cast<double>((step_ - steps_at_start) * options_.SamplesPerStep()) /
      std::max(1e-9, result_.seconds);
  const std::vector<at::Tensor> params = model_->Parameters();
  for (const at::Tensor& p : params) result_.parameters.push_back(p.detach().clone());
  result_.parameter_digest = ParameterDigest(params);
  RunSummary summary;
  summary.steps = result_.steps;
  summary.seconds = result_.seconds;
  summary.samples_per_second = result_.samples_per_second;
  summary.last_loss = result_.last_loss;
  summary.test_accuracy = result_.test_accuracy;
  summary.parameter_digest = result_.parameter_digest;
  summary.stop_reason = result_.stop_reason;
  reporter_.Done(summary);
  reporter_.WriteLossCurve(model_->Describe());
}

}  // namespace

TrainResult Train(const common::Config& config, Communicator& comm, const TrainContext& context,
                  common::HeartbeatWriter& heartbeat) {
  TrainingRun run(config, comm, context, heartbeat);
  return run.Run();
}

}  // namespace trainer

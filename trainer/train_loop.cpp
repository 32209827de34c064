#include "trainer/train_loop.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>
#include <fcntl.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>
#include <torch/utils.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <mutex>

#include "common/atomic_file.h"
#include "common/errors.h"
#include "common/json.h"
#include "common/logging.h"
#include "trainer/checkpoint.h"
#include "trainer/data.h"
#include "trainer/models.h"
#include "trainer/progress.h"
#include "trainer/reducer.h"
#include "trainer/sampler.h"
#include "trainer/schedule.h"
#include "trainer/stop_signals.h"

namespace trainer {

namespace {

using Clock = std::chrono::steady_clock;
double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string Fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

// Per-rank, per-epoch augmentation: horizontal flips and shifts of up to 2 pixels.
at::Tensor Augment(const at::Tensor& images, at::Generator& gen) {
  const int64_t n = images.size(0);
  at::Tensor flip = at::rand({n}, gen) < 0.5;
  at::Tensor out = at::where(flip.view({n, 1, 1, 1}), images.flip({3}), images);
  const auto shift = at::randint(-2, 3, {2}, gen, at::kLong);
  return at::roll(out, {shift[0].item<int64_t>(), shift[1].item<int64_t>()}, {2, 3});
}

// Events are a record for people: one that cannot be written does not stop training.
void AppendEvent(const std::string& path, const common::JsonObject& event) {
  if (!path.empty()) (void)common::AppendEventLine(path, event);
}

struct Evaluation {
  double loss = 0;
  double accuracy = 0;
  int64_t samples = 0;
};

Evaluation Evaluate(Model& model, const Dataset& test, Communicator& comm, int64_t batch) {
  model.SetTraining(false);
  torch::NoGradGuard no_grad;
  DistributedSampler sampler(test.size(), comm.rank(), comm.size(), 0, /*shuffle=*/false,
                             /*drop_last=*/false);
  std::vector<int64_t> mine = sampler.Indices(0);
  // Padding repeats samples on some ranks; count only the real ones.
  const int64_t real = std::max<int64_t>(
      0, std::min<int64_t>(sampler.per_rank(),
                           (test.size() - comm.rank() + comm.size() - 1) / comm.size()));
  mine.resize(static_cast<size_t>(real));
  double loss_sum = 0, correct = 0;
  for (size_t start = 0; start < mine.size(); start += static_cast<size_t>(batch)) {
    std::vector<int64_t> idx(mine.begin() + static_cast<std::ptrdiff_t>(start),
                             mine.begin() + static_cast<std::ptrdiff_t>(std::min(
                                                mine.size(), start + static_cast<size_t>(batch))));
    auto [x, y] = test.Batch(idx);
    at::Tensor logits = model.Forward(x).to(at::kFloat);
    loss_sum +=
        torch::nn::functional::cross_entropy(
            logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
            .item<double>();
    correct += logits.argmax(1).eq(y).sum().item<double>();
  }
  std::vector<at::Tensor> totals = {
      at::tensor({loss_sum, correct, static_cast<double>(mine.size())}, at::kDouble)};
  comm.AllReduceSum(totals);
  model.SetTraining(true);
  Evaluation e;
  e.samples = static_cast<int64_t>(totals[0][2].item<double>());
  e.loss = totals[0][0].item<double>() / std::max<int64_t>(1, e.samples);
  e.accuracy = totals[0][1].item<double>() / std::max<int64_t>(1, e.samples);
  return e;
}

}  // namespace

TrainResult Train(const common::Config& config, Communicator& comm, const TrainContext& context) {
  const int world = comm.size();
  const int rank = comm.rank();
  const bool leader = rank == 0;
  const uint64_t seed = static_cast<uint64_t>(config.GetInt("job.seed"));
  const std::string precision = config.GetString("train.precision");
  if (precision == "fp16") {
    throw common::ConfigError(
        config.Origin("train.precision") +
        ": train.precision: fp16 with dynamic "
        "loss scaling needs CUDA, and this trainer runs on CPU; use bf16 or fp32");
  }
  int64_t batch = config.GetInt("train.batch_size");
  if (config.GetBool("train.keep_effective_batch_size")) {
    if (batch < world) {
      throw common::ConfigError(
          config.Origin("train.batch_size") + ": train.batch_size=" + std::to_string(batch) +
          " is the global batch (train.keep_effective_batch_size: true) but the world has " +
          std::to_string(world) + " ranks: each rank needs at least one sample; raise it to " +
          std::to_string(world) + " or more");
    }
    batch /= world;
  }
  const int64_t accum = config.GetInt("train.grad_accum_steps");

  // Data: the same dataset on every rank; the sampler gives each rank its shard.
  const int64_t limit = config.GetInt("train.data_limit");
  Dataset train, test;
  if (config.GetString("train.dataset") == "synthetic") {
    const int64_t n = limit > 0 ? std::min(limit, config.GetInt("train.synthetic_samples"))
                                : config.GetInt("train.synthetic_samples");
    train = SyntheticDataset(n, seed, false);
    test = SyntheticDataset(std::max<int64_t>(n / 6, 1), seed, true);
  } else {
    double mean = 0, std = 1;
    train = LoadIdxDataset(config.GetString("train.data_dir"), false, limit, &mean, &std);
    test = LoadIdxDataset(config.GetString("train.data_dir"), true,
                          limit > 0 ? std::max<int64_t>(limit / 6, 1) : 0, &mean, &std);
  }
  const bool drop_last = config.GetBool("train.drop_last");
  DistributedSampler sampler(train.size(), rank, world, seed, /*shuffle=*/true, drop_last);
  const int64_t micro_per_epoch =
      drop_last ? sampler.per_rank() / batch : (sampler.per_rank() + batch - 1) / batch;
  const int64_t steps_per_epoch = micro_per_epoch / accum;
  if (steps_per_epoch < 1) {
    throw common::ConfigError(
        "one optimizer step needs " + std::to_string(batch * accum) +
        " samples per rank (train.batch_size x " + "train.grad_accum_steps) but each of the " +
        std::to_string(world) + " ranks gets " + std::to_string(sampler.per_rank()) + " of the " +
        std::to_string(train.size()) + " training samples; lower the batch or use more data");
  }
  const int64_t epochs = config.GetInt("train.epochs");
  int64_t total_steps = epochs * steps_per_epoch;
  if (config.GetInt("train.max_steps") > 0)
    total_steps = std::min(total_steps, config.GetInt("train.max_steps"));

  // Model: the same initial values everywhere (seeded, then broadcast from rank 0 like DDP).
  std::unique_ptr<Model> model;
  {
    // Modules initialise from the global generator; ranks running as threads of one process
    // (tests) must not interleave their draws.
    static std::mutex init_mutex;
    std::lock_guard<std::mutex> lock(init_mutex);
    torch::manual_seed(seed);
    model = MakeModel(config);
  }
  std::vector<at::Tensor> params = model->Parameters();
  {
    torch::NoGradGuard no_grad;
    std::vector<at::Tensor> state = params;
    for (const at::Tensor& b : model->Buffers()) state.push_back(b);
    comm.Broadcast(state, 0);
  }
  const std::string optimizer_name = config.GetString("train.optimizer");
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  if (optimizer_name == "sgd") {
    optimizer = std::make_unique<torch::optim::SGD>(
        params, torch::optim::SGDOptions(config.GetFloat("train.lr"))
                    .momentum(config.GetFloat("train.momentum"))
                    .weight_decay(config.GetFloat("train.weight_decay")));
  } else {
    optimizer = std::make_unique<torch::optim::AdamW>(
        params, torch::optim::AdamWOptions(config.GetFloat("train.lr"))
                    .weight_decay(config.GetFloat("train.weight_decay")));
  }
  std::string resume_note;
  LrSchedule schedule;
  schedule.base_lr = config.GetFloat("train.lr");
  schedule.scaling = config.GetString("train.lr_scaling");
  schedule.kind = config.GetString("train.lr_schedule");
  schedule.warmup_steps = config.GetInt("train.warmup_steps");
  schedule.total_steps = total_steps;
  schedule.step_size = config.GetInt("train.lr_step_size");
  schedule.gamma = config.GetFloat("train.lr_gamma");
  schedule.world_size = world;
  // Resume: every rank loads the same checkpoint from the shared job directory.
  std::unique_ptr<CheckpointStore> checkpoints;
  int64_t start_epoch = 0, start_step_in_epoch = 0, step = 0;
  TrainResult result;
  if (!context.checkpoint_dir.empty()) {
    checkpoints = std::make_unique<CheckpointStore>(
        context.checkpoint_dir, static_cast<int>(config.GetInt("train.keep_checkpoints")));
    if (std::optional<std::string> from = checkpoints->Resolve(config.GetString("train.resume"))) {
      TrainingState state = checkpoints->Load(*from, *model, *optimizer, config);
      at::Generator generator = at::detail::getDefaultCPUGenerator();
      generator.set_state(state.rng_state);
      step = state.step;
      start_epoch = state.epoch;
      start_step_in_epoch = state.step_in_epoch;
      result.resumed_from_step = state.step;
      std::string note;
      if (state.world_size != world) {
        // Another world size: keep the epoch and the global samples already consumed in it.
        const int64_t global_step = batch * accum * world;
        start_step_in_epoch = state.samples_in_epoch / global_step;
        note = " (written by " + std::to_string(state.world_size) + " ranks; " +
               std::to_string(state.samples_in_epoch) + " samples of epoch " +
               std::to_string(state.epoch + 1) + " done = step " +
               std::to_string(start_step_in_epoch) + " of it with " + std::to_string(world) +
               " ranks" +
               (state.samples_in_epoch % global_step != 0 ? ", rounded down: not bit-exact" : "") +
               ")";
      }
      if (start_step_in_epoch >= steps_per_epoch) {
        ++start_epoch;
        start_step_in_epoch = 0;
      }
      // The step counter (and with it the LR schedule) counts steps of this world's size.
      if (state.world_size != world) step = start_epoch * steps_per_epoch + start_step_in_epoch;
      resume_note = "resumed from " + *from + " at step " + std::to_string(step) + ", epoch " +
                    std::to_string(start_epoch + 1) + " step " +
                    std::to_string(start_step_in_epoch) + note;
    }
  }
  const double clip = config.GetFloat("train.grad_clip_norm");
  const int64_t bucket_bytes =
      static_cast<int64_t>(config.GetFloat("train.bucket_size_mb") * 1024 * 1024);
  Reducer reducer(params, comm, bucket_bytes, context.overlap);
  const bool bf16 = precision == "bf16";
  const bool augment = config.GetBool("train.augment");
  const int64_t log_every = config.GetInt("train.log_every");

  std::unique_ptr<Progress> progress =
      leader ? std::make_unique<Progress>(context.output_dir) : nullptr;
  auto say = [&](const std::string& line) {
    if (progress) progress->Line(line);
  };
  say("world_size=" + std::to_string(world) + " rank=" + std::to_string(rank) +
      " backend=" + comm.backend() + " collective_timeout=" +
      Fixed(config.GetFloat("train.collective_timeout_s"), 0) + "s model=" + model->Describe() +
      " precision=" + precision + " buckets=" + std::to_string(reducer.num_buckets()) + " (" +
      Fixed(config.GetFloat("train.bucket_size_mb"), 1) + " MiB)" +
      (context.overlap ? "" : " overlap=off"));
  say("data: " + train.description + "; " + test.description);
  say("effective batch = " + std::to_string(batch) + " per rank x " + std::to_string(world) +
      " ranks x " + std::to_string(accum) +
      " accumulation steps = " + std::to_string(batch * world * accum) + "; " +
      std::to_string(steps_per_epoch) + " steps per epoch, " + std::to_string(total_steps) +
      " steps in all; lr " + Fixed(schedule.base_lr, 6) + " x " + schedule.scaling +
      " scaling = " + Fixed(schedule.PeakLr(), 6) + ", " + schedule.kind + " schedule, " +
      std::to_string(schedule.warmup_steps) + " warmup steps; optimizer " + optimizer_name);

  if (bf16) {
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
  }
  if (!resume_note.empty()) say(resume_note);
  model->SetTraining(true);
  std::vector<CurvePoint> loss_curve, accuracy_curve;
  double step_seconds_ema = 0, checkpoint_seconds = 0;
  const double stop_margin = config.GetFloat("train.stop_margin_s");
  const int64_t checkpoint_every = config.GetInt("train.checkpoint_every");
  auto save = [&](int64_t epoch_now, int64_t steps_in_epoch, const std::string& why) {
    if (!checkpoints) return;
    double measured = 0;  // only rank 0 writes, so only its time counts
    if (leader) {
      TrainingState state;
      state.step = step;
      state.epoch = epoch_now;
      state.step_in_epoch = steps_in_epoch;
      state.samples_in_epoch = steps_in_epoch * batch * accum * world;
      state.world_size = world;
      state.rng_state = at::detail::getDefaultCPUGenerator().get_state();
      measured = checkpoints->Save(state, *model, *optimizer, config);
      say("checkpoint step " + std::to_string(step) + " (" + why + ") written to " +
          checkpoints->dir() + " in " + Fixed(measured, 2) + " s");
      AppendEvent(context.events_path, common::JsonObject()
                                           .Add("time", common::Timestamp())
                                           .Add("event", "checkpoint")
                                           .Add("step", step)
                                           .Add("reason", why)
                                           .Add("seconds", measured));
    }
    // Nobody moves on (or exits) before the checkpoint is complete; all learn how long it took.
    std::vector<at::Tensor> took = {at::tensor({measured}, at::kDouble)};
    comm.AllReduceSum(took);
    checkpoint_seconds = took[0].item<double>();
  };
  double t_data = 0, t_compute = 0, t_comm = 0, t_opt = 0;
  const auto start = Clock::now();
  auto window_start = start;
  int64_t window_steps = 0;
  auto evaluate_epoch = [&](int64_t epoch) {
    if (!config.GetBool("train.eval_every_epoch")) return;
    Evaluation e = Evaluate(*model, test, comm, std::max<int64_t>(batch, 256));
    result.test_accuracy = e.accuracy;
    accuracy_curve.push_back({static_cast<double>(step), e.accuracy});
    say("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(epochs) + " eval: test loss " +
        Fixed(e.loss, 4) + " accuracy " + Fixed(e.accuracy, 4) + " on " +
        std::to_string(e.samples) + " samples");
    if (progress) {
      progress->Metrics(common::JsonObject()
                            .Add("step", step)
                            .Add("epoch", epoch + 1)
                            .Add("test_loss", e.loss)
                            .Add("test_accuracy", e.accuracy)
                            .Add("test_samples", e.samples)
                            .str());
    }
  };
  bool stopped = false;
  const int64_t steps_at_start = step;
  int64_t pos_epoch = start_epoch,
          pos_in_epoch = start_step_in_epoch;  // where the next step starts
  for (int64_t epoch = start_epoch; epoch < epochs && step < total_steps && !stopped; ++epoch) {
    const std::vector<int64_t> indices = sampler.Indices(epoch);
    const int64_t first_step = epoch == start_epoch ? start_step_in_epoch : 0;
    for (int64_t s = first_step; s < steps_per_epoch && step < total_steps; ++s, ++step) {
      const auto step_start = Clock::now();
      // Augmentation seeded by rank, epoch and step: a resumed run draws what the original drew.
      at::Generator aug_gen = at::make_generator<at::CPUGeneratorImpl>(
          seed + 7919 * static_cast<uint64_t>(rank) + 104729 * static_cast<uint64_t>(epoch) +
          15485863 * static_cast<uint64_t>(s));
      const double lr = schedule.At(step);
      for (auto& group : optimizer->param_groups()) group.options().set_lr(lr);
      double loss_sum = 0;
      for (int64_t micro = 0; micro < accum; ++micro) {
        auto t0 = Clock::now();
        const int64_t first = (s * accum + micro) * batch;
        const auto begin = indices.begin() + static_cast<std::ptrdiff_t>(first);
        const auto end =
            indices.begin() + static_cast<std::ptrdiff_t>(std::min<int64_t>(
                                  first + batch, static_cast<int64_t>(indices.size())));
        auto [x, y] = train.Batch(std::vector<int64_t>(begin, end));
        if (augment) x = Augment(x, aug_gen);
        auto t1 = Clock::now();
        const bool last = micro == accum - 1;
        reducer.Prepare(last);
        at::Tensor loss;
        {
          at::autocast::set_cpu_enabled(bf16);
          at::Tensor logits = model->Forward(x);
          at::autocast::set_cpu_enabled(false);
          loss = torch::nn::functional::cross_entropy(logits.to(at::kFloat), y);
        }
        (loss / static_cast<double>(accum)).backward();
        loss_sum += loss.item<double>();
        auto t2 = Clock::now();
        t_data += Seconds(t1 - t0);
        if (last) {
          const double waited = reducer.Finish().count();
          t_comm += waited;
          t_compute += Seconds(t2 - t1);
        } else {
          t_compute += Seconds(t2 - t1);
        }
      }
      auto t3 = Clock::now();
      if (clip > 0) torch::nn::utils::clip_grad_norm_(params, clip);
      optimizer->step();
      optimizer->zero_grad();
      t_opt += Seconds(Clock::now() - t3);

      // The loss averaged over ranks, and whether any rank's was not finite (one tiny all-reduce).
      const double local = loss_sum / static_cast<double>(accum);
      const StopRequests requests = PendingStops();
      const double step_seconds = Seconds(Clock::now() - step_start);
      step_seconds_ema =
          step_seconds_ema == 0 ? step_seconds : 0.9 * step_seconds_ema + 0.1 * step_seconds;
      bool out_of_time = false;
      if (context.job_end_time > 0) {
        const double left =
            context.job_end_time -
            std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
                .count();
        out_of_time = left < step_seconds_ema + std::max(checkpoint_seconds, 2 * step_seconds_ema) +
                                 stop_margin;
      }
      const bool stop_now =
          requests.stop || (context.stop_at_step >= 0 && step + 1 >= context.stop_at_step);
      std::vector<at::Tensor> check = {
          at::tensor({std::isfinite(local) ? local : 0.0, std::isfinite(local) ? 0.0 : 1.0,
                      stop_now ? 1.0 : 0.0, requests.preempt ? 1.0 : 0.0, out_of_time ? 1.0 : 0.0},
                     at::kDouble)};
      comm.AllReduceSum(check);
      const double mean_loss = check[0][0].item<double>() / world;
      if (check[0][1].item<double>() > 0) {
        throw common::TrainingError(
            "the loss became " +
            std::string(std::isnan(local)      ? "NaN"
                        : std::isfinite(local) ? "non-finite on another rank"
                                               : "infinite") +
            " at step " + std::to_string(step + 1) + " (epoch " + std::to_string(epoch + 1) +
            ", lr " + Fixed(lr, 6) + ") on " + Fixed(check[0][1].item<double>(), 0) + " of " +
            std::to_string(world) +
            " ranks; lower train.lr, set train.grad_clip_norm, or check the data");
      }
      result.last_loss = mean_loss;
      loss_curve.push_back({static_cast<double>(step + 1), mean_loss});
      ++window_steps;
      if ((step + 1) % log_every == 0 || step + 1 == total_steps) {
        const double elapsed = Seconds(Clock::now() - window_start);
        const double rate =
            static_cast<double>(window_steps * batch * accum * world) / std::max(1e-9, elapsed);
        const double per_step = elapsed / static_cast<double>(window_steps);
        const double eta = per_step * static_cast<double>(total_steps - step - 1);
        const double n = static_cast<double>(window_steps);
        say("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(epochs) + " step " +
            std::to_string(step + 1) + "/" + std::to_string(total_steps) + " loss " +
            Fixed(mean_loss, 4) + " lr " + Fixed(lr, 6) + " samples/s " + Fixed(rate, 0) +
            " step " + Fixed(per_step * 1000, 1) + "ms (data " + Fixed(t_data / n * 1000, 1) +
            " fwd+bwd " + Fixed(t_compute / n * 1000, 1) + " comm-wait " +
            Fixed(t_comm / n * 1000, 1) + " opt " + Fixed(t_opt / n * 1000, 1) + ") eta " +
            FormatDuration(eta));
        if (progress) {
          progress->Metrics(common::JsonObject()
                                .Add("step", step + 1)
                                .Add("epoch", epoch + 1)
                                .Add("loss", mean_loss)
                                .Add("lr", lr)
                                .Add("samples_per_s", rate)
                                .Add("step_ms", per_step * 1000)
                                .Add("data_ms", t_data / n * 1000)
                                .Add("compute_ms", t_compute / n * 1000)
                                .Add("comm_wait_ms", t_comm / n * 1000)
                                .Add("optimizer_ms", t_opt / n * 1000)
                                .str());
        }
        window_start = Clock::now();
        window_steps = 0;
        t_data = t_compute = t_comm = t_opt = 0;
      }
      pos_epoch = s + 1 >= steps_per_epoch ? epoch + 1 : epoch;
      pos_in_epoch = s + 1 >= steps_per_epoch ? 0 : s + 1;
      // Stops the ranks agreed on, at this step boundary: checkpoint, then leave together.
      const bool agreed_preempt = check[0][3].item<double>() > 0;
      const bool agreed_stop = check[0][2].item<double>() > 0;
      const bool agreed_walltime = check[0][4].item<double>() > 0;
      if (agreed_preempt || agreed_stop || agreed_walltime) {
        result.stop_reason = agreed_preempt ? "preempt" : agreed_stop ? "signal" : "walltime";
        ++step;
        say("stopping after step " + std::to_string(step) + ": " +
            (agreed_preempt ? std::string("preemption signal (checkpoint, then requeue)")
             : agreed_stop
                 ? std::string("stop signal")
                 : "the job's end time (SLURM_JOB_END_TIME) is near: " +
                       FormatDuration(context.job_end_time -
                                      std::chrono::duration<double>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count()) +
                       " left"));
        // A stop at an epoch's last step still owes that epoch its evaluation (the resume starts
        // in the next epoch); not for the walltime stop, which has no time to spare.
        if (pos_in_epoch == 0 && !agreed_walltime) evaluate_epoch(epoch);
        save(pos_epoch, pos_in_epoch, result.stop_reason);
        stopped = true;
        break;
      }
      if (checkpoint_every > 0 && (step + 1) % checkpoint_every == 0 && step + 1 < total_steps) {
        ++step;
        save(pos_epoch, pos_in_epoch, "every " + std::to_string(checkpoint_every) + " steps");
        --step;
      }
    }
    if (stopped) break;
    evaluate_epoch(epoch);
  }
  if (!stopped && step > steps_at_start) save(pos_epoch, pos_in_epoch, "end of training");
  result.steps = step;
  result.seconds = Seconds(Clock::now() - start);
  const int64_t steps_here = step - steps_at_start;
  result.samples_per_second =
      static_cast<double>(steps_here * batch * accum * world) / std::max(1e-9, result.seconds);
  for (const at::Tensor& p : params) result.parameters.push_back(p.detach().clone());
  result.parameter_digest = ParameterDigest(params);
  say("done: " + std::to_string(step) + " steps in " + FormatDuration(result.seconds) + ", " +
      Fixed(result.samples_per_second, 0) + " samples/s, last loss " + Fixed(result.last_loss, 4) +
      (result.test_accuracy >= 0 ? ", test accuracy " + Fixed(result.test_accuracy, 4)
                                 : std::string()) +
      ", parameter digest " + result.parameter_digest +
      (result.stop_reason.empty() ? "" : ", stopped: " + result.stop_reason));
  if (leader && !context.output_dir.empty()) {
    std::ofstream(context.output_dir + "/loss.svg") << LossCurveSvg(
        loss_curve, accuracy_curve, "training loss and test accuracy (" + model->Describe() + ")");
  }
  return result;
}

}  // namespace trainer

#include "common/config_schema.h"

#include <algorithm>
#include <cctype>
#include <sstream>

#include "common/job_layout.h"

namespace common {

namespace {

constexpr double kBig = 1e18;

// job: what the job is called and where its directory goes.
std::vector<KeySpec> JobKeys() {
  using T = ValueType;
  return {
      {"job.name", T::kName, "\"\"",
       "job name for the job directory; empty: SLURM_JOB_NAME, else \"job\"", 0,
       static_cast<double>(job_layout::kMaxJobNameLength)},
      {"job.log_root", T::kPath, "logs",
       "directory that holds the job directories (<log_root>/<name>-<id>/)"},
      {"job.log_buffer_mib", T::kFloat, "4",
       "MiB of each worker's log held in memory while the disk under job.log_root is slow; "
       "beyond it lines are dropped (counted in outcome.json, marked in the log)",
       0.0625, 1024},
      {"job.log_flush_timeout_s", T::kFloat, "10",
       "seconds the agent waits for a stalled disk to take the logs' last lines when its workers "
       "end; what is still unwritten then is counted as lost",
       0, 3600},
      {"job.seed", T::kInt, "42", "global random seed; each rank derives its own from it", 0,
       4294967295.0},
  };
}

// launch: how the runner starts and supervises workers.
std::vector<KeySpec> LaunchKeys() {
  using T = ValueType;
  return {
      {"launch.nproc_per_node", T::kIntOrAuto, "auto",
       "workers per agent; auto: one per visible GPU, else 1", 1, 1024},
      {"launch.backend",
       T::kEnum,
       "auto",
       "collective backend; auto: nccl with GPUs, gloo without",
       0,
       0,
       false,
       {"auto", "gloo", "nccl"}},
      {"launch.max_restarts", T::kInt, "0",
       "times all agents restart their workers after a failure", 0, 1000},
      {"launch.grace_period_s", T::kFloat, "25",
       "seconds between SIGTERM and SIGKILL when stopping workers", 0, 3600},
      {"launch.preempt_signal",
       T::kEnum,
       "USR1",
       "signal that means \"checkpoint, then requeue\" (#SBATCH --signal)",
       0,
       0,
       false,
       {"USR1", "USR2"}},
      {"launch.requeue", T::kBool, "false",
       "on the preempt signal under Slurm, requeue the job after the checkpoint"},
      {"launch.rendezvous_timeout_s", T::kFloat, "300",
       "seconds the agents and workers wait to meet before failing", 0, 86400, true},
      {"launch.hang_timeout_s", T::kFloat, "300",
       "seconds without any rank advancing before the job is judged hung (stacks saved, exit 13); "
       "0: no hang watchdog",
       0, 604800},
      {"launch.hang_warn_fraction", T::kFloat, "0.5",
       "warn when no rank of a node has advanced for this fraction of the hang limit", 0, 1, true},
      {"launch.init_timeout_s", T::kFloat, "600",
       "hang limit while workers start and set up their process group (heartbeat phase init)", 0,
       604800, true},
      {"launch.first_step_timeout_s", T::kFloat, "900",
       "hang limit until the first step is done (loading, process-group set-up, warm-up)", 0,
       604800, true},
      {"launch.checkpoint_timeout_s", T::kFloat, "900",
       "hang limit while a rank writes a checkpoint or evaluates", 0, 604800, true},
      {"launch.store_addr", T::kString, "auto",
       "address the node-0 agent's store listens on and workers dial; auto: loopback on one host, "
       "else its address on the other nodes' subnet"},
      {"launch.store_port", T::kInt, "0",
       "TCP port of the c10d store on the node-0 agent; 0: the OS picks a free one", 0, 65535},
      {"launch.store_allow", T::kString, "\"\"",
       "who else may connect to the store besides the job's hosts and loopback: addresses and "
       "CIDR networks separated by commas (10.1.0.0/16, fd00::7), or any"},
      {"launch.store_max_connections", T::kInt, "16384",
       "connections the store holds at once (about one per worker); more are refused", 1, 1048576},
  };
}

// train: the bundled trainer. The model and its data.
std::vector<KeySpec> TrainModelAndDataKeys() {
  using T = ValueType;
  return {
      {"train.model",
       T::kEnum,
       "mlp",
       "model: built-in mlp, cnn or transformer, or a TorchScript file",
       0,
       0,
       false,
       {"mlp", "cnn", "transformer", "torchscript"}},
      {"train.model_path", T::kString, "\"\"",
       "TorchScript module file (train.model: torchscript)"},
      {"train.hidden_sizes", T::kIntList, "[256, 128]", "hidden layer widths of the mlp", 1,
       1 << 20},
      {"train.dataset",
       T::kEnum,
       "synthetic",
       "synthetic (needs no files) or mnist (idx files, plain or .gz)",
       0,
       0,
       false,
       {"synthetic", "mnist"}},
      {"train.data_dir", T::kString, "/usr/share/datasets/fashion-mnist",
       "directory of the MNIST-format idx files"},
      {"train.synthetic_samples", T::kInt, "8192", "training samples of the synthetic dataset", 1,
       1e9},
      {"train.epochs", T::kInt, "1", "passes over the training set", 1, 1e6},
      {"train.max_steps", T::kInt, "0", "stop after this many optimizer steps; 0: no limit", 0,
       kBig},
      {"train.batch_size", T::kInt, "64", "samples per rank per micro-step", 1, 1e7},
      {"train.keep_effective_batch_size", T::kBool, "false",
       "treat batch_size as the global batch: per-rank batch = batch_size / world"},
      {"train.grad_accum_steps", T::kInt, "1",
       "micro-steps per optimizer step (no communication until the last)", 1, 4096},
      {"train.augment", T::kBool, "false",
       "random horizontal flips and 2-pixel shifts, seeded per rank and epoch"},
      {"train.data_limit", T::kInt, "0",
       "use only the first N training samples (and N/6 test samples); 0: all", 0, 1e9},
      {"train.drop_last", T::kBool, "true",
       "drop the incomplete last batch; false: pad shards to equal length"},
  };
}

// train: the optimizer and its learning-rate schedule.
std::vector<KeySpec> TrainOptimizerKeys() {
  using T = ValueType;
  return {
      {"train.optimizer", T::kEnum, "sgd", "optimizer", 0, 0, false, {"sgd", "adamw"}},
      {"train.lr", T::kFloat, "0.01", "base learning rate (before lr_scaling)", 0, 100, true},
      {"train.lr_scaling",
       T::kEnum,
       "none",
       "scale lr with the world size: none, linear or sqrt",
       0,
       0,
       false,
       {"none", "linear", "sqrt"}},
      {"train.lr_schedule",
       T::kEnum,
       "constant",
       "learning-rate schedule after warmup",
       0,
       0,
       false,
       {"constant", "cosine", "step"}},
      {"train.warmup_steps", T::kInt, "0", "linear warmup steps", 0, kBig},
      {"train.lr_step_size", T::kInt, "1000", "step schedule: steps between decays", 1, kBig},
      {"train.lr_gamma", T::kFloat, "0.1", "step schedule: decay factor", 0, 1, true},
      {"train.momentum", T::kFloat, "0.9", "SGD momentum", 0, 1},
      {"train.weight_decay", T::kFloat, "0", "weight decay (decoupled for adamw)", 0, 1},
      {"train.grad_clip_norm", T::kFloat, "0", "clip gradients to this global norm; 0: off", 0,
       1e9},
  };
}

// train: precision, communication, logging and checkpoints.
std::vector<KeySpec> TrainRunKeys() {
  using T = ValueType;
  return {
      {"train.precision",
       T::kEnum,
       "fp32",
       "fp32, bf16 autocast, or fp16 with dynamic loss scaling (CUDA)",
       0,
       0,
       false,
       {"fp32", "bf16", "fp16"}},
      {"train.bucket_size_mb", T::kFloat, "25", "gradient all-reduce bucket size in MiB", 0, 4096,
       true},
      {"train.overlap_comm", T::kBool, "true",
       "all-reduce gradient buckets while backward runs; false: after backward (for comparison)"},
      {"train.allreduce",
       T::kEnum,
       "auto",
       "how workers on one machine sum gradients: shm (shared memory, then gloo between one "
       "leader per machine; where /dev/shm is unusable every worker fails with exit 4, naming "
       "the machine and why), gloo (one flat gloo group) or auto (shm when two or more workers "
       "share a machine, else gloo; gloo with a warning where /dev/shm is unusable)",
       0,
       0,
       false,
       {"auto", "gloo", "shm"}},
      {"train.gradient_compression",
       T::kEnum,
       "none",
       "gradients sent over gloo as bf16 or fp16 (half the bytes; each chunk summed in fp32): "
       "between the machines' leaders, or between every rank when the group is flat gloo; never "
       "within shared memory. fp16 sends each share of the mean (range 65504)",
       0,
       0,
       false,
       {"none", "bf16", "fp16"}},
      {"train.collective_timeout_s", T::kFloat, "1800",
       "timeout of each collective operation, seconds", 1, 604800},
      {"train.num_threads", T::kIntOrAuto, "auto",
       "intra-op CPU threads per worker; auto: OMP_NUM_THREADS, else the CPUs / workers", 1, 4096},
      {"train.log_every", T::kInt, "10", "steps between progress lines in train.log", 1, kBig},
      {"train.straggler_margin", T::kFloat, "0.2",
       "warn (train.log, events.jsonl) when a rank's compute time per step exceeds the median "
       "rank's by more than this fraction over a log_every interval; 0: no warnings",
       0, 100},
      {"train.eval_every_epoch", T::kBool, "true", "evaluate on the test split after each epoch"},
      {"train.checkpoint_every", T::kInt, "0",
       "steps between checkpoints; 0: only at the end and on a stop", 0, kBig},
      {"train.keep_checkpoints", T::kInt, "3", "checkpoints kept (oldest deleted first)", 1, 1000},
      {"train.resume", T::kString, "auto",
       "auto (checkpoints/latest if any, else the newest older checkpoint that verifies), none, "
       "or a path: a step-<N> directory, a checkpoints/ directory or its latest file"},
      {"train.allow_config_change", T::kBool, "false",
       "resume from a checkpoint written with different training keys (lr, model, ...)"},
      {"train.stop_margin_s", T::kFloat, "30",
       "with SLURM_JOB_END_TIME: stop and checkpoint when less than a step + a checkpoint + this "
       "remains",
       0, 86400},
      {"train.fault_inject", T::kString, "\"\"",
       "TEST ONLY, never in production: RANK:PHASE:SECONDS[@STEP],... makes rank RANK sleep "
       "SECONDS on entering PHASE (data, forward, backward, optimizer, evaluation, checkpoint) at "
       "every step, or only after STEP steps (a hang); or once in comm-setup, while the "
       "machine's shared-memory segment is being opened; \"\": none"},
  };
}

std::vector<KeySpec> BuildSchema() {
  std::vector<KeySpec> schema;
  for (auto part : {JobKeys, LaunchKeys, TrainModelAndDataKeys, TrainOptimizerKeys, TrainRunKeys}) {
    std::vector<KeySpec> keys = part();
    schema.insert(schema.end(), keys.begin(), keys.end());
  }
  return schema;
}

std::string FormatNumber(double v) {
  std::ostringstream out;
  if (v == static_cast<double>(static_cast<long long>(v)) && std::abs(v) < 1e15) {
    out << static_cast<long long>(v);
  } else {
    out << v;
  }
  return out.str();
}

}  // namespace

const std::vector<KeySpec>& ConfigSchema() {
  static const std::vector<KeySpec> schema = BuildSchema();
  return schema;
}

const std::vector<std::string_view>& ConfigSections() {
  static const std::vector<std::string_view> sections = {"job", "launch", "train"};
  return sections;
}

const KeySpec* FindKey(std::string_view path) {
  for (const KeySpec& spec : ConfigSchema()) {
    if (spec.path == path) return &spec;
  }
  return nullptr;
}

std::string DescribeExpected(const KeySpec& spec) {
  auto range = [&spec]() {
    std::string lo = spec.min_exclusive ? "(" : "[";
    if (spec.max >= kBig)
      return " >" + std::string(spec.min_exclusive ? " " : "= ") + FormatNumber(spec.min);
    return " in " + lo + FormatNumber(spec.min) + ", " + FormatNumber(spec.max) + "]";
  };
  switch (spec.type) {
    case ValueType::kBool:
      return "true or false";
    case ValueType::kInt:
      return "an integer" + range();
    case ValueType::kFloat:
      return "a number" + range();
    case ValueType::kString:
      return "a string";
    case ValueType::kPath:
      return "a non-empty path";
    case ValueType::kName:
      return "a name of at most " + FormatNumber(spec.max) + " letters, digits, '.', '_' and '-'";
    case ValueType::kEnum: {
      std::string text = "one of ";
      for (size_t i = 0; i < spec.choices.size(); ++i) {
        text += (i == 0 ? "" : (i + 1 == spec.choices.size() ? " or " : ", "));
        text += std::string(spec.choices[i]);
      }
      return text;
    }
    case ValueType::kIntOrAuto:
      return "auto or an integer" + range();
    case ValueType::kIntList:
      return "a list of integers" + range() + ", like [256, 128]";
  }
  return "a value";
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string SuggestKey(std::string_view path) {
  std::string best;
  size_t best_distance = 4;  // farther than this is not a typo
  std::string_view leaf =
      path.substr(path.rfind('.') == std::string_view::npos ? 0 : path.rfind('.') + 1);
  for (const KeySpec& spec : ConfigSchema()) {
    size_t d = EditDistance(path, spec.path);
    // A right key in the wrong section ("job.lr") is worth suggesting too.
    std::string_view spec_leaf = spec.path.substr(spec.path.rfind('.') + 1);
    if (leaf == spec_leaf) d = std::min<size_t>(d, 1);
    if (d < best_distance) {
      best_distance = d;
      best = std::string(spec.path);
    }
  }
  return best;
}

std::string EnvNameFor(std::string_view path) {
  std::string name(kEnvPrefix);
  size_t dot = path.find('.');
  for (size_t i = 0; i < path.size(); ++i) {
    if (i == dot) {
      name += "__";
    } else {
      name += static_cast<char>(std::toupper(static_cast<unsigned char>(path[i])));
    }
  }
  return name;
}

}  // namespace common

namespace common {

std::string SchemaMarkdown() {
  std::string text;
  for (std::string_view section : ConfigSections()) {
    text += "### `" + std::string(section) +
            "`\n\n| key | allowed values | default | meaning |\n|---|---|---|---|\n";
    for (const KeySpec& spec : ConfigSchema()) {
      if (spec.path.substr(0, spec.path.find('.')) != section) continue;
      std::string allowed = DescribeExpected(spec);
      std::string escaped;
      for (char ch : allowed) escaped += ch == '|' ? std::string("\\|") : std::string(1, ch);
      text += "| `" + std::string(spec.path) + "` | " + escaped + " | `" +
              std::string(spec.default_value) + "` | " + std::string(spec.doc) + " |\n";
    }
    text += "\n";
  }
  return text;
}

}  // namespace common

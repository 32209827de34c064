#include "trainer/checkpoint.h"

#include <ATen/ATen.h>
#include <sys/stat.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "common/atomic_file.h"
#include "common/logging.h"
#include "common/version.h"
#include "trainer/checkpoint_files.h"
#include "trainer/models.h"

namespace trainer {

namespace {

// Keys that may differ between a checkpoint and the run resuming it.
const char* const kFreeKeys[] = {
    "train.epochs",           "train.max_steps",        "train.log_every",
    "train.checkpoint_every", "train.keep_checkpoints", "train.resume",
    "train.num_threads",      "train.eval_every_epoch", "train.collective_timeout_s",
    "train.data_dir",         "train.overlap_comm",     "train.allow_config_change",
    "train.stop_margin_s",    "train.model_path",       "train.fault_inject",
    "train.straggler_margin", "train.allreduce"};

std::string Shape(const at::Tensor& t) {
  std::ostringstream out;
  out << t.sizes();
  return out.str();
}

}  // namespace

std::map<std::string, std::string> TrajectoryKeys(const common::Config& config) {
  std::map<std::string, std::string> keys;
  std::istringstream yaml(config.ToYaml(false));
  YAML::Node root = YAML::Load(yaml);
  for (const auto& section : root) {
    const std::string name = section.first.as<std::string>();
    if (name != "train" && name != "job") continue;
    for (const auto& item : section.second) {
      const std::string key = name + "." + item.first.as<std::string>();
      if (name == "job" && key != "job.seed") continue;
      if (std::find(std::begin(kFreeKeys), std::end(kFreeKeys), key) != std::end(kFreeKeys))
        continue;
      YAML::Emitter value;
      value << YAML::Flow << item.second;
      keys[key] = value.c_str();
    }
  }
  return keys;
}

std::string HashKeys(const std::map<std::string, std::string>& keys) {
  // FNV-1a, as common/shm_name.cpp's segment names: two copies on purpose, each must stay as it
  // is (checkpoints written before hold this hash).
  uint64_t h = 1469598103934665603ULL;
  for (const auto& [key, value] : keys) {
    for (char c : key + "=" + value + "\n") {
      h ^= static_cast<unsigned char>(c);
      h *= 1099511628211ULL;
    }
  }
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string ParameterDigest(const std::vector<at::Tensor>& parameters) {
  uLong crc = 0;
  for (const at::Tensor& p : parameters) {
    at::Tensor c = p.detach().contiguous().cpu();
    crc = crc32(crc, static_cast<const Bytef*>(c.data_ptr()),
                static_cast<uInt>(c.numel() * c.element_size()));
  }
  return Hex32(static_cast<uint32_t>(crc));
}

CheckpointStore::CheckpointStore(std::string dir, int keep) : dir_(std::move(dir)), keep_(keep) {}

namespace {

// model.pt (parameters p<i>, buffers b<i>), optimizer.pt and rng.pt in `dir`, with their records.
std::map<std::string, FileRecord> WriteTensorFiles(const std::string& dir,
                                                   const TrainingState& state, Model& model,
                                                   torch::optim::Optimizer& optimizer) {
  std::map<std::string, FileRecord> files;
  {
    torch::serialize::OutputArchive archive;
    const std::vector<std::pair<std::string, at::Tensor>> named = model.NamedParameters();
    for (size_t i = 0; i < named.size(); ++i)
      archive.write("p" + std::to_string(i), named[i].second.detach());
    std::vector<at::Tensor> buffers = model.Buffers();
    for (size_t i = 0; i < buffers.size(); ++i)
      archive.write("b" + std::to_string(i), buffers[i], /*is_buffer=*/true);
    files["model.pt"] = WriteArchive(archive, dir + "/model.pt");
  }
  {
    torch::serialize::OutputArchive archive;
    optimizer.save(archive);
    files["optimizer.pt"] = WriteArchive(archive, dir + "/optimizer.pt");
  }
  {
    torch::serialize::OutputArchive archive;
    archive.write("cpu", state.rng_state);
    files["rng.pt"] = WriteArchive(archive, dir + "/rng.pt");
  }
  return files;
}

// state.yaml: the position, the trajectory keys and their hash, the parameters' names and
// shapes, and each file's size and CRC-32.
std::string StateYaml(const TrainingState& state, const common::Config& config,
                      const std::vector<std::pair<std::string, at::Tensor>>& named,
                      const std::map<std::string, FileRecord>& files) {
  const std::map<std::string, std::string> keys = TrajectoryKeys(config);
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "format" << YAML::Value << 1;
  out << YAML::Key << "written_at" << YAML::Value << common::Timestamp();
  out << YAML::Key << "trainer_version" << YAML::Value << common::kProjectVersion;
  out << YAML::Key << "step" << YAML::Value << state.step;
  out << YAML::Key << "epoch" << YAML::Value << state.epoch;
  out << YAML::Key << "step_in_epoch" << YAML::Value << state.step_in_epoch;
  out << YAML::Key << "samples_in_epoch" << YAML::Value << state.samples_in_epoch;
  out << YAML::Key << "world_size" << YAML::Value << state.world_size;
  out << YAML::Key << "loss_scale" << YAML::Value << state.loss_scale;
  out << YAML::Key << "config_hash" << YAML::Value << HashKeys(keys);
  out << YAML::Key << "config" << YAML::Value << YAML::BeginMap;
  for (const auto& [key, value] : keys) out << YAML::Key << key << YAML::Value << value;
  out << YAML::EndMap;
  out << YAML::Key << "parameters" << YAML::Value << YAML::BeginSeq;
  for (const auto& [pname, tensor] : named)
    out << YAML::Flow << YAML::BeginSeq << pname << Shape(tensor) << YAML::EndSeq;
  out << YAML::EndSeq;
  out << YAML::Key << "files" << YAML::Value << YAML::BeginMap;
  for (const auto& [file, record] : files) {
    out << YAML::Key << file << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "bytes"
        << YAML::Value << record.bytes << YAML::Key << "crc32" << YAML::Value << Hex32(record.crc)
        << YAML::EndMap;
  }
  out << YAML::EndMap << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

// The complete `temp` becomes <dir>/<name>, then `latest` names it (temporary file + rename).
void Publish(const std::string& dir, const std::string& temp, const std::string& name) {
  const std::string final_path = dir + "/" + name;
  if (access(final_path.c_str(), F_OK) == 0) RemoveTree(final_path);  // a rerun of the same step
  if (rename(temp.c_str(), final_path.c_str()) != 0) FailIo("rename", temp, errno);
  FsyncPath(dir);
  const std::string latest_temp = dir + "/.latest-" + std::to_string(getpid());
  if (auto failed = common::WriteFileAtomic(dir + "/latest", name + "\n", latest_temp)) {
    FailIo(failed->step, failed->step == "rename" ? latest_temp : failed->path, failed->error);
  }
  FsyncPath(dir);
}

// Keeps the newest `keep` complete checkpoints (and always `current`), by step number: names
// past step-999999 grow longer, so text order would be wrong.
void KeepNewest(const std::string& dir, int keep, const std::string& current) {
  std::vector<std::string> steps = ListNames(dir, "step-");
  std::sort(steps.begin(), steps.end(), [](const std::string& a, const std::string& b) {
    return std::strtoll(a.c_str() + 5, nullptr, 10) < std::strtoll(b.c_str() + 5, nullptr, 10);
  });
  for (size_t i = 0; i + static_cast<size_t>(keep) < steps.size(); ++i) {
    if (steps[i] != current) RemoveTree(dir + "/" + steps[i]);
  }
}

}  // namespace

double CheckpointStore::Save(const TrainingState& state, Model& model,
                             torch::optim::Optimizer& optimizer,
                             const common::Config& config) const {
  const auto start = std::chrono::steady_clock::now();
  if (mkdir(dir_.c_str(), 0750) != 0 && errno != EEXIST) FailIo("create", dir_, errno);
  for (const std::string& stale : ListNames(dir_, ".tmp-"))
    RemoveTree(dir_ + "/" + stale);  // crashed writes
  const std::string name = StepName(state.step);
  const std::string temp = dir_ + "/.tmp-" + name + "-" + std::to_string(getpid());
  if (mkdir(temp.c_str(), 0750) != 0) FailIo("create", temp, errno);
  try {
    const std::map<std::string, FileRecord> files = WriteTensorFiles(temp, state, model, optimizer);
    WriteSmallFile(temp + "/state.yaml", StateYaml(state, config, model.NamedParameters(), files));
    FsyncPath(temp);
    Publish(dir_, temp, name);
  } catch (...) {
    RemoveTree(temp);
    throw;
  }
  KeepNewest(dir_, keep_, name);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::optional<std::string> CheckpointStore::Resolve(const std::string& resume) const {
  if (resume == "none") return std::nullopt;
  // A `latest` file names a checkpoint directory beside it.
  auto from_latest = [](const std::string& file) -> std::optional<std::string> {
    std::ifstream in(file);
    std::string name;
    if (!(in >> name)) return std::nullopt;
    const std::string dir = file.substr(0, file.rfind('/'));
    const std::string path = dir + "/" + name;
    if (access((path + "/state.yaml").c_str(), F_OK) != 0) {
      throw DamagedCheckpointError(
          "checkpoint: " + file + " names '" + name +
          "', which is missing or incomplete; "
          "set train.resume to an existing step-<N> directory (or none to start over)");
    }
    return path;
  };
  if (resume == "auto") return from_latest(dir_ + "/latest");
  struct stat st {};
  if (stat(resume.c_str(), &st) != 0) {
    throw CheckpointError(
        "train.resume: '" + resume + "' does not exist; give a step-<N> directory, a " +
        "checkpoints/ directory with a `latest` file (or that file), auto or none");
  }
  if (S_ISREG(st.st_mode)) {
    const std::string file = resume.find('/') == std::string::npos ? "./" + resume : resume;
    if (std::optional<std::string> latest = from_latest(file)) return latest;
    throw CheckpointError("train.resume: '" + resume +
                          "' is a file that names no checkpoint; give a step-<N> directory, a "
                          "checkpoints/ directory, its `latest` file, auto or none");
  }
  if (access((resume + "/state.yaml").c_str(), F_OK) == 0) return resume;
  if (std::optional<std::string> latest = from_latest(resume + "/latest")) return latest;
  throw CheckpointError("train.resume: '" + resume +
                        "' is not a checkpoint (no state.yaml) and holds no `latest` file");
}

namespace {

YAML::Node ReadStateYaml(const std::string& path) {
  try {
    return YAML::LoadFile(path + "/state.yaml");
  } catch (const YAML::Exception& e) {
    throw DamagedCheckpointError(
        "checkpoint " + path + "/state.yaml cannot be read (" + e.msg +
        "): not a complete checkpoint; use another (train.resume) or none");
  }
}

// Every file's size and CRC-32 against what state.yaml recorded.
void VerifyFiles(const std::string& path, const YAML::Node& meta) {
  for (const auto& item : meta["files"]) {
    const std::string file = path + "/" + item.first.as<std::string>();
    const uint64_t bytes = item.second["bytes"].as<uint64_t>();
    const std::string crc = item.second["crc32"].as<std::string>();
    const FileRecord actual = Measure(file);
    if (actual.bytes != bytes) {
      throw DamagedCheckpointError("checkpoint file " + file +
                                   " is truncated or damaged: " + std::to_string(actual.bytes) +
                                   " bytes, state.yaml says " + std::to_string(bytes) +
                                   "; resume from an older step-<N> (train.resume) or none");
    }
    if (Hex32(actual.crc) != crc) {
      throw DamagedCheckpointError("checkpoint file " + file + " is corrupted: CRC-32 " +
                                   Hex32(actual.crc) + ", state.yaml says " + crc +
                                   "; resume from an older step-<N> (train.resume) or none");
    }
  }
}

// The training-shaping config must match unless the user says otherwise.
void CheckConfig(const std::string& path, const YAML::Node& meta, const common::Config& config) {
  const std::map<std::string, std::string> now = TrajectoryKeys(config);
  if (meta["config_hash"].as<std::string>() == HashKeys(now) ||
      config.GetBool("train.allow_config_change")) {
    return;
  }
  std::string diff;
  std::map<std::string, std::string> then;
  for (const auto& item : meta["config"])
    then[item.first.as<std::string>()] = item.second.as<std::string>();
  for (const auto& [key, value] : now) {
    auto it = then.find(key);
    if (it == then.end() || it->second != value) {
      diff += (diff.empty() ? "" : ", ") + key + " " +
              (it == then.end() ? "(absent)" : it->second) + " -> " + value;
    }
  }
  throw CheckpointError(
      "checkpoint " + path + " was written with a different config (" + diff +
      "); resume with the same values, or set train.allow_config_change=true to accept it");
}

// model.pt into the model, after checking that it holds the model's parameters.
void LoadModel(const std::string& path, const YAML::Node& meta, Model& model) {
  std::vector<std::pair<std::string, at::Tensor>> named = model.NamedParameters();
  const YAML::Node params = meta["parameters"];
  if (params.size() != named.size()) {
    throw CheckpointError("checkpoint " + path + " holds " + std::to_string(params.size()) +
                          " parameter tensors " + "but the model (" + model.Describe() + ") has " +
                          std::to_string(named.size()) + "; it was written for another model");
  }
  torch::serialize::InputArchive archive;
  archive.load_from(path + "/model.pt");
  for (size_t i = 0; i < named.size(); ++i) {
    at::Tensor value;
    archive.read("p" + std::to_string(i), value);
    if (!value.sizes().equals(named[i].second.sizes())) {
      throw CheckpointError("checkpoint " + path + ": parameter '" + named[i].first +
                            "' has shape " + Shape(value) + " there but " + Shape(named[i].second) +
                            " in the model; it was written for another model");
    }
    named[i].second.copy_(value);
  }
  std::vector<at::Tensor> buffers = model.Buffers();
  for (size_t i = 0; i < buffers.size(); ++i) {
    at::Tensor value;
    archive.read("b" + std::to_string(i), value, /*is_buffer=*/true);
    buffers[i].copy_(value);
  }
}

// rng.pt and the position from state.yaml.
TrainingState ReadState(const std::string& path, const YAML::Node& meta) {
  torch::serialize::InputArchive rng;
  rng.load_from(path + "/rng.pt");
  TrainingState state;
  rng.read("cpu", state.rng_state);
  state.step = meta["step"].as<int64_t>();
  state.epoch = meta["epoch"].as<int64_t>();
  state.step_in_epoch = meta["step_in_epoch"].as<int64_t>();
  state.samples_in_epoch = meta["samples_in_epoch"].as<int64_t>();
  state.world_size = meta["world_size"].as<int>();
  state.loss_scale = meta["loss_scale"].as<double>();
  return state;
}

}  // namespace

TrainingState CheckpointStore::Load(const std::string& path, Model& model,
                                    torch::optim::Optimizer& optimizer,
                                    const common::Config& config) const {
  const YAML::Node meta = ReadStateYaml(path);
  try {
    VerifyFiles(path, meta);
    CheckConfig(path, meta, config);
    torch::NoGradGuard no_grad;
    LoadModel(path, meta, model);
    torch::serialize::InputArchive opt;
    opt.load_from(path + "/optimizer.pt");
    optimizer.load(opt);
    return ReadState(path, meta);
  } catch (const CheckpointError&) {
    throw;
  } catch (const std::exception& e) {
    std::string what = e.what();
    throw CheckpointError("checkpoint " + path +
                          " cannot be loaded: " + what.substr(0, what.find('\n')));
  }
}

}  // namespace trainer

#include "trainer/checkpoint.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <dirent.h>
#include <fcntl.h>
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
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/logging.h"
#include "common/version.h"
#include "trainer/models.h"

namespace trainer {

namespace {

// Keys that may differ between a checkpoint and the run resuming it.
const char* const kFreeKeys[] = {
    "train.epochs",           "train.max_steps",        "train.log_every",
    "train.checkpoint_every", "train.keep_checkpoints", "train.resume",
    "train.num_threads",      "train.eval_every_epoch", "train.collective_timeout_s",
    "train.data_dir",         "train.overlap_comm",     "train.allow_config_change",
    "train.stop_margin_s",    "train.model_path"};

std::string Hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%08x", v);
  return buf;
}

std::string StepName(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "step-%06lld", static_cast<long long>(step));
  return buf;
}

[[noreturn]] void Fail(const std::string& what, const std::string& path, int err) {
  throw CheckpointError(
      "checkpoint: cannot " + what + " '" + path + "': " + std::strerror(err) +
          (err == ENOSPC || err == EDQUOT || err == EFBIG
               ? "; the disk (or quota) is full: free space or point job.log_root elsewhere; "
                 "the previous checkpoint is intact"
               : ""),
      common::kExitEnvironment);
}

void FsyncPath(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

void RemoveTree(const std::string& path) {
  if (DIR* dir = opendir(path.c_str())) {
    while (dirent* e = readdir(dir)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      std::string child = path + "/" + name;
      struct stat st {};
      if (lstat(child.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        RemoveTree(child);
      } else {
        unlink(child.c_str());
      }
    }
    closedir(dir);
  }
  rmdir(path.c_str());
}

std::vector<std::string> List(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> out;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name.rfind(prefix, 0) == 0) out.push_back(name);
    }
    closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

struct FileRecord {
  uint64_t bytes = 0;
  uint32_t crc = 0;
};

// Serialises `archive` into `path` through our own writes: errors (ENOSPC) are ours to report,
// and the CRC is computed on the way.
FileRecord WriteArchive(torch::serialize::OutputArchive& archive, const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) Fail("create", path, errno);
  FileRecord record;
  int error = 0;
  // After a failed write the callback still claims every byte: LibTorch's writer throws from its
  // destructor (and aborts the process) when told otherwise. The error is reported below instead.
  archive.save_to([&](const void* data, size_t size) -> size_t {
    if (error != 0) return size;
    const char* bytes = static_cast<const char*>(data);
    size_t done = 0;
    while (done < size) {
      ssize_t n = write(fd, bytes + done, size - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        error = errno;
        return size;
      }
      done += static_cast<size_t>(n);
    }
    record.crc = static_cast<uint32_t>(
        crc32(record.crc, reinterpret_cast<const Bytef*>(data), static_cast<uInt>(size)));
    record.bytes += size;
    // A test knob: widen the window in which a crash leaves a half-written checkpoint.
    if (const char* delay = std::getenv("TRAINER_TEST_CHECKPOINT_DELAY_MS")) {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(delay)));
    }
    return size;
  });
  if (error == 0 && fsync(fd) != 0) error = errno;
  close(fd);
  if (error != 0) Fail("write", path, error);
  return record;
}

FileRecord Measure(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  FileRecord record;
  char buffer[1 << 16];
  while (in) {
    in.read(buffer, sizeof(buffer));
    const std::streamsize n = in.gcount();
    if (n <= 0) break;
    record.crc = static_cast<uint32_t>(
        crc32(record.crc, reinterpret_cast<const Bytef*>(buffer), static_cast<uInt>(n)));
    record.bytes += static_cast<uint64_t>(n);
  }
  return record;
}

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
  uint64_t h = 1469598103934665603ULL;  // FNV-1a
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

double CheckpointStore::Save(const TrainingState& state, Model& model,
                             torch::optim::Optimizer& optimizer,
                             const common::Config& config) const {
  const auto start = std::chrono::steady_clock::now();
  if (mkdir(dir_.c_str(), 0750) != 0 && errno != EEXIST) Fail("create", dir_, errno);
  for (const std::string& stale : List(dir_, ".tmp-"))
    RemoveTree(dir_ + "/" + stale);  // crashed writes
  const std::string name = StepName(state.step);
  const std::string temp = dir_ + "/.tmp-" + name + "-" + std::to_string(getpid());
  if (mkdir(temp.c_str(), 0750) != 0) Fail("create", temp, errno);
  try {
    std::map<std::string, FileRecord> files;
    std::vector<std::pair<std::string, at::Tensor>> named = model.NamedParameters();
    {
      torch::serialize::OutputArchive archive;
      for (size_t i = 0; i < named.size(); ++i)
        archive.write("p" + std::to_string(i), named[i].second.detach());
      std::vector<at::Tensor> buffers = model.Buffers();
      for (size_t i = 0; i < buffers.size(); ++i)
        archive.write("b" + std::to_string(i), buffers[i], /*is_buffer=*/true);
      files["model.pt"] = WriteArchive(archive, temp + "/model.pt");
    }
    {
      torch::serialize::OutputArchive archive;
      optimizer.save(archive);
      files["optimizer.pt"] = WriteArchive(archive, temp + "/optimizer.pt");
    }
    {
      torch::serialize::OutputArchive archive;
      archive.write("cpu", state.rng_state);
      files["rng.pt"] = WriteArchive(archive, temp + "/rng.pt");
    }
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
      out << YAML::Key << file << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key
          << "bytes" << YAML::Value << record.bytes << YAML::Key << "crc32" << YAML::Value
          << Hex32(record.crc) << YAML::EndMap;
    }
    out << YAML::EndMap << YAML::EndMap;
    const std::string text = std::string(out.c_str()) + "\n";
    const std::string state_path = temp + "/state.yaml";
    int fd = open(state_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) Fail("create", state_path, errno);
    if (write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
        fsync(fd) != 0) {
      const int err = errno == 0 ? ENOSPC : errno;
      close(fd);
      Fail("write", state_path, err);
    }
    close(fd);
    FsyncPath(temp);
    const std::string final_path = dir_ + "/" + name;
    if (access(final_path.c_str(), F_OK) == 0) RemoveTree(final_path);  // a rerun of the same step
    if (rename(temp.c_str(), final_path.c_str()) != 0) Fail("rename", temp, errno);
    FsyncPath(dir_);
    const std::string latest_temp = dir_ + "/.latest-" + std::to_string(getpid());
    {
      int lfd = open(latest_temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
      if (lfd < 0) Fail("create", latest_temp, errno);
      const std::string line = name + "\n";
      if (write(lfd, line.data(), line.size()) != static_cast<ssize_t>(line.size()) ||
          fsync(lfd) != 0) {
        const int err = errno == 0 ? ENOSPC : errno;
        close(lfd);
        unlink(latest_temp.c_str());
        Fail("write", latest_temp, err);
      }
      close(lfd);
    }
    if (rename(latest_temp.c_str(), (dir_ + "/latest").c_str()) != 0)
      Fail("rename", latest_temp, errno);
    FsyncPath(dir_);
  } catch (...) {
    RemoveTree(temp);
    throw;
  }
  // Keep the newest `keep_` complete checkpoints.
  // By step number (names past step-999999 grow longer, so text order would be wrong).
  std::vector<std::string> steps = List(dir_, "step-");
  std::sort(steps.begin(), steps.end(), [](const std::string& a, const std::string& b) {
    return std::strtoll(a.c_str() + 5, nullptr, 10) < std::strtoll(b.c_str() + 5, nullptr, 10);
  });
  for (size_t i = 0; i + static_cast<size_t>(keep_) < steps.size(); ++i) {
    if (dir_ + "/" + steps[i] != dir_ + "/" + name) RemoveTree(dir_ + "/" + steps[i]);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::optional<std::string> CheckpointStore::Resolve(const std::string& resume) const {
  if (resume == "none") return std::nullopt;
  auto from_latest = [](const std::string& dir) -> std::optional<std::string> {
    std::ifstream in(dir + "/latest");
    std::string name;
    if (!(in >> name)) return std::nullopt;
    const std::string path = dir + "/" + name;
    if (access((path + "/state.yaml").c_str(), F_OK) != 0) {
      throw CheckpointError(
          "checkpoint: " + dir + "/latest names '" + name +
          "', which is missing or incomplete; "
          "set train.resume to an existing step-<N> directory (or none to start over)");
    }
    return path;
  };
  if (resume == "auto") return from_latest(dir_);
  struct stat st {};
  if (stat(resume.c_str(), &st) != 0) {
    throw CheckpointError("train.resume: '" + resume +
                          "' does not exist; give a step-<N> directory, a " +
                          "checkpoints/ directory with a `latest` file, auto or none");
  }
  if (access((resume + "/state.yaml").c_str(), F_OK) == 0) return resume;
  if (std::optional<std::string> latest = from_latest(resume)) return latest;
  throw CheckpointError("train.resume: '" + resume +
                        "' is not a checkpoint (no state.yaml) and holds no `latest` file");
}

TrainingState CheckpointStore::Load(const std::string& path, Model& model,
                                    torch::optim::Optimizer& optimizer,
                                    const common::Config& config) const {
  YAML::Node meta;
  try {
    meta = YAML::LoadFile(path + "/state.yaml");
  } catch (const YAML::Exception& e) {
    throw CheckpointError("checkpoint " + path + "/state.yaml cannot be read (" + e.msg +
                          "): not a complete checkpoint; use another (train.resume) or none");
  }
  try {
    for (const auto& item : meta["files"]) {
      const std::string file = path + "/" + item.first.as<std::string>();
      const uint64_t bytes = item.second["bytes"].as<uint64_t>();
      const std::string crc = item.second["crc32"].as<std::string>();
      const FileRecord actual = Measure(file);
      if (actual.bytes != bytes) {
        throw CheckpointError("checkpoint file " + file +
                              " is truncated or damaged: " + std::to_string(actual.bytes) +
                              " bytes, state.yaml says " + std::to_string(bytes) +
                              "; resume from an older step-<N> (train.resume) or none");
      }
      if (Hex32(actual.crc) != crc) {
        throw CheckpointError("checkpoint file " + file + " is corrupted: CRC-32 " +
                              Hex32(actual.crc) + ", state.yaml says " + crc +
                              "; resume from an older step-<N> (train.resume) or none");
      }
    }
    // The training-shaping config must match unless the user says otherwise.
    const std::map<std::string, std::string> now = TrajectoryKeys(config);
    if (meta["config_hash"].as<std::string>() != HashKeys(now) &&
        !config.GetBool("train.allow_config_change")) {
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
    std::vector<std::pair<std::string, at::Tensor>> named = model.NamedParameters();
    const YAML::Node params = meta["parameters"];
    if (params.size() != named.size()) {
      throw CheckpointError("checkpoint " + path + " holds " + std::to_string(params.size()) +
                            " parameter tensors " + "but the model (" + model.Describe() +
                            ") has " + std::to_string(named.size()) +
                            "; it was written for another model");
    }
    torch::serialize::InputArchive archive;
    archive.load_from(path + "/model.pt");
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < named.size(); ++i) {
      at::Tensor value;
      archive.read("p" + std::to_string(i), value);
      if (!value.sizes().equals(named[i].second.sizes())) {
        throw CheckpointError("checkpoint " + path + ": parameter '" + named[i].first +
                              "' has shape " + Shape(value) + " there but " +
                              Shape(named[i].second) +
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
    torch::serialize::InputArchive opt;
    opt.load_from(path + "/optimizer.pt");
    optimizer.load(opt);
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
  } catch (const CheckpointError&) {
    throw;
  } catch (const std::exception& e) {
    std::string what = e.what();
    throw CheckpointError("checkpoint " + path +
                          " cannot be loaded: " + what.substr(0, what.find('\n')));
  }
}

}  // namespace trainer

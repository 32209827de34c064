// train.resume: which checkpoint to start from, falling back past damaged ones under "auto".

#include <dirent.h>

#include <algorithm>
#include <string>
#include <vector>

#include "trainer/checkpoint.h"

namespace trainer {

namespace {

// The step-<N> directories of `dir`, newest (highest N) first.
std::vector<std::string> StepDirsNewestFirst(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* entry = readdir(d)) {
      const std::string name = entry->d_name;
      if (name.rfind("step-", 0) == 0 && name.size() > 5 &&
          name.find_first_not_of("0123456789", 5) == std::string::npos) {
        names.push_back(name);
      }
    }
    closedir(d);
  }
  // Zero-padded, but compare by number in case a step outgrew the padding.
  std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() > b.size() : a > b;
  });
  return names;
}

}  // namespace

std::optional<CheckpointStore::Resumed> CheckpointStore::LoadForResume(
    const std::string& resume, Model& model, torch::optim::Optimizer& optimizer,
    const common::Config& config) const {
  if (resume != "auto") {
    const std::optional<std::string> path = Resolve(resume);
    if (!path) return std::nullopt;
    return Resumed{*path, Load(*path, model, optimizer, config), {}};
  }
  std::vector<std::string> candidates;
  std::vector<std::string> skipped;
  try {
    if (std::optional<std::string> latest = Resolve("auto")) candidates.push_back(*latest);
  } catch (const DamagedCheckpointError& e) {
    skipped.push_back(std::string("skipped ") + dir_ + "/latest: " + e.what());
  }
  if (candidates.empty() && skipped.empty()) return std::nullopt;  // nothing saved yet
  for (const std::string& name : StepDirsNewestFirst(dir_)) {
    const std::string path = dir_ + "/" + name;
    if (std::find(candidates.begin(), candidates.end(), path) == candidates.end())
      candidates.push_back(path);
  }
  for (const std::string& path : candidates) {
    try {
      // Verification comes before anything is loaded, so a skipped one changes nothing.
      TrainingState state = Load(path, model, optimizer, config);
      return Resumed{path, std::move(state), std::move(skipped)};
    } catch (const DamagedCheckpointError& e) {
      skipped.push_back("skipped checkpoint " + path + ": " + e.what());
    }
  }
  std::string all;
  for (const std::string& line : skipped) all += "; " + line;
  throw CheckpointError("train.resume auto: no checkpoint in " + dir_ + " verifies" + all +
                        "; set train.resume=none to start over");
}

}  // namespace trainer

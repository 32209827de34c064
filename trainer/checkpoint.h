#pragma once
// Checkpoints: written by rank 0 only, atomically, with the full training state; loaded with
// verification. Layout under the job's checkpoints/ (shared by every attempt):
//
//   checkpoints/step-000120/   model.pt  optimizer.pt  rng.pt  state.yaml
//   checkpoints/latest         "step-000120\n", replaced atomically after the directory is complete
//
// Writing: a temporary directory, every file fsync'd, state.yaml last (with each file's size and
// CRC-32), rename to step-<N>, fsync the parent, then `latest` (temporary file + rename). Then
// the oldest beyond train.keep_checkpoints are removed. A crash or a full disk at any point leaves
// `latest` on the previous complete checkpoint.
//
// Loading verifies the files' sizes and CRCs (truncated or corrupted: refused), the parameters'
// names and shapes (a different model: refused), and the config hash of the keys that shape
// training (refused unless train.allow_config_change), naming the file and the mismatch.

#include <ATen/core/Tensor.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/errors.h"

namespace torch::optim {
class Optimizer;
}

namespace trainer {

class Model;

// A checkpoint that cannot be used (corrupt, mismatched: exit 3, fix train.resume) or written
// (the disk: exit 4, fix the filesystem).
class CheckpointError : public common::Error {
 public:
  explicit CheckpointError(const std::string& message, common::ExitCode code = common::kExitConfig)
      : common::Error(code, message) {}
};

// A checkpoint whose files do not verify (missing, truncated, corrupted): train.resume auto
// falls back to an older one.
class DamagedCheckpointError : public CheckpointError {
 public:
  using CheckpointError::CheckpointError;
};

struct TrainingState {
  int64_t step = 0;              // optimizer steps done
  int64_t epoch = 0;             // the epoch in progress
  int64_t step_in_epoch = 0;     // steps of that epoch done
  int64_t samples_in_epoch = 0;  // global samples of that epoch consumed (world-size changes)
  int world_size = 1;
  double loss_scale = 1.0;  // fp16's dynamic loss scale (1 on CPU)
  at::Tensor rng_state;     // the global CPU generator
};

// The keys whose values shape the training trajectory, "key=value" per line, and their hash.
[[nodiscard]] std::map<std::string, std::string> TrajectoryKeys(const common::Config& config);
[[nodiscard]] std::string HashKeys(const std::map<std::string, std::string>& keys);

class CheckpointStore {
 public:
  CheckpointStore(std::string dir, int keep);

  // Writes step-<N> and moves `latest` to it; returns the seconds it took. Throws
  // CheckpointError naming the path and the reason (ENOSPC, ...) with `latest` untouched.
  double Save(const TrainingState& state, Model& model, torch::optim::Optimizer& optimizer,
              const common::Config& config) const;

  // What train.resume names: "none" -> nullopt; "auto" -> the checkpoint `latest` names, if any;
  // a path -> that directory, the one a `latest` file there names, or the one a `latest` file
  // given itself names. Throws CheckpointError when an explicit path does not exist.
  [[nodiscard]] std::optional<std::string> Resolve(const std::string& resume) const;

  // Loads `path` into the model and optimizer and returns the state. Throws CheckpointError.
  [[nodiscard]] TrainingState Load(const std::string& path, Model& model,
                                   torch::optim::Optimizer& optimizer,
                                   const common::Config& config) const;

  // Resolve + Load; with "auto", a checkpoint that does not verify (DamagedCheckpointError) is
  // skipped for the next older step-<N>, each skip said in `skipped`. Other refusals (another
  // model, another config) and an explicit path's damage still throw. nullopt: nothing to resume.
  struct Resumed {
    std::string path;
    TrainingState state;
    std::vector<std::string> skipped;  // "skipped checkpoint <path>: <why>"
  };
  [[nodiscard]] std::optional<Resumed> LoadForResume(const std::string& resume, Model& model,
                                                     torch::optim::Optimizer& optimizer,
                                                     const common::Config& config) const;

  [[nodiscard]] const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  int keep_;
};

// CRC-32 of every parameter's bytes, in order: equal digests mean bit-identical parameters.
[[nodiscard]] std::string ParameterDigest(const std::vector<at::Tensor>& parameters);

}  // namespace trainer

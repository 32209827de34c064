#pragma once
// What an attempt actually saved, for outcome.json: the checkpoint that the job's
// checkpoints/latest names (common/job_layout.h; the bundled trainer writes it last, after the
// checkpoint is complete) and whether it was written during this attempt. A stop that ended
// badly (a worker killed) may still have saved its checkpoint; this says which.

#include <optional>
#include <string>

namespace runner {

struct SavedCheckpoint {
  std::string name;           // "step-000022"
  double written_at = 0;      // Unix seconds (the mtime of `latest`)
  bool this_attempt = false;  // written after the attempt started
};

// Reads <job_dir>/checkpoints/latest; nullopt when there is none (no checkpoints, or a worker
// that does not write them).
[[nodiscard]] std::optional<SavedCheckpoint> ReadSavedCheckpoint(const std::string& job_dir,
                                                                 double attempt_started_at);

// One sentence for people: "checkpoint step-000022, written during this attempt" ...
[[nodiscard]] std::string DescribeSaved(const std::optional<SavedCheckpoint>& saved);

}  // namespace runner

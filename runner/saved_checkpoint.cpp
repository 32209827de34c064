#include "runner/saved_checkpoint.h"

#include <sys/stat.h>

#include <fstream>

#include "common/job_layout.h"

namespace runner {

std::optional<SavedCheckpoint> ReadSavedCheckpoint(const std::string& job_dir,
                                                   double attempt_started_at) {
  namespace layout = common::job_layout;
  const std::string latest = job_dir + "/" + layout::kCheckpoints + "/" + layout::kLatestCheckpoint;
  std::ifstream in(latest);
  SavedCheckpoint saved;
  if (!(in >> saved.name)) return std::nullopt;
  struct stat st {};
  if (stat(latest.c_str(), &st) != 0) return std::nullopt;
  saved.written_at =
      static_cast<double>(st.st_mtim.tv_sec) + static_cast<double>(st.st_mtim.tv_nsec) * 1e-9;
  saved.this_attempt = saved.written_at >= attempt_started_at;
  return saved;
}

std::string DescribeSaved(const std::optional<SavedCheckpoint>& saved) {
  if (!saved) return "no checkpoint saved";
  if (saved->this_attempt) return "checkpoint " + saved->name + " saved during this attempt";
  return "no checkpoint saved during this attempt; the newest is " + saved->name +
         ", from an earlier attempt";
}

}  // namespace runner

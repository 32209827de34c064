#include "common/job_layout.h"

#include <climits>

#include "common/parse_int.h"

namespace common::job_layout {

std::string JobDirName(const std::string& name, const std::string& id) { return name + "-" + id; }

std::string AttemptDirName(int attempt) { return kAttemptPrefix + std::to_string(attempt); }

std::optional<int> ParseAttemptDirName(std::string_view name) {
  const std::string_view prefix = kAttemptPrefix;
  if (name.substr(0, prefix.size()) != prefix) return std::nullopt;
  std::optional<int64_t> k = ParseInt64(name.substr(prefix.size()));
  if (!k || *k < 0 || *k > INT_MAX) return std::nullopt;
  return static_cast<int>(*k);
}

std::string RankLogName(int rank) { return "rank-" + std::to_string(rank) + ".log"; }

std::string ProgressFileName(int agent) { return "agent-" + std::to_string(agent) + ".json"; }

std::string RunnerLogName(const std::string& host, int index) {
  return "runner-" + host + (index >= 0 ? "-" + std::to_string(index) : "") + ".log";
}

}  // namespace common::job_layout

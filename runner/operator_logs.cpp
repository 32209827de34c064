// `runner logs`: which files of which attempt, merged once or followed (runner/log_merge.h reads
// and merges them).

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <thread>

#include "common/errors.h"
#include "common/job_layout.h"
#include "common/parse_int.h"
#include "runner/job_files.h"
#include "runner/job_snapshot.h"
#include "runner/log_merge.h"
#include "runner/operator_cli.h"
#include "runner/rank_list.h"

namespace runner {

namespace {

namespace layout = common::job_layout;

struct LogJob {
  std::string dir;
  int world_size = 0;
  std::map<int, std::string> hosts;  // rank -> host, from the manifest
};

// rank-<R>.log and runner-*.log names in `dir`.
void ListLogs(const std::string& dir, std::vector<int>* ranks, std::vector<std::string>* runners) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return;
  while (dirent* entry = readdir(d)) {
    const std::string name = entry->d_name;
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".log") == 0) {
      if (name.rfind("rank-", 0) == 0) {
        const std::optional<int64_t> rank = common::ParseInt64(name.substr(5, name.size() - 9));
        if (rank && *rank >= 0 && *rank <= INT_MAX &&
            layout::RankLogName(static_cast<int>(*rank)) == name)
          ranks->push_back(static_cast<int>(*rank));
      } else if (name.rfind("runner-", 0) == 0) {
        runners->push_back(name);
      }
    }
  }
  closedir(d);
  std::sort(ranks->begin(), ranks->end());
  std::sort(runners->begin(), runners->end());
}

std::string AttemptDir(const LogJob& job, int attempt) {
  return job.dir + "/" + layout::AttemptDirName(attempt);
}

int ChooseAttempt(const LogJob& job, const JobRef& ref, const LogsOptions& o) {
  const std::vector<int> attempts = ListAttempts(job.dir);
  if (o.attempt) {
    if (std::find(attempts.begin(), attempts.end(), *o.attempt) == attempts.end()) {
      throw common::UsageError("--attempt " + std::to_string(*o.attempt) + ": no " +
                               layout::AttemptDirName(*o.attempt) + "/ in " + job.dir +
                               (attempts.empty()
                                    ? " (no attempt has started yet)"
                                    : " (attempts there: " + FormatRankList(attempts) + ")"));
    }
    return *o.attempt;
  }
  if (ref.attempt) return *ref.attempt;
  for (;;) {
    if (const std::optional<int> current = CurrentAttempt(job.dir)) return *current;
    if (!o.follow) {
      throw common::UsageError(job.dir +
                               " has no attempt-<k>/ yet: the job has not started "
                               "its workers; try again, or add --follow to wait for them");
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(kFollowPollS));
  }
}

// Every selected rank must have a log (or, while following, belong to the job).
void CheckRanks(const LogJob& job, const LogsOptions& o, int attempt) {
  if (!o.ranks) return;
  std::vector<int> have;
  std::vector<std::string> runners;
  ListLogs(AttemptDir(job, attempt), &have, &runners);
  std::vector<int> missing;
  for (int r : *o.ranks) {
    const bool in_job = job.world_size > 0 && r < job.world_size;
    if (!std::binary_search(have.begin(), have.end(), r) && !(o.follow && in_job))
      missing.push_back(r);
  }
  if (missing.empty()) return;
  throw common::UsageError(
      "--rank: no log for rank" + std::string(missing.size() > 1 ? "s " : " ") +
      FormatRankList(missing) + " in " + AttemptDir(job, attempt) +
      (have.empty() ? " (it holds no rank logs yet)"
                    : " (rank logs there: " + FormatRankList(have) + ")") +
      (job.world_size > 0 ? "; the job has ranks 0-" + std::to_string(job.world_size - 1) : ""));
}

// Opens the sources of `attempt` not opened yet, in rank order, then the agents' logs.
void AddSources(const LogJob& job, const LogsOptions& o, int attempt, std::set<std::string>& open,
                std::vector<LogSource>& sources) {
  const std::string dir = AttemptDir(job, attempt);
  std::vector<int> ranks;
  std::vector<std::string> runners;
  ListLogs(dir, &ranks, &runners);
  for (int r : ranks) {
    if (o.ranks && !std::binary_search(o.ranks->begin(), o.ranks->end(), r)) continue;
    const std::string path = dir + "/" + layout::RankLogName(r);
    if (!open.insert(path).second) continue;
    const auto host = job.hosts.find(r);
    sources.emplace_back(
        path, (host == job.hosts.end() ? "?" : host->second) + ":" + std::to_string(r), true);
  }
  for (const std::string& name : o.runner_logs ? runners : std::vector<std::string>()) {
    const std::string path = dir + "/" + name;
    if (open.insert(path).second)
      sources.emplace_back(path, name.substr(7, name.size() - 11) + ":runner", false);
  }
}

// The status word of the attempt's outcome.json, "" while it has none.
std::string AttemptResult(const LogJob& job, int attempt) {
  const std::optional<std::string> text =
      ReadFileIfExists(AttemptDir(job, attempt) + "/" + layout::kOutcome);
  if (!text) return "";
  const nlohmann::json outcome = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  const bool restarting = outcome.is_object() && outcome.value("status", "") == "restarting";
  return restarting ? "restarting" : "ended";
}

// Follows one attempt until it has ended and its files are drained; returns its result.
std::string FollowAttempt(const LogJob& job, const LogsOptions& o, int attempt, std::ostream& out) {
  std::vector<LogSource> sources;
  std::set<std::string> open;
  bool ended = false;
  for (;;) {
    AddSources(job, o, attempt, open, sources);
    const size_t read = MergeAvailable(sources, o.grep, false, out);
    out.flush();
    const std::string result = AttemptResult(job, attempt);
    if (!result.empty()) {
      // After the end, one quiet look more: the agents write their last lines just after it.
      if (ended && read == 0) {
        MergeAvailable(sources, o.grep, true, out);
        out.flush();
        return result;
      }
      ended = true;
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(kFollowPollS));
  }
}

}  // namespace

int RunLogs(const LogsOptions& o, std::ostream& out) {
  const JobRef ref = ResolveJobDir(o.job);
  const JobSnapshot manifest = ReadJobManifest(ref.dir);
  LogJob job{ref.dir, manifest.world_size, {}};
  for (const ManifestAgent& a : manifest.agents) {
    for (int r = a.first_rank; r < a.first_rank + a.workers; ++r) job.hosts[r] = a.host;
  }
  int attempt = ChooseAttempt(job, ref, o);
  CheckRanks(job, o, attempt);
  if (!o.follow) {
    std::vector<LogSource> sources;
    std::set<std::string> open;
    AddSources(job, o, attempt, open, sources);
    MergeAvailable(sources, o.grep, true, out);
    return 0;
  }
  const bool follow_restarts = !o.attempt && !ref.attempt;
  while (FollowAttempt(job, o, attempt, out) == "restarting" && follow_restarts) {
    while (CurrentAttempt(job.dir).value_or(attempt) <= attempt)
      std::this_thread::sleep_for(std::chrono::duration<double>(kFollowPollS));
    attempt = *CurrentAttempt(job.dir);
  }
  return 0;
}

}  // namespace runner

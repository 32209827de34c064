#pragma once
// `runner status`: a job's state judged from a JobSnapshot (runner/job_snapshot.h) at a moment,
// as text for people and as one JSON object for programs (README.md, "For operators", documents
// both). Pure: the snapshot and the time in, text out.

#include <optional>
#include <string>
#include <vector>

#include "runner/job_snapshot.h"

namespace runner {

// The agents rewrite their progress files every kProgressRefreshS while their workers run; a file
// older than kProgressStaleS (three refreshes missed) means its agent may be gone.
inline constexpr double kProgressRefreshS = 2.0;
inline constexpr double kProgressStaleS = 3 * kProgressRefreshS;
// Older than this without an outcome.json: the agent died without a word (SIGKILL, the OOM killer,
// a node failure); an agent that ends, even on SIGTERM or SIGQUIT, writes its outcome.
inline constexpr double kProgressDeadS = 60.0;

struct JobSummary {
  // starting (no attempt yet), running, hung, ended (succeeded or failed), stopped, requeued,
  // restarting (an attempt failed and the next one is on its way), died (every agent's progress
  // file older than kProgressDeadS and no outcome.json).
  std::string state;
  std::string headline;              // "running, attempt 1, for 5m03s (job started 12m ago)"
  std::vector<std::string> details;  // the hang verdict, the first failure, the reason
  bool over = false;                 // nothing more will happen by itself (--watch stops)
  bool stopping = false;             // agents are stopping their workers
  std::optional<double> elapsed_s;   // of the current attempt
  std::optional<double> job_elapsed_s;
  std::optional<RankState> slowest;  // lowest step, then the longest without progress
  std::optional<double> eta_s;
  std::vector<std::string> warnings;  // silent agents, files that did not parse
};

[[nodiscard]] JobSummary Summarize(const JobSnapshot& s, double now);

// A rank's age now, from the age its agent wrote at `written` (while the job runs).
[[nodiscard]] std::optional<double> AgeNow(const std::optional<double>& age, const RankState& r,
                                           double now, bool live);

// The text `runner status` prints.
[[nodiscard]] std::string StatusText(const JobSnapshot& s, double now);
// The object `runner status --json` prints (one line).
[[nodiscard]] std::string StatusJson(const JobSnapshot& s, double now);

}  // namespace runner

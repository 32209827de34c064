#pragma once
// The job directory's layout, the one description that the runner (which creates it) and the
// trainer (which writes into it) share (README.md, "The job directory"):
//
//   <log_root>/<name>-<id>/            JobDirName
//     job.yaml  manifest.json  events.jsonl  outcome.json
//     checkpoints/                     shared by every attempt
//     attempt-<k>/                     one per start (restarts, requeues): AttemptDirName
//       runner-<host>.log  rank-<R>.log  train.log  metrics.jsonl  loss.svg
//       progress/agent-<A>.json  diagnosis/diagnosis.json
//     current -> attempt-<k>           the newest attempt
//
// Names only, relative to the directory that holds them; callers join them with '/'.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace common::job_layout {

// In the job directory.
inline constexpr char kJobConfig[] = "job.yaml";      // the resolved config, with origins
inline constexpr char kManifest[] = "manifest.json";  // who ran what, where
inline constexpr char kEvents[] = "events.jsonl";     // one JSON object a line, appended
inline constexpr char kOutcome[] = "outcome.json";    // how the job (or an attempt) ended
inline constexpr char kCheckpoints[] = "checkpoints";
inline constexpr char kCurrent[] = "current";  // symlink to the newest attempt-<k>
// In checkpoints/: the file naming the newest complete checkpoint ("step-000120\n").
inline constexpr char kLatestCheckpoint[] = "latest";

// In an attempt directory.
inline constexpr char kTrainLog[] = "train.log";     // rank 0's progress lines
inline constexpr char kMetrics[] = "metrics.jsonl";  // the same numbers for programs
inline constexpr char kLossCurve[] = "loss.svg";     // drawn at the end
inline constexpr char kAttemptPrefix[] = "attempt-";
inline constexpr char kProgressDir[] = "progress";    // agent-<A>.json: each agent's workers now
inline constexpr char kDiagnosisDir[] = "diagnosis";  // the hang verdict and the ranks' stacks
inline constexpr char kDiagnosis[] = "diagnosis.json";

// A file name has at most 255 bytes (NAME_MAX). The job directory "<name>-<id>" keeps room for a
// job id of up to kMaxJobIdLength characters (a local id is 20, a Slurm job id about 10).
inline constexpr size_t kMaxJobIdLength = 32;
inline constexpr size_t kMaxJobNameLength = 255 - 1 - kMaxJobIdLength;

// "<name>-<id>", the job directory under job.log_root.
[[nodiscard]] std::string JobDirName(const std::string& name, const std::string& id);
// "attempt-<k>".
[[nodiscard]] std::string AttemptDirName(int attempt);
// k for a name "attempt-<k>" (k a strict non-negative integer), else nullopt.
[[nodiscard]] std::optional<int> ParseAttemptDirName(std::string_view name);
// "rank-<R>.log": worker R's output.
[[nodiscard]] std::string RankLogName(int rank);
// "agent-<A>.json" in an attempt's progress/ directory.
[[nodiscard]] std::string ProgressFileName(int agent);
// "runner-<host>.log", or "runner-<host>-<index>.log" with index >= 0 when several agents share
// the host.
[[nodiscard]] std::string RunnerLogName(const std::string& host, int index = -1);

}  // namespace common::job_layout

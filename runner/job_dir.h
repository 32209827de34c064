#pragma once
// The per-job log directory operators tail (README.md, "The job directory"; the names are
// common/job_layout.h's, the writers common/atomic_file.h's):
//
//   <log_root>/<name>-<id>/            mode 0750 (not world-readable)
//     job.yaml  manifest.json  events.jsonl  outcome.json
//     checkpoints/                     shared by every attempt
//     attempt-<k>/                     one per start (restarts, requeues)
//       runner-<host>.log  rank-<R>.log  train.log ...
//     current -> attempt-<k>           the newest attempt, switched atomically
//
// Every agent of the job opens the same directory (a shared filesystem on clusters; creation is
// idempotent). Files are written line by line so `tail -f` shows lines as they happen.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/log_write_errors.h"
#include "common/log_writer.h"

namespace runner {

class JobDir {
 public:
  // Creates (or reuses) <root>/<name>-<id> and checkpoints/. Throws common::EnvironmentError
  // naming the path and the reason when it cannot.
  JobDir(const std::string& root, const std::string& name, const std::string& id);

  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] std::string AttemptPath(int attempt) const;
  // The attempt number after the newest attempt-<k> already there (0 for a new job).
  [[nodiscard]] int NextAttempt() const;
  // Whether attempt-<k>/ holds its outcome.json (an attempt whose agents were killed has none).
  [[nodiscard]] bool HasOutcome(int attempt) const;
  // Creates attempt-<k>/ and points `current` at it (atomically: symlink, then rename).
  void BeginAttempt(int attempt) const;

  // Writes `content` to `relative` atomically (temporary file, fsync, rename).
  void WriteFile(const std::string& relative, const std::string& content) const;
  // Appends one JSON line to events.jsonl (one write(2) call, O_APPEND). A line the disk has
  // no room for is counted in the write errors (set_write_errors), not thrown: the job goes on.
  void AppendEvent(const common::JsonObject& event) const;
  void set_write_errors(common::LogWriteErrors* errors) { write_errors_ = errors; }

 private:
  std::string path_;
  common::LogWriteErrors* write_errors_ = nullptr;
};

// Held by the node-0 agent for the whole job: a second set of agents on the same job directory (a
// batch script that starts the runner twice, a job id reused) is refused instead of mixing its
// files with the first's. flock on <dir>/.runner.lock (released by the kernel when the holder
// dies, so a requeue or a start after a crash gets it), holding "host <h> pid <p> since <time>".
class JobLock {
 public:
  // Throws common::EnvironmentError naming the directory and the holder when another runner
  // holds it.
  JobLock(const std::string& job_dir, const std::string& host);
  ~JobLock();
  JobLock(const JobLock&) = delete;
  JobLock& operator=(const JobLock&) = delete;

 private:
  int fd_ = -1;
};

// The fields every events.jsonl line starts with: time, event, attempt, agent, host, node.
[[nodiscard]] common::JsonObject EventHeader(const std::string& name, int attempt, int agent,
                                             const std::string& host, int node);

// Writes `text` (whole lines) to the agent's console (stderr); what cannot be written is counted
// in `errors` (when given) as "console (stderr)": every line not wholly written.
void WriteToConsole(const std::string& text, common::LogWriteErrors* errors);

// A worker's output turned into timestamped lines of its rank-<R>.log; keeps the last lines for
// outcome.json. Partial lines wait for their newline (or Finish). The lines of one read go to
// `writer`'s thread in one batch (common/log_writer.h): the agent never writes the file itself,
// so a slow or stalled disk never stalls it; what the writer cannot take in time, or the disk
// has no room for, is dropped, counted in `errors`, and marked by a note line in the file.
class RankLog {
 public:
  // mirror_prefix non-empty: every line also goes to stderr with that prefix (the agent's console
  // shows global rank 0 that way, so `runner` and Slurm's .out file show progress); the console
  // is written here, not by the writer (docs/ARCHITECTURE.md, "The log path"). No `writer`: the
  // log has its own, with the default options.
  RankLog(const std::string& path, size_t tail_lines = 20, std::string mirror_prefix = "",
          common::LogWriteErrors* errors = nullptr, int rank = -1,
          common::LogWriter* writer = nullptr);
  RankLog(RankLog&&) = delete;
  RankLog& operator=(RankLog&&) = delete;
  RankLog(const RankLog&) = delete;
  ~RankLog();

  // Sees every line of the worker's own (not the runner's notes) with the stamp it was written
  // with; the agent picks the console's warning and error lines this way.
  using LineObserver = std::function<void(const std::string& stamp, const std::string& text)>;
  void set_observer(LineObserver observer) { observer_ = std::move(observer); }

  void Feed(const char* data, size_t size);
  // Writes a line the agent itself adds ("exited with code 3"), marked as the runner's.
  void Note(const std::string& line);
  void Finish();  // flushes a last partial line
  [[nodiscard]] const std::deque<std::string>& tail() const { return tail_; }

 private:
  void WriteLine(const std::string& line, bool note = false);
  void WriteLines(const std::vector<std::string>& lines, bool note);
  std::unique_ptr<common::LogWriter> own_writer_;
  common::LogWriter* writer_;
  int file_ = -1;
  common::LogWriteErrors* errors_ = nullptr;
  std::string partial_;
  std::deque<std::string> tail_;
  size_t tail_lines_;
  std::string mirror_prefix_;
  LineObserver observer_;
};

// Every attempt that ends, ends with its outcome.json: without one, its agents died without a
// word (SIGKILL, the OOM killer, a node failure). The warning for attempt `attempt`'s start when
// the one before it has none; "" when it has one (or there is none before).
[[nodiscard]] std::string UnrecordedAttempt(const JobDir& dir, int attempt);

}  // namespace runner

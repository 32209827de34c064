#pragma once
// What could not be written to the job's logs: a full disk (ENOSPC), a quota (EDQUOT), a failing
// disk (EIO) under job.log_root, or a disk that stalled (common/log_writer.h). A worker waits for
// its logs only while the disk keeps up; a line that cannot be written is dropped and counted here,
// per file, and the first failure of each file is said at once (the agent's log and console) with
// what to do. outcome.json lists the counts, and a job whose workers all succeeded but whose logs
// lost lines ends with common::kExitLogsIncomplete instead of 0.
//
// Thread-safe: the agent's rank logs (written by their writer thread, common/log_writer.h), its
// events.jsonl lines and its own log (written from the store's thread too) all count into one
// tally.

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace common {

struct LogWriteError {
  std::string file;         // the path written to, or "console (stderr)"
  int rank = -1;            // the worker whose rank log it is; -1 for other files
  int error = 0;            // errno of the first failure
  uint64_t bytes_lost = 0;  // bytes of lines that did not reach the file (or reached it cut)
  uint64_t lines_lost = 0;  // lines dropped or cut
  // Why, when not the errno's text: "the disk did not keep up (...)" for lines dropped because
  // writes to the file were too slow (error is then EAGAIN).
  std::string reason;
};

// The line said once per file when its first write fails: the file, the errno text, and what to
// do (free space in job.log_root, or point job.log_root elsewhere; for a `reason`, a slow disk:
// check it, raise job.log_buffer_mib, or point job.log_root elsewhere).
[[nodiscard]] std::string DescribeFirstWriteError(const std::string& file, int error,
                                                  const std::string& reason = "");
// The reason of `e` in words: its reason, else its errno's text.
[[nodiscard]] std::string WriteErrorText(const LogWriteError& e);
// "1200 lines (96.0 KiB) lost: rank-0.log (No space left on device), events.jsonl (...)".
[[nodiscard]] std::string SummarizeWriteErrors(const std::vector<LogWriteError>& errors);

class LogWriteErrors {
 public:
  using Reporter = std::function<void(const std::string& line)>;

  // Where first failures are said (the agent logs them). Called outside the tally's lock, never
  // for a Record with `report` false.
  void SetReporter(Reporter reporter);

  // Counts a failed write of `lines` lines (`bytes` bytes) to `file`. The first failure of a file
  // goes to the reporter with DescribeFirstWriteError, unless `report` is false (the agent's own
  // log sink, which says it on stderr itself: logging from inside it would deadlock).
  // `reason`: see LogWriteError. Returns whether this was the file's first failure.
  bool Record(const std::string& file, int error, uint64_t bytes, uint64_t lines, int rank = -1,
              bool report = true, const std::string& reason = "");

  [[nodiscard]] std::vector<LogWriteError> Snapshot() const;  // in the order first seen
  [[nodiscard]] bool Any() const;
  // A new attempt: the counts stay (the job's outcome.json lists every line its logs lost, the
  // earlier attempts' files, named by path, included, and what the last attempt lost after its
  // record was taken: its attempt_ended event, its agent's closing lines); a file that failed
  // before is said again at its next failure.
  void NewAttempt();

 private:
  mutable std::mutex mutex_;
  Reporter reporter_;
  std::vector<LogWriteError> errors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, bool> said_;  // files whose failure was said this attempt
};

}  // namespace common

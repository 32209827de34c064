#pragma once
// The thread that writes the agent's log files (the rank logs, the agent's own log), so that a
// stalled disk under job.log_root (an NFS server that hangs for a minute) stalls neither the
// agent's loop (supervision, heartbeats, signals) nor, through a full pipe, its workers for more
// than stall_s; a slow disk that keeps up is waited for, as any slow reader would be.
//
// The caller hands over complete lines (Submit): each file has a bounded queue
// (LogWriterOptions::max_queued_bytes, counting what is being written). When it is full, Submit
// waits while the disk keeps up (the thread ends writes), so a fast producer on a working disk
// loses nothing; once the thread has ended no write for stall_s (a stalled disk) it waits no
// more: what does not fit is dropped, whole lines, and counted in LogWriteErrors ("the disk did
// not keep up"); when the queue has room again one note line marks the gap in the file:
//
//   <stamp> [runner] 1200 lines (96000 bytes) of this log were dropped between <t1> and <t2>:
//   the disk did not keep up (a write to it had taken 12.5 s)
//
// While the disk keeps up nothing is dropped and every file gets its lines in order. A write that
// fails (a full disk: ENOSPC, EDQUOT, EIO) drops the lines it held, counts them, and the next
// write that works starts with a "... were lost here: cannot write: <error>" note.
//
// Flush waits (bounded) until everything accepted is written; what is still queued when the wait
// ends is counted as lost ("still not written ..."), so the counts in outcome.json are right even
// when the disk never comes back. The destructor flushes the same way; a thread stuck in write(2)
// is then left behind (detached, owning its files) instead of holding the agent's exit.

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/log_write_errors.h"

namespace common {

// Where the writer writes one file: write(2) on a descriptor; unit tests use fakes.
class LogSink {
 public:
  virtual ~LogSink() = default;
  // As write(2): the bytes written, or -1 with errno set.
  virtual ssize_t Write(const char* data, size_t size) = 0;
};

// Writes to `fd` and closes it at the end.
[[nodiscard]] std::unique_ptr<LogSink> FdLogSink(int fd);

struct LogWriterOptions {
  // Per file: job.log_buffer_mib. A single batch larger than it is taken whole when the file's
  // queue is empty (one pipe read of short lines is a few hundred KiB once timestamped).
  size_t max_queued_bytes = 4u << 20;
  double flush_timeout_s = 10;  // the destructor's Flush: job.log_flush_timeout_s
  // A full queue makes Submit wait while the thread ends writes (a disk that keeps up, however
  // slowly: the worker waits for its pipe as for any slow reader), at most until the thread has
  // ended none for this long (a stalled disk): then it drops.
  double stall_s = 1;
};

class LogWriter {
 public:
  // Lines dropped or lost are counted in `errors` (when given), which must outlive the writer.
  explicit LogWriter(LogWriterOptions options = {}, LogWriteErrors* errors = nullptr);
  ~LogWriter();
  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;

  // A file to write; returns its handle for Submit. `name` (its path) names it in the counts;
  // `rank`: the worker whose log it is (-1 for other files); `report` false: the first failure
  // is said on stderr directly, not through the counts' reporter (the agent's own log, whose
  // reporter writes into it).
  int AddFile(std::unique_ptr<LogSink> sink, const std::string& name, int rank = -1,
              bool report = true);

  // Hands over `bytes`: `lines` whole lines, each ending in '\n', read at `stamp` (used in the
  // note of a gap; "" takes the time now when one is needed). Waits at most stall_s (see above).
  // What does not fit in the file's queue then is dropped (whole lines, the last ones), counted.
  void Submit(int file, std::string_view stamp, std::string bytes, size_t lines);

  // Waits up to `timeout_s` until every accepted line is written (notes of open gaps included);
  // what is still queued then is counted as lost and the writer accepts nothing more. Returns
  // whether everything was written.
  bool Flush(double timeout_s);
  bool Flush() { return Flush(options_.flush_timeout_s); }

  [[nodiscard]] const LogWriterOptions& options() const { return options_; }

 private:
  struct State;
  LogWriterOptions options_;
  std::shared_ptr<State> state_;  // shared with the thread, which may outlive us (see above)
};

}  // namespace common

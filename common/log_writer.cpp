#include "common/log_writer.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "common/logging.h"

namespace common {

namespace {

class DescriptorSink : public LogSink {
 public:
  explicit DescriptorSink(int fd) : fd_(fd) {}
  ~DescriptorSink() override {
    if (fd_ >= 0) close(fd_);
  }
  DescriptorSink(const DescriptorSink&) = delete;
  DescriptorSink& operator=(const DescriptorSink&) = delete;
  ssize_t Write(const char* data, size_t size) override { return write(fd_, data, size); }

 private:
  int fd_;
};

double Steady() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string Seconds(double s) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", s);
  return text;
}

// Where the file ends after a failed write: at a line's end, or inside a line of the worker's
// (counted among the lost) or inside a note of ours (not counted: the note is said again).
enum class Cut { kNone, kLine, kNote };

// What one write of a batch lost.
struct Loss {
  int error = 0;
  uint64_t bytes = 0;
  uint64_t lines = 0;
};

}  // namespace

struct LogWriter::State {
  struct File {
    std::unique_ptr<LogSink> sink;
    std::string name;
    int rank = -1;
    bool report = true;
    // Under the mutex: the queue (pending, and what the thread is writing now).
    std::string pending;
    uint64_t pending_lines = 0;
    uint64_t queued_bytes = 0;  // pending + being written
    uint64_t writing_lines = 0;
    bool writing = false;
    double write_started = 0;
    // Lines dropped since the last note of a gap (the disk did not keep up).
    uint64_t drop_lines = 0;
    uint64_t drop_bytes = 0;
    std::string drop_first;
    std::string drop_last;
    double drop_stall_s = 0;
    // The thread's alone: lines a failed write lost since the last note of them.
    uint64_t gap_lines = 0;
    uint64_t gap_bytes = 0;
    int gap_error = 0;
    Cut cut = Cut::kNone;
  };

  explicit State(LogWriterOptions o, LogWriteErrors* e) : options(o), errors(e) {}
  void Run();
  [[nodiscard]] File* NextPending();
  Loss WriteOut(File& f, const std::string& out, uint64_t lines);
  void Count(File& f, const Loss& loss, const std::string& reason);
  void Drop(File& f, std::string_view stamp, uint64_t bytes, uint64_t lines);
  void QueueDropNote(File& f, const std::string& stamp);

  LogWriterOptions options;
  LogWriteErrors* errors;
  std::mutex mutex;
  std::condition_variable work;  // something to write, or stop
  std::condition_variable idle;  // a write ended
  std::vector<std::unique_ptr<File>> files;
  size_t next = 0;
  bool stop = false;
  bool abandoned = false;      // a Flush timed out: nothing more is accepted
  double progress = Steady();  // when the thread last ended a write, or was given work idle
  bool busy = false;           // the thread has work queued or under way
};

// Under the mutex. A file's first failure goes to the reporter, or to stderr for a file whose
// reporter writes into it.
void LogWriter::State::Count(File& f, const Loss& loss, const std::string& reason) {
  if (errors == nullptr || (loss.bytes == 0 && loss.lines == 0)) return;
  const bool first =
      errors->Record(f.name, loss.error, loss.bytes, loss.lines, f.rank, f.report, reason);
  if (first && !f.report) {
    const std::string text =
        Timestamp() + " error " + DescribeFirstWriteError(f.name, loss.error, reason) + "\n";
    (void)!write(STDERR_FILENO, text.data(), text.size());
  }
}

LogWriter::State::File* LogWriter::State::NextPending() {
  for (size_t i = 0; i < files.size(); ++i) {
    File& f = *files[(next + i) % files.size()];
    if (!f.pending.empty()) {
      next = (next + i + 1) % files.size();
      return &f;
    }
  }
  return nullptr;
}

void LogWriter::State::Run() {
  std::unique_lock<std::mutex> lock(mutex);
  for (;;) {
    if (NextPending() == nullptr) busy = false;
    work.wait(lock, [&] { return stop || NextPending() != nullptr; });
    File* f = NextPending();
    if (f == nullptr) {
      if (stop) return;
      continue;
    }
    const std::string out = std::move(f->pending);
    f->pending.clear();
    const uint64_t lines = f->pending_lines;
    f->pending_lines = 0;
    f->writing_lines = lines;
    f->writing = true;
    f->write_started = Steady();
    lock.unlock();
    const Loss loss = WriteOut(*f, out, lines);
    lock.lock();
    f->writing = false;
    f->writing_lines = 0;
    progress = Steady();
    f->queued_bytes -= std::min<uint64_t>(f->queued_bytes, out.size());
    // After a Flush that timed out, its loss was counted there (and the counts may be gone).
    if (!abandoned) Count(*f, loss, "");
    idle.notify_all();
  }
}

// Writes `out` (`lines` lines); after lines were lost a note of the gap goes first (and a newline
// ends a line the disk cut short). A failure returns what was lost and never retries.
Loss LogWriter::State::WriteOut(File& f, const std::string& out, uint64_t lines) {
  std::string with_note;
  if (f.gap_lines > 0) {
    with_note = (f.cut != Cut::kNone ? "\n" : "") + Timestamp() + " [runner] " +
                std::to_string(f.gap_lines) + " lines (" + std::to_string(f.gap_bytes) +
                " bytes) of this log were lost here" +
                (f.cut == Cut::kLine ? ", the line above among them (cut short)" : "") +
                ": cannot write: " + std::strerror(f.gap_error) + "\n";
  } else if (f.cut != Cut::kNone) {
    with_note = "\n";
  }
  if (!with_note.empty()) with_note += out;
  const std::string& bytes = with_note.empty() ? out : with_note;  // no copy without a note
  const size_t note = bytes.size() - out.size();
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = f.sink->Write(bytes.data() + done, bytes.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      Loss loss{n < 0 ? errno : ENOSPC, std::min<uint64_t>(bytes.size() - done, out.size()), 0};
      // Lines of `out` not (wholly) written: those whose newline did not make it.
      const size_t kept_end = done > note ? done - note : 0;
      loss.lines = std::min<uint64_t>(
          lines, static_cast<uint64_t>(
                     std::count(out.begin() + static_cast<ptrdiff_t>(kept_end), out.end(), '\n')));
      if (note > 0 && done >= note) f.gap_lines = f.gap_bytes = 0;  // the note made it
      if (done > 0 && bytes[done - 1] != '\n') f.cut = done > note ? Cut::kLine : Cut::kNote;
      if (done > 0 && bytes[done - 1] == '\n') f.cut = Cut::kNone;
      if (f.gap_lines == 0) f.gap_error = loss.error;
      f.gap_lines += loss.lines;
      f.gap_bytes += loss.bytes;
      return loss;
    }
  }
  f.gap_lines = f.gap_bytes = 0;
  f.cut = Cut::kNone;
  return {};
}

// Under the mutex: `lines` lines (`bytes` bytes) read at `stamp` did not fit.
void LogWriter::State::Drop(File& f, std::string_view stamp, uint64_t bytes, uint64_t lines) {
  const std::string when = stamp.empty() ? Timestamp() : std::string(stamp);
  if (f.drop_lines == 0) f.drop_first = when;
  f.drop_last = when;
  f.drop_lines += lines;
  f.drop_bytes += bytes;
  const double stall = Steady() - progress;
  f.drop_stall_s = std::max(f.drop_stall_s, stall);
  Count(f, {EAGAIN, bytes, lines},
        "the disk did not keep up (a write to it had taken " + Seconds(stall) + " s when its " +
            std::to_string(options.max_queued_bytes) + "-byte buffer was full)");
}

// Under the mutex: the note of the lines dropped since the last one, ahead of what comes next.
void LogWriter::State::QueueDropNote(File& f, const std::string& stamp) {
  if (f.drop_lines == 0) return;
  const std::string note = stamp + " [runner] " + std::to_string(f.drop_lines) + " lines (" +
                           std::to_string(f.drop_bytes) +
                           " bytes) of this log were dropped between " + f.drop_first + " and " +
                           f.drop_last + ": the disk did not keep up (a write to it had taken " +
                           Seconds(f.drop_stall_s) + " s)\n";
  f.pending += note;
  f.pending_lines += 1;
  f.queued_bytes += note.size();
  f.drop_lines = f.drop_bytes = 0;
  f.drop_stall_s = 0;
}

std::unique_ptr<LogSink> FdLogSink(int fd) { return std::make_unique<DescriptorSink>(fd); }

LogWriter::LogWriter(LogWriterOptions options, LogWriteErrors* errors)
    : options_(options), state_(std::make_shared<State>(options, errors)) {
  std::thread([state = state_] { state->Run(); }).detach();
}

LogWriter::~LogWriter() {
  Flush();
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->stop = true;
  state_->work.notify_all();
  // The thread ends by itself (it holds the state); one stuck in write(2) ends when it returns.
}

int LogWriter::AddFile(std::unique_ptr<LogSink> sink, const std::string& name, int rank,
                       bool report) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  auto file = std::make_unique<State::File>();
  file->sink = std::move(sink);
  file->name = name;
  file->rank = rank;
  file->report = report;
  state_->files.push_back(std::move(file));
  return static_cast<int>(state_->files.size()) - 1;
}

void LogWriter::Submit(int file, std::string_view stamp, std::string bytes, size_t lines) {
  const size_t total = bytes.size();
  if (total == 0) return;
  State& s = *state_;
  std::unique_lock<std::mutex> lock(s.mutex);
  State::File& f = *s.files.at(static_cast<size_t>(file));
  if (s.abandoned) return s.Drop(f, stamp, bytes.size(), lines);
  // The note of an open gap takes room too; it is small (about 200 bytes).
  const size_t note = f.drop_lines > 0 ? 256 : 0;
  const auto room = [&]() -> size_t {
    const size_t max = s.options.max_queued_bytes;
    return f.queued_bytes < max ? max - f.queued_bytes : 0;
  };
  // A batch larger than the bound (one pipe read of short lines, timestamped) is taken whole once
  // the file's queue is empty: the bound holds back a disk that does not keep up, not one batch.
  const auto fits = [&] { return note + bytes.size() <= room() || f.queued_bytes == 0; };
  // A disk that keeps up, however slowly, is waited for (the worker's pipe fills and it waits
  // too, as for any slow reader); one whose write has not ended for stall_s is not.
  while (!fits() && !s.abandoned) {
    const double since = Steady() - s.progress;
    if (since >= s.options.stall_s) break;
    s.idle.wait_for(lock, std::chrono::duration<double>(s.options.stall_s - since));
  }
  if (s.abandoned) return s.Drop(f, stamp, bytes.size(), lines);
  size_t keep = 0;
  size_t keep_lines = 0;
  if (fits()) {
    keep = bytes.size();
    keep_lines = lines;
  } else {
    for (size_t nl = bytes.find('\n'); nl != std::string::npos && note + nl + 1 <= room();
         nl = bytes.find('\n', nl + 1)) {
      keep = nl + 1;
      ++keep_lines;
    }
  }
  if (keep > 0) {
    s.QueueDropNote(f, stamp.empty() ? Timestamp() : std::string(stamp));
    if (f.pending.empty() && keep == bytes.size()) {
      f.pending = std::move(bytes);  // the common case: no copy
    } else {
      f.pending.append(bytes, 0, keep);
    }
    f.pending_lines += keep_lines;
    f.queued_bytes += keep;
    // A busy thread looks for more before it waits: only an idle one needs waking (a wake-up
    // per read of a fast worker cost more CPU than the writes).
    if (!s.busy) {
      s.progress = Steady();  // an idle thread's progress counts from now
      s.busy = true;
      s.work.notify_one();
    }
  }
  if (keep < total) s.Drop(f, stamp, total - keep, lines - keep_lines);
}

bool LogWriter::Flush(double timeout_s) {
  State& s = *state_;
  std::unique_lock<std::mutex> lock(s.mutex);
  if (s.abandoned) return false;
  for (auto& f : s.files) {
    if (f->drop_lines > 0 && !s.busy) s.progress = Steady();
    if (f->drop_lines > 0) s.busy = true;
    s.QueueDropNote(*f, Timestamp());
  }
  s.work.notify_one();
  const auto empty = [&] {
    return std::all_of(s.files.begin(), s.files.end(),
                       [](const auto& f) { return f->queued_bytes == 0; });
  };
  if (s.idle.wait_for(lock, std::chrono::duration<double>(std::max(0.0, timeout_s)), empty))
    return true;
  for (auto& f : s.files) {
    if (f->queued_bytes == 0) continue;
    const double stall = f->writing ? Steady() - f->write_started : 0;
    s.Count(*f, {EAGAIN, f->queued_bytes, f->pending_lines + f->writing_lines},
            "still not written " + Seconds(timeout_s) + " s after the end (a write to it had " +
                "taken " + Seconds(stall) + " s)");
    f->queued_bytes -= f->pending.size();
    f->pending.clear();
    f->pending_lines = 0;
  }
  s.abandoned = true;
  return false;
}

}  // namespace common

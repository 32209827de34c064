#include "runner/job_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string_view>

#include "common/atomic_file.h"
#include "common/errors.h"
#include "common/job_layout.h"
#include "common/logging.h"
#include "common/utf8.h"

namespace runner {

namespace {

namespace layout = common::job_layout;

constexpr mode_t kDirMode = 0750;
constexpr mode_t kFileMode = 0640;

[[noreturn]] void Throw(const common::FileError& error) {
  throw common::EnvironmentError("job directory: " + error.Describe() +
                                 "; check job.log_root (it must be writable, and shared by all "
                                 "nodes)");
}

[[noreturn]] void Fail(const std::string& what, const std::string& path) {
  Throw(common::FileError{what, path, errno});
}

void MakeDirs(const std::string& path) {
  std::string partial;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    partial = path.substr(0, slash == std::string::npos ? path.size() : slash);
    if (!partial.empty() && mkdir(partial.c_str(), kDirMode) != 0 && errno != EEXIST)
      Fail("create", partial);
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  struct stat st {};
  if (stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    errno = ENOTDIR;
    Fail("use", path);
  }
}

void Check(const std::optional<common::FileError>& error) {
  if (error) Throw(*error);
}

}  // namespace

JobDir::JobDir(const std::string& root, const std::string& name, const std::string& id)
    : path_(root + "/" + layout::JobDirName(name, id)) {
  MakeDirs(path_);
  MakeDirs(path_ + "/" + layout::kCheckpoints);
}

std::string JobDir::AttemptPath(int attempt) const {
  return path_ + "/" + layout::AttemptDirName(attempt);
}

int JobDir::NextAttempt() const {
  int next = 0;
  if (DIR* dir = opendir(path_.c_str())) {
    while (dirent* entry = readdir(dir)) {
      std::optional<int> k = layout::ParseAttemptDirName(entry->d_name);
      if (k && *k + 1 > next) next = *k + 1;
    }
    closedir(dir);
  }
  return next;
}

bool JobDir::HasOutcome(int attempt) const {
  struct stat st {};
  return stat((AttemptPath(attempt) + "/" + layout::kOutcome).c_str(), &st) == 0;
}

void JobDir::BeginAttempt(int attempt) const {
  MakeDirs(AttemptPath(attempt));
  const std::string link = path_ + "/" + layout::kCurrent;
  const std::string temp = link + ".tmp." + std::to_string(getpid());
  unlink(temp.c_str());
  if (symlink(layout::AttemptDirName(attempt).c_str(), temp.c_str()) != 0) Fail("link", temp);
  if (rename(temp.c_str(), link.c_str()) != 0) Fail("rename", link);
}

void JobDir::WriteFile(const std::string& relative, const std::string& content) const {
  Check(common::WriteFileAtomic(path_ + "/" + relative, content, "", kFileMode));
}

void JobDir::AppendEvent(const common::JsonObject& event) const {
  std::optional<common::FileError> error =
      common::AppendEventLine(path_ + "/" + layout::kEvents, event, kFileMode);
  if (error && error->step == "write") {
    if (write_errors_) write_errors_->Record(error->path, error->error, event.str().size() + 1, 1);
    return;
  }
  Check(error);
}

void WriteToConsole(const std::string& text, common::LogWriteErrors* errors) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(STDERR_FILENO, text.data() + done, text.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      // Every line not wholly written is lost (a batch holds many).
      const auto lines = std::count(text.begin() + static_cast<ptrdiff_t>(done), text.end(), '\n');
      if (errors) {
        errors->Record("console (stderr)", n < 0 ? errno : ENOSPC, text.size() - done,
                       static_cast<uint64_t>(std::max<ptrdiff_t>(lines, 1)));
      }
      return;
    }
  }
}

common::JsonObject EventHeader(const std::string& name, int attempt, int agent,
                               const std::string& host, int node) {
  common::JsonObject e;
  e.Add("time", common::Timestamp())
      .Add("event", name)
      .Add("attempt", attempt)
      .Add("agent", agent)
      .Add("host", host)
      .Add("node", node);
  return e;
}

RankLog::RankLog(const std::string& path, size_t tail_lines, std::string mirror_prefix,
                 common::LogWriteErrors* errors, int rank, common::LogWriter* writer)
    : writer_(writer),
      errors_(errors),
      tail_lines_(tail_lines),
      mirror_prefix_(std::move(mirror_prefix)) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, kFileMode);
  if (fd < 0) Fail("open", path);
  if (writer_ == nullptr) {
    own_writer_ = std::make_unique<common::LogWriter>(common::LogWriterOptions{}, errors);
    writer_ = own_writer_.get();
  }
  file_ = writer_->AddFile(common::FdLogSink(fd), path, rank);
}

RankLog::~RankLog() { Finish(); }

// The lines of one read share its stamp and go out in one batch (a worker printing a million
// short lines cost a write and a clock reading per line).
void RankLog::Feed(const char* data, size_t size) {
  partial_.append(data, size);
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl = partial_.find('\n'); nl != std::string::npos; nl = partial_.find('\n', start)) {
    lines.push_back(partial_.substr(start, nl - start));
    start = nl + 1;
  }
  partial_.erase(0, start);
  // A worker printing megabytes without a newline must not grow us without bound.
  constexpr size_t kMaxLine = 64 * 1024;
  if (partial_.size() > kMaxLine) {
    lines.push_back(std::move(partial_));
    partial_.clear();
  }
  WriteLines(lines, /*note=*/false);
}

void RankLog::Note(const std::string& line) { WriteLine("[runner] " + line, /*note=*/true); }

void RankLog::Finish() {
  if (!partial_.empty()) {
    WriteLine(partial_);
    partial_.clear();
  }
}

void RankLog::WriteLine(const std::string& line, bool note) { WriteLines({line}, note); }

void RankLog::WriteLines(const std::vector<std::string>& lines, bool note) {
  if (lines.empty()) return;
  const std::string stamp = common::Timestamp();
  std::string out;
  std::string console;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view text = lines[i];
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    if (lines.size() - i <= tail_lines_) {
      tail_.emplace_back(text);
      if (tail_.size() > tail_lines_) tail_.pop_front();
    }
    out.append(stamp).append(" ").append(text).append("\n");
    if (!mirror_prefix_.empty()) {
      // The console is a terminal (or Slurm's .out file read with one): no escapes from workers.
      console += stamp + " " + mirror_prefix_ + common::PrintableText(std::string(text)) + "\n";
    }
    if (observer_ && !note) observer_(stamp, std::string(text));
  }
  writer_->Submit(file_, stamp, std::move(out), lines.size());
  if (!console.empty()) WriteToConsole(console, errors_);
}

JobLock::JobLock(const std::string& job_dir, const std::string& host) {
  const std::string path = job_dir + "/.runner.lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (fd_ < 0) {
    throw common::EnvironmentError("cannot open '" + path + "': " + std::strerror(errno) +
                                   "; check that job.log_root is on a writable filesystem");
  }
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    char holder[256] = {};
    const ssize_t n = ::pread(fd_, holder, sizeof holder - 1, 0);
    std::string who = n > 0 ? std::string(holder, static_cast<size_t>(n)) : "another runner";
    while (!who.empty() && who.back() == '\n') who.pop_back();
    ::close(fd_);
    fd_ = -1;
    throw common::EnvironmentError(
        "the job directory " + job_dir + " is in use by a running job (" + who +
        "): two runs share its job name and id (the runner started twice in one batch script, or "
        "a SLURM_JOB_ID or TORCHELASTIC_RUN_ID reused); fix: give this run another --job-name, "
        "or wait for that one to end");
  }
  const std::string mine = "host " + host + " pid " + std::to_string(::getpid()) + " since " +
                           common::Timestamp() + "\n";
  if (::ftruncate(fd_, 0) == 0) (void)!::pwrite(fd_, mine.data(), mine.size(), 0);
}

JobLock::~JobLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the lock
}

std::string UnrecordedAttempt(const JobDir& dir, int attempt) {
  if (attempt == 0 || dir.HasOutcome(attempt - 1)) return "";
  const std::string previous = common::job_layout::AttemptDirName(attempt - 1);
  return previous + " ended without a record (no " + previous + "/" + common::job_layout::kOutcome +
         "): its agents died without a word (SIGKILL, the OOM killer or a node failure?); its "
         "last lines are in " +
         previous + "/";
}

}  // namespace runner

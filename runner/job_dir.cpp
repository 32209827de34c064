#include "runner/job_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/errors.h"
#include "common/logging.h"

namespace runner {

namespace {

constexpr mode_t kDirMode = 0750;
constexpr mode_t kFileMode = 0640;

[[noreturn]] void Fail(const std::string& what, const std::string& path) {
  throw common::EnvironmentError(
      "job directory: cannot " + what + " '" + path + "': " + std::strerror(errno) +
      "; check job.log_root (it must be writable, and shared by all nodes)");
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

void WriteAll(int fd, const std::string& text, const std::string& path) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      Fail("write", path);
    }
    done += static_cast<size_t>(n);
  }
}

}  // namespace

JobDir::JobDir(const std::string& root, const std::string& name, const std::string& id)
    : path_(root + "/" + name + "-" + id) {
  MakeDirs(path_);
  MakeDirs(path_ + "/checkpoints");
}

std::string JobDir::AttemptPath(int attempt) const {
  return path_ + "/attempt-" + std::to_string(attempt);
}

int JobDir::NextAttempt() const {
  int next = 0;
  if (DIR* dir = opendir(path_.c_str())) {
    while (dirent* entry = readdir(dir)) {
      std::string name = entry->d_name;
      if (name.rfind("attempt-", 0) != 0) continue;
      try {
        size_t used = 0;
        int k = std::stoi(name.substr(8), &used);
        if (used == name.size() - 8 && k + 1 > next) next = k + 1;
      } catch (const std::exception&) {
      }
    }
    closedir(dir);
  }
  return next;
}

void JobDir::BeginAttempt(int attempt) const {
  MakeDirs(AttemptPath(attempt));
  const std::string link = path_ + "/current";
  const std::string temp = link + ".tmp." + std::to_string(getpid());
  unlink(temp.c_str());
  if (symlink(("attempt-" + std::to_string(attempt)).c_str(), temp.c_str()) != 0)
    Fail("link", temp);
  if (rename(temp.c_str(), link.c_str()) != 0) Fail("rename", link);
}

void JobDir::WriteFile(const std::string& relative, const std::string& content) const {
  const std::string target = path_ + "/" + relative;
  const std::string temp = target + ".tmp." + std::to_string(getpid());
  int fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, kFileMode);
  if (fd < 0) Fail("create", temp);
  try {
    WriteAll(fd, content, temp);
  } catch (...) {
    close(fd);
    unlink(temp.c_str());
    throw;
  }
  fsync(fd);
  close(fd);
  if (rename(temp.c_str(), target.c_str()) != 0) Fail("rename", target);
}

void JobDir::AppendEvent(const common::JsonObject& event) const {
  const std::string target = path_ + "/events.jsonl";
  int fd = open(target.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, kFileMode);
  if (fd < 0) Fail("open", target);
  const std::string line = event.str() + "\n";
  (void)!write(fd, line.data(), line.size());
  close(fd);
}

RankLog::RankLog(const std::string& path, size_t tail_lines, std::string mirror_prefix)
    : tail_lines_(tail_lines), mirror_prefix_(std::move(mirror_prefix)) {
  fd_ = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, kFileMode);
  if (fd_ < 0) Fail("open", path);
}

RankLog::RankLog(RankLog&& other) noexcept
    : fd_(other.fd_),
      partial_(std::move(other.partial_)),
      tail_(std::move(other.tail_)),
      tail_lines_(other.tail_lines_),
      mirror_prefix_(std::move(other.mirror_prefix_)) {
  other.fd_ = -1;
}

RankLog::~RankLog() {
  if (fd_ >= 0) {
    Finish();
    close(fd_);
  }
}

void RankLog::Feed(const char* data, size_t size) {
  partial_.append(data, size);
  size_t start = 0;
  for (size_t nl = partial_.find('\n'); nl != std::string::npos; nl = partial_.find('\n', start)) {
    WriteLine(partial_.substr(start, nl - start));
    start = nl + 1;
  }
  partial_.erase(0, start);
  // A worker printing megabytes without a newline must not grow us without bound.
  constexpr size_t kMaxLine = 64 * 1024;
  if (partial_.size() > kMaxLine) {
    WriteLine(partial_);
    partial_.clear();
  }
}

void RankLog::Note(const std::string& line) { WriteLine("[runner] " + line); }

void RankLog::Finish() {
  if (!partial_.empty()) {
    WriteLine(partial_);
    partial_.clear();
  }
}

void RankLog::WriteLine(const std::string& line) {
  std::string text = line;
  if (!text.empty() && text.back() == '\r') text.pop_back();
  tail_.push_back(text);
  if (tail_.size() > tail_lines_) tail_.pop_front();
  const std::string stamp = common::Timestamp();
  const std::string out = stamp + " " + text + "\n";
  (void)!write(fd_, out.data(), out.size());
  if (!mirror_prefix_.empty()) {
    const std::string mirrored = stamp + " " + mirror_prefix_ + text + "\n";
    (void)!write(STDERR_FILENO, mirrored.data(), mirrored.size());
  }
}

}  // namespace runner

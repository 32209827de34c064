#include "runner/log_merge.h"

#include <fcntl.h>
#include <unistd.h>

#include <ostream>

#include "runner/job_files.h"

namespace runner {

namespace {
constexpr size_t kChunk = 65536;
}  // namespace

LogSource::LogSource(std::string path, std::string label, bool rank_log)
    : path_(std::move(path)), label_(std::move(label)), rank_log_(rank_log) {}

LogSource::LogSource(LogSource&& other) noexcept
    : path_(std::move(other.path_)),
      label_(std::move(other.label_)),
      rank_log_(other.rank_log_),
      fd_(other.fd_),
      buffer_(std::move(other.buffer_)),
      lines_(std::move(other.lines_)),
      last_time_ms_(other.last_time_ms_) {
  other.fd_ = -1;
}

LogSource::~LogSource() {
  if (fd_ >= 0) close(fd_);
}

size_t LogSource::Fill(bool final) {
  if (fd_ < 0) fd_ = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  size_t total = 0;
  while (fd_ >= 0 && lines_.empty()) {
    char chunk[kChunk];
    const ssize_t n = read(fd_, chunk, sizeof(chunk));
    if (n <= 0) {
      if (final) Split(true);  // at the end of a finished file: its last unterminated line
      break;
    }
    buffer_.append(chunk, static_cast<size_t>(n));
    total += static_cast<size_t>(n);
    Split(false);
  }
  return total;
}

void LogSource::Split(bool final) {
  size_t start = 0;
  for (size_t nl = buffer_.find('\n'); nl != std::string::npos; nl = buffer_.find('\n', start)) {
    Queue(buffer_.substr(start, nl - start));
    start = nl + 1;
  }
  buffer_.erase(0, start);
  if (final && !buffer_.empty()) {
    Queue(buffer_);
    buffer_.clear();
  }
}

void LogSource::Queue(std::string text) {
  // A line without a timestamp of its own (a file written by hand) goes with the one before.
  if (const std::optional<int64_t> ms = ParseTimestampMs(text)) last_time_ms_ = *ms;
  if (rank_log_) {
    const std::string host = BannerHost(text);
    const size_t colon = label_.rfind(':');
    if (!host.empty() && colon != std::string::npos) label_ = host + label_.substr(colon);
  }
  lines_.push_back({last_time_ms_, label_ + " " + text});
}

std::string LogSource::Pop() {
  std::string text = std::move(lines_.front().text);
  lines_.pop_front();
  return text;
}

std::string BannerHost(const std::string& line) {
  const size_t banner = line.find(" [runner] rank ");
  if (banner == std::string::npos || banner > 40) return "";
  const size_t host = line.find(" host ", banner);
  const size_t pid = line.find(" pid ", banner);
  if (host == std::string::npos || pid == std::string::npos || pid < host + 6) return "";
  return line.substr(host + 6, pid - host - 6);
}

size_t MergeAvailable(std::vector<LogSource>& sources, const std::string& grep, bool final,
                      std::ostream& out) {
  size_t read = 0;
  while (true) {
    LogSource* next = nullptr;
    for (LogSource& source : sources) {
      if (!source.has_line()) read += source.Fill(final);
      if (source.has_line() && (next == nullptr || source.front_time() < next->front_time()))
        next = &source;
    }
    if (next == nullptr) return read;
    const std::string line = next->Pop();
    if (grep.empty() || line.find(grep) != std::string::npos) out << line << "\n";
  }
}

}  // namespace runner

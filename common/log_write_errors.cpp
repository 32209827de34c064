#include "common/log_write_errors.h"

#include <cstdio>
#include <cstring>

namespace common {

namespace {

std::string Size(uint64_t bytes) {
  char text[32];
  if (bytes < 1024) return std::to_string(bytes) + " B";
  const double kib = static_cast<double>(bytes) / 1024;
  if (kib < 1024) {
    std::snprintf(text, sizeof text, "%.1f KiB", kib);
  } else {
    std::snprintf(text, sizeof text, "%.1f MiB", kib / 1024);
  }
  return text;
}

}  // namespace

std::string WriteErrorText(const LogWriteError& e) {
  return e.reason.empty() ? std::string(std::strerror(e.error)) : e.reason;
}

std::string DescribeFirstWriteError(const std::string& file, int error, const std::string& reason) {
  if (!reason.empty()) {
    // Lines still queued when the wait at the end ran out, or dropped while the disk stalled.
    const bool at_end = reason.rfind("still not written", 0) == 0;
    return "cannot write to " + file + " in time: " + reason +
           (at_end ? "; they are counted as lost in outcome.json"
                   : "; its lines are being dropped while it is slow (counted in outcome.json, a "
                     "note in the file marks each gap) and the workers go on") +
           "; fix: check the filesystem under job.log_root (a slow or hung file server?), " +
           (at_end ? "raise job.log_flush_timeout_s" : "raise job.log_buffer_mib") +
           ", or point job.log_root (--log-root) at a faster disk";
  }
  return "cannot write to " + file + ": " + std::strerror(error) +
         "; its lines are being dropped (counted in outcome.json) and the workers go on; fix: "
         "free space under job.log_root, or point job.log_root (--log-root) at a filesystem with "
         "room";
}

std::string SummarizeWriteErrors(const std::vector<LogWriteError>& errors) {
  uint64_t lines = 0;
  uint64_t bytes = 0;
  std::string files;
  for (const LogWriteError& e : errors) {
    lines += e.lines_lost;
    bytes += e.bytes_lost;
    const size_t slash = e.file.rfind('/');
    files += (files.empty() ? "" : ", ") +
             (slash == std::string::npos ? e.file : e.file.substr(slash + 1)) + " (" +
             WriteErrorText(e) + ")";
  }
  return std::to_string(lines) + " lines (" + Size(bytes) + ") lost: " + files;
}

void LogWriteErrors::SetReporter(Reporter reporter) {
  std::lock_guard<std::mutex> lock(mutex_);
  reporter_ = std::move(reporter);
}

bool LogWriteErrors::Record(const std::string& file, int error, uint64_t bytes, uint64_t lines,
                            int rank, bool report, const std::string& reason) {
  Reporter reporter;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = index_.find(file);
    if (it != index_.end()) {
      errors_[it->second].bytes_lost += bytes;
      errors_[it->second].lines_lost += lines;
    } else {
      index_[file] = errors_.size();
      errors_.push_back({file, rank, error, bytes, lines, reason});
    }
    if (said_[file]) return false;
    said_[file] = true;
    if (report) reporter = reporter_;
  }
  if (reporter) reporter(DescribeFirstWriteError(file, error, reason));
  return true;
}

std::vector<LogWriteError> LogWriteErrors::Snapshot() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return errors_;
}

bool LogWriteErrors::Any() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return !errors_.empty();
}

void LogWriteErrors::NewAttempt() {
  std::lock_guard<std::mutex> lock(mutex_);
  said_.clear();
}

}  // namespace common

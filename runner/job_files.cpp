#include "runner/job_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "common/errors.h"
#include "common/job_layout.h"

namespace runner {

namespace {

namespace fs = std::filesystem;
namespace layout = common::job_layout;

[[noreturn]] void Unreadable(const std::string& path, int error) {
  throw common::EnvironmentError(
      "cannot read '" + path + "': " + std::strerror(error) +
      (error == EACCES ? "; job directories are mode 0750: run this as the job's user or a "
                         "member of its group"
                       : ""));
}

bool Exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

bool LooksLikeJobDir(const std::string& dir) {
  for (const char* name : {layout::kManifest, layout::kJobConfig, layout::kEvents}) {
    if (Exists(dir + "/" + name)) return true;
  }
  return !ListAttempts(dir).empty();
}

}  // namespace

JobRef ResolveJobDir(const std::string& given) {
  std::error_code error;
  const fs::path real = fs::canonical(given, error);
  if (error) {
    if (error.value() == ENOENT || error.value() == ENOTDIR) {
      throw common::UsageError("job directory '" + given +
                               "' does not exist; give a job directory such as "
                               "logs/<job-name>-<job-id> (job.log_root holds them)");
    }
    Unreadable(given, error.value());
  }
  if (!fs::is_directory(real, error)) {
    throw common::UsageError("'" + given +
                             "' is a file, not a job directory; give a directory "
                             "such as logs/<job-name>-<job-id>");
  }
  if (DIR* dir = opendir(real.c_str())) {
    closedir(dir);
  } else {
    Unreadable(given, errno);
  }
  const std::optional<int> attempt = layout::ParseAttemptDirName(real.filename().string());
  if (attempt && LooksLikeJobDir(real.parent_path().string())) {
    // `current` means whichever attempt is current, now and later.
    const bool current =
        fs::path(given).lexically_normal().filename() == layout::kCurrent ||
        fs::path(given).lexically_normal().parent_path().filename() == layout::kCurrent;
    return {real.parent_path().string(), current ? std::nullopt : attempt};
  }
  if (!LooksLikeJobDir(real.string())) {
    throw common::UsageError("'" + given + "' is not a job directory: it holds no " +
                             layout::kManifest + ", " + layout::kJobConfig + ", " +
                             layout::kEvents + " or attempt-<k>/; give a directory such as " +
                             "logs/<job-name>-<job-id>");
  }
  return {real.string(), std::nullopt};
}

std::vector<int> ListAttempts(const std::string& dir) {
  std::vector<int> attempts;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* entry = readdir(d)) {
      const std::optional<int> k = layout::ParseAttemptDirName(entry->d_name);
      if (k && Exists(dir + "/" + entry->d_name)) attempts.push_back(*k);
    }
    closedir(d);
  }
  std::sort(attempts.begin(), attempts.end());
  return attempts;
}

std::optional<int> CurrentAttempt(const std::string& dir) {
  char target[PATH_MAX];
  const std::string link = dir + "/" + layout::kCurrent;
  const ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
  if (n > 0) {
    const std::string name = fs::path(std::string(target, static_cast<size_t>(n))).filename();
    const std::optional<int> k = layout::ParseAttemptDirName(name);
    if (k && Exists(dir + "/" + name)) return k;
  }
  const std::vector<int> attempts = ListAttempts(dir);
  if (attempts.empty()) return std::nullopt;
  return attempts.back();
}

std::optional<std::string> ReadFileIfExists(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    Unreadable(path, errno);
  }
  std::string text;
  char buffer[65536];
  ssize_t n = 0;
  while ((n = read(fd, buffer, sizeof(buffer))) > 0) text.append(buffer, static_cast<size_t>(n));
  const int error = errno;
  close(fd);
  if (n < 0) Unreadable(path, error);
  return text;
}

std::string ReadTail(const std::string& path, size_t max_bytes) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return "";
    Unreadable(path, errno);
  }
  struct stat st {};
  fstat(fd, &st);
  const off_t size = st.st_size;
  const off_t start =
      size > static_cast<off_t>(max_bytes) ? size - static_cast<off_t>(max_bytes) : 0;
  std::string text(static_cast<size_t>(size - start), '\0');
  const ssize_t n = pread(fd, text.data(), text.size(), start);
  close(fd);
  text.resize(n > 0 ? static_cast<size_t>(n) : 0);
  if (start > 0) {
    const size_t newline = text.find('\n');
    text.erase(0, newline == std::string::npos ? text.size() : newline + 1);
  }
  return text;
}

std::string ReadHead(const std::string& path, size_t max_bytes) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return "";
    Unreadable(path, errno);
  }
  std::string text(max_bytes, '\0');
  const ssize_t n = pread(fd, text.data(), text.size(), 0);
  close(fd);
  text.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return text;
}

std::optional<double> ModifiedAt(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return std::nullopt;
  return static_cast<double>(st.st_mtim.tv_sec) + static_cast<double>(st.st_mtim.tv_nsec) * 1e-9;
}

namespace {

bool Digits(std::string_view s, size_t at, size_t count, int64_t* value) {
  if (at + count > s.size()) return false;
  int64_t v = 0;
  for (size_t i = at; i < at + count; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *value = v;
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

}  // namespace

std::optional<int64_t> ParseTimestampMs(std::string_view s) {
  int64_t y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!Digits(s, 0, 4, &y) || s.size() < 19 || s[4] != '-' || !Digits(s, 5, 2, &mo) ||
      s[7] != '-' || !Digits(s, 8, 2, &d) || (s[10] != 'T' && s[10] != ' ') ||
      !Digits(s, 11, 2, &h) || s[13] != ':' || !Digits(s, 14, 2, &mi) || s[16] != ':' ||
      !Digits(s, 17, 2, &sec) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
      sec > 60)
    return std::nullopt;
  size_t i = 19;
  int64_t millis = 0;
  if (i < s.size() && (s[i] == '.' || s[i] == ',')) {
    int64_t scale = 100;
    for (++i; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i, scale /= 10)
      millis += (s[i] - '0') * scale;
  }
  int64_t offset_min = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int64_t oh = 0, om = 0;
    const bool colon = i + 3 < s.size() && s[i + 3] == ':';
    if (!Digits(s, i + 1, 2, &oh) || !Digits(s, i + (colon ? 4 : 3), 2, &om)) return std::nullopt;
    offset_min = (s[i] == '-' ? -1 : 1) * (oh * 60 + om);
  }
  const int64_t seconds = DaysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
  return (seconds - offset_min * 60) * 1000 + millis;
}

std::string FormatDuration(double seconds) {
  const auto s = static_cast<int64_t>(std::llround(std::max(0.0, seconds)));
  char text[32];
  if (s < 60) {
    std::snprintf(text, sizeof(text), "%llds", static_cast<long long>(s));
  } else if (s < 3600) {
    std::snprintf(text, sizeof(text), "%lldm%02llds", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  } else if (s < 86400) {
    std::snprintf(text, sizeof(text), "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>(s % 3600 / 60));
  } else {
    std::snprintf(text, sizeof(text), "%lldd%02lldh", static_cast<long long>(s / 86400),
                  static_cast<long long>(s % 86400 / 3600));
  }
  return text;
}

}  // namespace runner

#include "common/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace common {

namespace {

// The step that failed ("write" or "fsync") and its errno, or nothing. A filesystem that cannot
// fsync at all (EINVAL, ENOTSUP: some FUSE and network filesystems) is not a failure.
std::optional<std::pair<const char*, int>> WriteAllAndSync(int fd, std::string_view text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::make_pair("write", errno);
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0 && errno != EINVAL && errno != ENOTSUP) return std::make_pair("fsync", errno);
  return std::nullopt;
}

}  // namespace

std::string FileError::Describe() const {
  return "cannot " + step + " '" + path + "': " + std::strerror(error);
}

std::optional<FileError> WriteFileAtomic(const std::string& path, std::string_view content,
                                         const std::string& temp_path, mode_t mode) {
  const std::string temp =
      temp_path.empty() ? path + ".tmp." + std::to_string(getpid()) : temp_path;
  int fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return FileError{"create", temp, errno};
  const auto failed = WriteAllAndSync(fd, content);
  close(fd);
  if (failed) {
    unlink(temp.c_str());
    return FileError{failed->first, temp, failed->second};
  }
  if (rename(temp.c_str(), path.c_str()) != 0) {
    const int rename_error = errno;
    unlink(temp.c_str());
    return FileError{"rename", path, rename_error};
  }
  return std::nullopt;
}

std::optional<FileError> AppendEventLine(const std::string& path, const JsonObject& event,
                                         mode_t mode) {
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, mode);
  if (fd < 0) return FileError{"open", path, errno};
  // A line cut short before (a full disk, here or on another agent) gets its newline first, so
  // the next event never glues onto it.
  struct stat st {};
  char last = '\n';
  if (fstat(fd, &st) == 0 && st.st_size > 0) (void)!pread(fd, &last, 1, st.st_size - 1);
  const std::string line = (last == '\n' ? "" : "\n") + event.str() + "\n";
  ssize_t n = 0;
  do {
    n = write(fd, line.data(), line.size());
  } while (n < 0 && errno == EINTR);
  // A short write is a full disk met mid-line: the next write would say ENOSPC.
  const int error = n < 0 ? errno : ENOSPC;
  close(fd);
  if (n != static_cast<ssize_t>(line.size())) return FileError{"write", path, error};
  return std::nullopt;
}

}  // namespace common

#include "common/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace common {

namespace {

// 0, or the errno of the write(2) or fsync(2) that failed.
int WriteAllAndSync(int fd, std::string_view text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    done += static_cast<size_t>(n);
  }
  return fsync(fd) == 0 ? 0 : errno;
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
  const int error = WriteAllAndSync(fd, content);
  close(fd);
  if (error != 0) {
    unlink(temp.c_str());
    return FileError{"write", temp, error};
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
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, mode);
  if (fd < 0) return FileError{"open", path, errno};
  const std::string line = event.str() + "\n";
  (void)!write(fd, line.data(), line.size());
  close(fd);
  return std::nullopt;
}

}  // namespace common

#include "trainer/checkpoint_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <torch/serialize/output-archive.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>

#include "trainer/checkpoint.h"

namespace trainer {

std::string Hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%08x", v);
  return buf;
}

std::string StepName(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "step-%06lld", static_cast<long long>(step));
  return buf;
}

void FailIo(const std::string& what, const std::string& path, int err) {
  throw CheckpointError(
      "checkpoint: cannot " + what + " '" + path + "': " + std::strerror(err) +
          (err == ENOSPC || err == EDQUOT || err == EFBIG
               ? "; the disk (or quota) is full: free space or point job.log_root elsewhere; "
                 "the previous checkpoint is intact"
               : ""),
      common::kExitEnvironment);
}

void FsyncPath(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

void RemoveTree(const std::string& path) {
  if (DIR* dir = opendir(path.c_str())) {
    while (dirent* e = readdir(dir)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      std::string child = path + "/" + name;
      struct stat st {};
      if (lstat(child.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        RemoveTree(child);
      } else {
        unlink(child.c_str());
      }
    }
    closedir(dir);
  }
  rmdir(path.c_str());
}

std::vector<std::string> ListNames(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> out;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name.rfind(prefix, 0) == 0) out.push_back(name);
    }
    closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

FileRecord WriteArchive(torch::serialize::OutputArchive& archive, const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) FailIo("create", path, errno);
  FileRecord record;
  int error = 0;
  // After a failed write the callback still claims every byte: LibTorch's writer throws from its
  // destructor (and aborts the process) when told otherwise. The error is reported below instead.
  archive.save_to([&](const void* data, size_t size) -> size_t {
    if (error != 0) return size;
    const char* bytes = static_cast<const char*>(data);
    size_t done = 0;
    while (done < size) {
      ssize_t n = write(fd, bytes + done, size - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        error = errno;
        return size;
      }
      done += static_cast<size_t>(n);
    }
    record.crc = static_cast<uint32_t>(
        crc32(record.crc, reinterpret_cast<const Bytef*>(data), static_cast<uInt>(size)));
    record.bytes += size;
    // A test knob: widen the window in which a crash leaves a half-written checkpoint.
    if (const char* delay = std::getenv("TRAINER_TEST_CHECKPOINT_DELAY_MS")) {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(delay)));
    }
    return size;
  });
  if (error == 0 && fsync(fd) != 0) error = errno;
  close(fd);
  if (error != 0) FailIo("write", path, error);
  return record;
}

void WriteSmallFile(const std::string& path, const std::string& text) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) FailIo("create", path, errno);
  size_t done = 0;
  int err = 0;
  while (done < text.size() && err == 0) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n == 0) {
      err = ENOSPC;
    } else if (errno != EINTR) {
      err = errno;
    }
  }
  if (err == 0 && fsync(fd) != 0 && errno != EINVAL && errno != ENOTSUP) err = errno;
  close(fd);
  if (err != 0) {
    unlink(path.c_str());
    FailIo("write", path, err);
  }
}

FileRecord Measure(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  FileRecord record;
  char buffer[1 << 16];
  while (in) {
    in.read(buffer, sizeof(buffer));
    const std::streamsize n = in.gcount();
    if (n <= 0) break;
    record.crc = static_cast<uint32_t>(
        crc32(record.crc, reinterpret_cast<const Bytef*>(buffer), static_cast<uInt>(n)));
    record.bytes += static_cast<uint64_t>(n);
  }
  return record;
}

}  // namespace trainer

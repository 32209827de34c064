#pragma once
// The file layer under checkpoints (trainer/checkpoint.h): archives written through our own
// writes (so a full disk is ours to report) with each file's size and CRC-32 computed on the way,
// small files written and fsync'd, directories listed, fsync'd and removed. Every failure is a
// CheckpointError with exit code kExitEnvironment naming the path and the errno text, plus the
// fix when the disk or quota is full.

#include <cstdint>
#include <string>
#include <vector>

namespace torch::serialize {
class OutputArchive;
}

namespace trainer {

// A file's size and CRC-32, as state.yaml records them.
struct FileRecord {
  uint64_t bytes = 0;
  uint32_t crc = 0;
};

// "0000abcd".
[[nodiscard]] std::string Hex32(uint32_t value);

// "step-000120" (more digits past 999999).
[[nodiscard]] std::string StepName(int64_t step);

// Throws CheckpointError: "checkpoint: cannot <what> '<path>': <strerror(err)>" (+ the fix for
// ENOSPC, EDQUOT, EFBIG).
[[noreturn]] void FailIo(const std::string& what, const std::string& path, int err);

// Serialises `archive` into `path` (created, written, fsync'd) and returns its record.
[[nodiscard]] FileRecord WriteArchive(torch::serialize::OutputArchive& archive,
                                      const std::string& path);

// Writes `text` to `path` and fsyncs it; on failure removes it and throws (FailIo).
void WriteSmallFile(const std::string& path, const std::string& text);

// The size and CRC-32 of what `path` holds now (0 bytes when it cannot be read).
[[nodiscard]] FileRecord Measure(const std::string& path);

// fsync of a file or directory; errors ignored (best effort on the way to a rename).
void FsyncPath(const std::string& path);

// rm -rf, errors ignored.
void RemoveTree(const std::string& path);

// The names in `dir` that start with `prefix`, sorted.
[[nodiscard]] std::vector<std::string> ListNames(const std::string& dir, const std::string& prefix);

}  // namespace trainer

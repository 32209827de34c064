#pragma once
// Reading a job directory from outside the job (runner status, runner logs): which directory a
// path given on the command line means, its attempts, files read whole or by their tail, and the
// timestamps every line of the directory starts with. The layout is common/job_layout.h's.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace runner {

// A job directory named on the command line.
struct JobRef {
  std::string dir;             // the job directory, absolute
  std::optional<int> attempt;  // the attempt, when the path named attempt-<k>/ (not `current`)
};

// The job directory, its `current` link or one of its attempt-<k> directories (a trailing slash
// or symlinks on the way are fine). Throws common::UsageError naming the path when it does not
// exist or is not a job directory (saying what is missing), common::EnvironmentError when it
// cannot be read (permissions).
[[nodiscard]] JobRef ResolveJobDir(const std::string& given);

// The attempt-<k> directories of job directory `dir`, ascending.
[[nodiscard]] std::vector<int> ListAttempts(const std::string& dir);
// The attempt `current` points at, else the newest attempt-<k>, else nullopt (none started).
[[nodiscard]] std::optional<int> CurrentAttempt(const std::string& dir);

// The whole file; nullopt when it does not exist. Throws common::EnvironmentError naming the
// path for any other failure.
[[nodiscard]] std::optional<std::string> ReadFileIfExists(const std::string& path);
// The last `max_bytes` of the file from the first whole line in them ("" when it does not exist).
[[nodiscard]] std::string ReadTail(const std::string& path, size_t max_bytes);
// The first `max_bytes` of the file ("" when it does not exist).
[[nodiscard]] std::string ReadHead(const std::string& path, size_t max_bytes);
// The file's modification time in Unix seconds; nullopt when it does not exist.
[[nodiscard]] std::optional<double> ModifiedAt(const std::string& path);

// The Unix time in milliseconds of a timestamp at the start of `text` as the job directory's
// files write them ("2026-12-02T10:00:00.123+00:00", common::Timestamp(); seconds and fractions
// of any length, "Z" or an offset); nullopt when `text` does not start with one.
[[nodiscard]] std::optional<int64_t> ParseTimestampMs(std::string_view text);

// "12s", "4m05s", "1h02m", "3d04h" for a duration in seconds (negative counts as 0).
[[nodiscard]] std::string FormatDuration(double seconds);

}  // namespace runner

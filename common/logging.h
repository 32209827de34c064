#pragma once
// Loggers whose every line makes sense alone in a file someone tails at 3 a.m.:
//   2026-11-26T04:40:01.123+00:00 info  [runner vm node=0 agent=0] started worker rank 1 (pid 812)
// Lines go to the console (stderr) and, once the job directory exists, to a file, flushed at once.

#include <spdlog/logger.h>

#include <memory>
#include <string>

#include "common/log_write_errors.h"

namespace common {

// A logger named `who` ("runner vm node=0 agent=0") writing to stderr only.
[[nodiscard]] std::shared_ptr<spdlog::logger> MakeConsoleLogger(const std::string& who);

// Points `logger`'s file sink at `path` (appended to; replaces an earlier file sink), written by
// a thread of its own (common/log_writer.h). Throws common::EnvironmentError naming the path when
// it cannot be opened. A line that cannot be written (a full disk) is dropped and counted in
// `errors` (when given); the file's first failure is said on stderr.
void SetFileSink(spdlog::logger& logger, const std::string& path,
                 std::shared_ptr<LogWriteErrors> errors = nullptr);

// Waits (at most `timeout_s`) until `logger`'s file sink has written every line it took: before
// the process ends without destructors (an abort), so the line saying why is in the file.
void FlushFileSink(spdlog::logger& logger, double timeout_s);

// The timestamp format every file of the job directory uses (RFC 3339, milliseconds, local zone).
[[nodiscard]] std::string Timestamp();

}  // namespace common

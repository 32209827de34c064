#pragma once
// Small files that readers must see whole or not at all (job.yaml, outcome.json, a checkpoint's
// `latest`), and lines appended to a log that several processes share (events.jsonl).
//
// Failures are returned, not thrown: the runner and the trainer word them differently (which
// directory to check, whether the disk is full), so each wraps FileError::Describe() in its own
// exception.

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "common/json.h"

namespace common {

struct FileError {
  std::string step;  // what failed: "create", "write" (or its fsync), "rename", "open"
  std::string path;  // the file it failed on: the temporary file, or for "rename" the target
  int error = 0;     // errno

  // "cannot <step> '<path>': <strerror(error)>"
  [[nodiscard]] std::string Describe() const;
};

// Writes `content` to `path` atomically: a temporary file (`temp_path`; "" = "<path>.tmp.<pid>")
// created with `mode`, every byte written, fsync, close, rename over `path`. The temporary file
// is removed when a step fails. Does not fsync the directory (callers that need the rename to be
// durable do that). nullopt on success.
[[nodiscard]] std::optional<FileError> WriteFileAtomic(const std::string& path,
                                                       std::string_view content,
                                                       const std::string& temp_path = "",
                                                       mode_t mode = 0640);

// Appends `event` as one line to `path` (events.jsonl), created with `mode`, with one write(2) on
// an O_APPEND descriptor, so lines from several processes never interleave. A failed open (step
// "open") and a failed or short write (step "write": a full disk) are returned; callers count a
// lost line rather than stop a job for it. A file that ends inside a line (a write cut short
// before) gets a newline ahead of the event: a cut line stays alone, the next event whole.
[[nodiscard]] std::optional<FileError> AppendEventLine(const std::string& path,
                                                       const JsonObject& event, mode_t mode = 0640);

}  // namespace common

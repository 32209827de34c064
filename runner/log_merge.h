#pragma once
// `runner logs`: the rank logs (and the agents' logs) of an attempt merged into one stream by
// their timestamps, every line prefixed with where it came from ("n1:3 2026-...Z text").
// Files are read in chunks from where the last read stopped, so following a running job
// (--follow) and reading logs of any size take the same path with bounded memory.

#include <cstdint>
#include <deque>
#include <iosfwd>
#include <string>
#include <vector>

namespace runner {

// One log file, read line by line from where the last read stopped.
class LogSource {
 public:
  // `label`: the prefix of its lines ("n1:3"); for a rank log the host is taken from the
  // runner's banner line ("[runner] rank 3/8 ... host n1 ...") when it comes.
  LogSource(std::string path, std::string label, bool rank_log);
  LogSource(LogSource&& other) noexcept;
  LogSource& operator=(LogSource&&) = delete;
  LogSource(const LogSource&) = delete;
  ~LogSource();

  // Reads until a line is queued or nothing more is there now; with `final`, the file is done
  // and its last unterminated line counts. Returns the bytes read.
  size_t Fill(bool final);
  [[nodiscard]] bool has_line() const { return !lines_.empty(); }
  [[nodiscard]] int64_t front_time() const { return lines_.front().time_ms; }
  // "<label> <line>"
  [[nodiscard]] std::string Pop();
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  struct Line {
    int64_t time_ms;
    std::string text;
  };
  void Split(bool final);
  void Queue(std::string text);

  std::string path_;
  std::string label_;
  bool rank_log_;
  int fd_ = -1;
  std::string buffer_;
  std::deque<Line> lines_;
  int64_t last_time_ms_ = 0;
};

// Prints every line the sources have now, merged by time (equal times in the sources' order),
// those holding `grep` only (all when empty). `final`: the files are complete. Returns the bytes
// read.
size_t MergeAvailable(std::vector<LogSource>& sources, const std::string& grep, bool final,
                      std::ostream& out);

// The host in a rank log's banner line, "" when `line` is not one.
[[nodiscard]] std::string BannerHost(const std::string& line);

}  // namespace runner

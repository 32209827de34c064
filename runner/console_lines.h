#pragma once
// What of the workers' output reaches the agent's console (stderr, which is Slurm's --output
// file) besides global rank 0's mirror ("rank 0 | ..."): every local rank's warning and error
// lines, collapsed when several ranks print the same text within a short window:
//
//   2026-12-02T10:00:00.123+00:00 [ranks 0-7 x8] UserWarning: TypedStorage is deprecated
//
// All pure: the agent (runner/worker_runner.cpp) feeds lines and flushes on its wait-loop ticks.
//
// Which lines count (IsWarningOrError), after the line's own prefix is set aside
// (StripLinePrefix: leading timestamps such as "2026-12-02T10:00:00.123+00:00",
// "[2026-12-02 10:00:00,123]" or "10:00:00", and rank tags such as "[rank 3]", "rank 3:",
// "rank 3 |", "[default3]:"):
//   1. it starts with a level word - warn, warning, error, critical or fatal, in any case, bare
//      or in brackets - followed by ':', ']', a space or the end ("WARNING: x", "error: x",
//      "warn  [runner ...]" as spdlog writes levels, "[error] x");
//   2. it holds an upper-case level word standing alone anywhere: WARN, WARNING, ERROR,
//      CRITICAL, FATAL ("NCCL WARN ...", "... ERROR root: ...");
//   3. it holds a bracketed level word in any case anywhere ("[2026-...] [warning] x");
//   4. it holds a word ending in Error, Exception or Warning followed by ':' (Python's
//      "RuntimeError: ...", "UserWarning: ...", "Error: ...");
//   5. it starts with "Traceback (most recent call last)" or "terminate called after throwing".
// Words inside other words do not count ("errors=0", "forewarned", "mean error 0.1").

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace runner {

// `line` without its leading timestamps and rank tags (and the separators after them).
[[nodiscard]] std::string_view StripLinePrefix(std::string_view line);

// Whether `line` (a worker's output line, without the runner's own timestamp) is a warning or
// an error by the rules above.
[[nodiscard]] bool IsWarningOrError(std::string_view line);

// Groups equal warning/error lines (equal once StripLinePrefix has set their prefixes aside)
// that ranks print within `window_s` of the first, and gives one console line per group:
//   "<stamp of the first> [rank 3] <text>", "[rank 3 x2] <text>", "[ranks 0-7 x8] <text>"
// (x: how many lines the group holds). Groups come out in the order their first lines came in.
class ConsoleCollapser {
 public:
  // `shown_rank`: the rank whose every line is on the console already (global rank 0 on its
  // node; -1 for none): a group holding only that rank's lines is not printed again.
  explicit ConsoleCollapser(double window_s = 2.0, int shown_rank = -1, size_t max_groups = 256);

  void set_shown_rank(int rank) { shown_rank_ = rank; }

  // A line of `rank` at `now` (seconds on any steady clock), stamped `stamp` by the agent. More
  // than max_groups open groups: the oldest is due at the next Flush.
  void Add(int rank, std::string_view stamp, std::string_view text, double now);
  // The groups whose window has passed by `now` (every group with `all`), as console lines
  // without a newline, oldest first.
  [[nodiscard]] std::vector<std::string> Flush(double now, bool all = false);
  [[nodiscard]] bool empty() const { return groups_.empty(); }

 private:
  struct Group {
    std::string key;
    std::string stamp;
    std::vector<int> ranks;
    int lines = 0;
    double first = 0;
    bool due = false;
  };
  [[nodiscard]] std::string Describe(const Group& group) const;

  double window_s_;
  int shown_rank_;
  size_t max_groups_;
  std::vector<Group> groups_;  // oldest first
  std::unordered_map<std::string, size_t> index_;
};

}  // namespace runner

#pragma once
// One rank as its agent sees it when the job may be hung: where its heartbeat says it is
// (common/heartbeat.h), how long since it last advanced, and what /proc says of its process.
// Agents send each other their ranks' views (as records) and judge the job from all of them
// (runner/hang_verdict.h).

#include <optional>
#include <string>
#include <vector>

namespace runner {

struct RankView {
  int rank = 0;
  int local_rank = 0;
  int agent = 0;
  int node = 0;
  std::string host;
  int pid = 0;
  bool published = false;  // the worker writes a heartbeat; false: only /proc and its output
  int64_t step = 0;
  std::string phase;
  int64_t collective = 0;
  bool in_collective = false;
  int bucket = 0;
  int buckets = 0;
  double stalled_s = 0;         // since the rank last advanced (heartbeat, else output or CPU)
  double heartbeat_age_s = -1;  // since its last heartbeat update; -1 without one
  double output_age_s = -1;     // since its last line of output; -1 before any
  char proc_state = '?';        // /proc/<pid>/stat
  std::string wchan;
  double cpu_s = 0;         // CPU time used so far
  double cpu_window_s = 0;  // CPU time used while stalled
  bool ended = false;
  std::string status;  // "running", or how it ended

  // "all-reduce #4812 (bucket 2/3)", "data", or "no heartbeat"
  [[nodiscard]] std::string Where() const;
  // "stopped (T)", "sleeping (S) in futex_wait_queue"
  [[nodiscard]] std::string State() const;
};

[[nodiscard]] std::string SerializeRankView(const RankView& view);
// Throws common::CommunicationError naming the field when `text` is not a rank view.
[[nodiscard]] RankView ParseRankView(const std::string& text, const std::string& what);

// The view as a JSON object (diagnosis.json, progress/agent-<A>.json); `where` is Where().
[[nodiscard]] std::string RankViewJson(const RankView& view);

// What agents tell each other about a possible hang, over the notice channel: "my ranks have not
// advanced for the timeout" (suspect, with their views), "they advance again" (clear), and the
// verdict one agent reached (with every view it was judged from, so that an agent that has not
// reached it yet judges the same).
// Suspect and clear go to agent 0 alone (a suspect with the sender's rank views); agent 0 sends
// the verdict's lines, without the views, to every agent.
struct HangMessage {
  enum class Kind { kSuspect, kClear, kVerdict };
  Kind kind = Kind::kSuspect;
  int agent = 0;
  std::string host;
  std::vector<RankView> views;
  std::vector<std::string> lines;  // a verdict's, never empty there

  [[nodiscard]] std::string Serialize() const;
  // nullopt when `text` is another kind of notice; throws common::CommunicationError when it is
  // a malformed hang message.
  [[nodiscard]] static std::optional<HangMessage> Parse(const std::string& text);
};

// "312": seconds rounded to a whole number, as the watchdog's lines show them.
[[nodiscard]] std::string WholeSeconds(double seconds);

// "0-2,5,7-8" for sorted, distinct ranks.
[[nodiscard]] std::string FormatRanks(const std::vector<int>& ranks);

}  // namespace runner

#pragma once
// Where an agent's start-up time goes, step by step (the control plane up: MPI_Init or the TCP
// join; the rendezvous; the job's files), with the bytes each collective moved. Logged once in the
// runner log and recorded in attempt 0's `attempt_started` event, so a slow start at scale can be
// pinned on a step (bench/rendezvous.sh reads it).

#include <cstddef>
#include <string>
#include <vector>

#include "common/json.h"

namespace runner {

class StartupRecord {
 public:
  // `started_at`: the agent's start (Unix seconds), before its control plane.
  explicit StartupRecord(double started_at) : last_(started_at), started_at_(started_at) {}

  // The step that ends now (`now`, Unix seconds): its name and what it moved ("allgather 4 x
  // 180 B").
  void Mark(const std::string& name, double now, const std::string& moved = "");

  // "start-up 0.42 s: control plane 0.12 s, rendezvous 0.20 s (allgather 4 records, 720 B), ..."
  [[nodiscard]] std::string Line() const;
  // {"total_s": 0.42, "steps": [{"step": "rendezvous", "s": 0.2, "moved": "..."}, ...]}
  [[nodiscard]] std::string Json() const;

  // "N records, B bytes" for what a gather or allgather of `records` moved.
  [[nodiscard]] static std::string Moved(const std::string& collective,
                                         const std::vector<std::string>& records);

 private:
  struct Step {
    std::string name;
    double seconds = 0;
    std::string moved;
  };
  std::vector<Step> steps_;
  double last_;
  double started_at_;
};

}  // namespace runner

#pragma once
// Where an agent's start-up time goes, step by step (the control plane up: MPI_Init or the TCP
// join; the rendezvous; the job's files), in wall and CPU seconds, with the bytes each collective
// moved. Logged once in the runner log and recorded in attempt 0's `attempt_started` event, so a
// slow start at scale can be pinned on a step (bench/rendezvous.py reads it). The same record
// times each attempt (its workers' run, then the outcome gather, the job view's broadcast and
// node 0's outcome.json, in `attempt_ended`).

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/json.h"

namespace runner {

class StoreServer;

// A moment on two clocks: Unix seconds, and this process's CPU seconds (user + system, every
// thread: node 0's includes its store thread, which serves the TCP collectives); on node 0, what
// its store has answered so far.
struct StepClock {
  double wall = 0;
  double cpu = 0;
  bool store = false;  // the counts below are a store's
  uint64_t store_replies = 0;
  uint64_t store_reply_bytes = 0;
  [[nodiscard]] static StepClock Now(const StoreServer* store = nullptr);
};

class StartupRecord {
 public:
  // `started`: the agent's start, before its control plane.
  explicit StartupRecord(StepClock started) : last_(started), started_(started) {}

  // The step that ends `now`: its name and what it moved ("gather 4 records, 180 B").
  void Mark(const std::string& name, StepClock now, const std::string& moved = "");

  // "start-up 0.420 s (cpu 0.050 s): control plane 0.120 s (cpu 0.010 s), rendezvous 0.200 s
  // (cpu 0.020 s; gather 4 records, 720 B; store 12 replies, 3 KiB), ..."; `what` names the
  // whole. The store's replies are those of the steps that end with one (node 0).
  [[nodiscard]] std::string Line(const std::string& what = "start-up") const;
  // {"total_s": 0.42, "cpu_s": 0.05, "steps": [{"step": "rendezvous", "s": 0.2, "cpu_s": 0.02,
  // "moved": "...", "store_replies": 12, "store_bytes": 3100}, ...]}
  [[nodiscard]] std::string Json() const;

  // "N records, B bytes" for what a gather or scatter of `records` moved.
  [[nodiscard]] static std::string Moved(const std::string& collective,
                                         const std::vector<std::string>& records);

 private:
  struct Step {
    std::string name;
    double seconds = 0;
    double cpu_seconds = 0;
    std::string moved;
    bool store = false;
    uint64_t store_replies = 0;
    uint64_t store_bytes = 0;
  };
  std::vector<Step> steps_;
  StepClock last_;
  StepClock started_;
};

}  // namespace runner

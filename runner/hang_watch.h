#pragma once
// This agent's side of the hang watchdog: how long since any of its workers last advanced, and
// each worker's view (runner/hang_view.h), from samples taken about once a second through a
// WorkerProbe (the real one reads the heartbeat page, /proc and the rank log's mtime; tests give
// invented observations and times).
//
// A worker advances when its heartbeat's update counter moves; one that publishes no heartbeat
// advances when its log grows or it uses CPU (weaker evidence: a busy loop looks alive). A worker
// that ends counts as a change at that moment. The node's stall is the time since the latest
// change of any of its workers.
//
// The limit that stall is held to depends on where the workers are: while a publishing worker is
// in phase "init" or has only opened its heartbeat ("start": loading, setting up its process
// group) it is `init_timeout_s`; until a publishing worker has finished its first step (or, with no
// heartbeats, for the first `first_step_timeout_s` of the attempt) it is the first-step timeout
// (loading, process-group set-up, warm-up); while a worker is in phase "checkpoint" or "evaluation"
// at least `checkpoint_timeout_s`; otherwise `timeout_s`.

#include <optional>
#include <string>
#include <vector>

#include "common/heartbeat.h"
#include "runner/hang_view.h"
#include "runner/proc_probe.h"

namespace runner {

struct HangOptions {
  double timeout_s = 300;  // launch.hang_timeout_s; 0: the watchdog is off
  double warn_fraction = 0.5;
  double init_timeout_s = 600;
  double first_step_timeout_s = 900;
  double checkpoint_timeout_s = 900;
  double sample_s = 1;  // how often workers are sampled
};

struct WatchedWorker {
  int rank = 0;
  int local_rank = 0;
  int pid = 0;                 // the process the agent started (the shim, runner/process.h)
  std::string heartbeat_path;  // "" when none was created
  std::string log_path;
};

// One sample of one worker.
struct WorkerObservation {
  int pid = 0;  // the worker's own process (under the shim); 0: unknown
  std::optional<common::Heartbeat> heartbeat;
  std::optional<ProcSample> proc;
  double output_unix = -1;  // when its log was last written (Unix seconds); -1 unknown
};

class WorkerProbe {
 public:
  virtual ~WorkerProbe() = default;
  [[nodiscard]] virtual WorkerObservation Observe(const WatchedWorker& worker) = 0;
};

// Reads common::ReadHeartbeat, ReadProcSample and the log file's mtime.
[[nodiscard]] WorkerProbe& SystemWorkerProbe();

class HangWatch {
 public:
  HangWatch(HangOptions options, int agent, int node, std::string host);

  // Times: steady seconds for durations, Unix seconds for output ages.
  void Add(int worker, WatchedWorker watched, double steady_now);
  void Ended(int worker, const std::string& status, double steady_now);
  void Sample(WorkerProbe& probe, double steady_now, double unix_now);

  [[nodiscard]] double Stall(double steady_now) const;
  [[nodiscard]] double Limit(double steady_now) const;
  [[nodiscard]] std::vector<RankView> Views(double steady_now) const;
  [[nodiscard]] const HangOptions& options() const { return options_; }

 private:
  struct Tracked {
    int worker = 0;
    WatchedWorker watched;
    RankView view;
    bool seen_heartbeat = false;
    uint64_t beats = 0;
    double progress_at = 0;  // steady
    double cpu_at_progress = 0;
    double last_cpu = -1;
    double last_output_unix = -1;
    double heartbeat_mono_s = -1;  // the heartbeat's own CLOCK_MONOTONIC stamp
    double sampled_at = 0;
  };
  void Update(Tracked& t, const WorkerObservation& seen, double steady_now, double unix_now);
  Tracked* Find(int worker);

  HangOptions options_;
  int agent_;
  int node_;
  std::string host_;
  double started_ = -1;
  std::vector<Tracked> workers_;
};

}  // namespace runner

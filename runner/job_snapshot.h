#pragma once
// Everything `runner status` shows, read from a job directory at one moment (README.md, "The job
// directory"): the manifest, the current attempt's events, the agents' progress files
// (attempt-<k>/progress/agent-<A>.json), the hang diagnosis, outcome.json, the tail of
// metrics.jsonl and train.log, checkpoints/latest. Plain data: job_status.h judges and formats it.
//
// Reading never fails on what a running job may have half-written or not yet written: a file
// that is missing leaves its part empty, one that does not parse is named in `problems`.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace runner {

struct ManifestAgent {
  int agent = 0;
  std::string host;
  int node = 0;
  int first_rank = 0;
  int workers = 0;
};

// An agent's progress file (attempt-<k>/progress/agent-<A>.json).
struct AgentProgress {
  int agent = 0;
  std::string host;
  int node = 0;
  std::string state;  // "running", "stopping", "ended"
  double unix = 0;    // when it was written
  double hang_timeout_s = 0;
  std::string file;  // relative to the job directory
};

// One rank of the current attempt, from its agent's progress file or else from events.jsonl.
struct RankState {
  int rank = 0;
  std::string host;
  int agent = -1;
  int local_rank = -1;
  int pid = 0;
  bool published = false;  // the worker publishes heartbeats: step/where are known
  std::optional<int64_t> step;
  std::string where;
  std::optional<double> heartbeat_age_s;  // as of `written`
  std::optional<double> progress_age_s;   // as of `written`
  std::string proc_state;                 // "R", "S", "D", "T", "Z"
  std::string wchan;
  std::optional<double> cpu_s;
  std::optional<double> output_age_s;
  std::string status;  // "running", "exited with code 0", "not started"
  double written = 0;  // Unix time the ages were taken (0: not from a progress file)
};

struct FailureFacts {
  int rank = 0;
  std::string host;
  int pid = 0;
  std::string status;
  std::string log;
  std::vector<std::string> last_lines;
};

// outcome.json of the current attempt.
struct OutcomeFacts {
  int attempt = 0;
  std::string status;  // succeeded, failed, stopped, requeued, restarting
  int exit_code = 0;
  std::string exit_meaning;
  double duration_s = 0;
  double ended_at = 0;
  int restarts = 0;
  std::optional<FailureFacts> first_failure;
  std::string reason;  // the reason of the agent with the highest code
  std::vector<std::string> hang;
  std::string raw;  // the file itself
};

struct Laggard {
  int rank = 0;
  std::string host;
  int pid = 0;
  std::string proc_state;
  std::string where;
  double stalled_s = 0;
};

// attempt-<k>/diagnosis/diagnosis.json: the watchdog's verdict on a hung job.
struct DiagnosisFacts {
  std::optional<int64_t> step;
  double timeout_s = 0;
  std::vector<std::string> lines;
  std::vector<Laggard> laggards;
  std::vector<std::string> stacks;  // relative to the attempt directory
};

// The newest training numbers (metrics.jsonl's last step line, train.log's "step N/TOTAL").
struct Throughput {
  int64_t step = 0;
  double samples_per_s = 0;
  double step_ms = 0;
  std::optional<double> data_ms, compute_ms, comm_wait_ms, optimizer_ms, loss;
};

struct JobSnapshot {
  std::string dir;  // absolute
  std::string job;  // <name>-<id>
  int world_size = 0;
  int nodes = 0;
  std::vector<ManifestAgent> agents;
  std::optional<double> job_started;  // manifest.json's "created"
  std::optional<int> attempt;         // current; nullopt: none started yet
  std::vector<int> attempts;
  std::optional<double> attempt_started;
  std::vector<AgentProgress> progress;
  std::vector<RankState> ranks;  // by rank
  std::optional<OutcomeFacts> outcome;
  std::optional<DiagnosisFacts> diagnosis;
  std::optional<Throughput> throughput;
  std::optional<int64_t> total_steps;
  std::optional<std::string> checkpoint;  // what checkpoints/latest names
  std::optional<double> checkpoint_at;
  std::vector<std::string> problems;  // files that did not parse, and why
};

// Reads job directory `dir` (runner/job_files.h's ResolveJobDir gives it). Throws
// common::EnvironmentError only when a file exists but cannot be read.
[[nodiscard]] JobSnapshot ReadJobSnapshot(const std::string& dir);
// Only manifest.json's part of the snapshot: job, world_size, nodes, agents, job_started.
[[nodiscard]] JobSnapshot ReadJobManifest(const std::string& dir);

}  // namespace runner

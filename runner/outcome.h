#pragma once
// How an attempt ended, across agents: each agent's view (runner/supervision_policy.h's
// AttemptOutcome plus who it is) travels to the node-0 agent as one record, and node 0 writes
// outcome.json from the views. The JSON is made here, at the edge; the views stay structs.

#include <optional>
#include <string>
#include <vector>

#include "common/log_write_errors.h"
#include "runner/saved_checkpoint.h"
#include "runner/supervision_policy.h"

namespace runner {

struct AgentView {
  int agent = 0;
  std::string host;
  int node = 0;
  AttemptOutcome outcome;
  // Lines this agent could not write to its logs (rank logs, events.jsonl, its own log, the
  // console) during the attempt: a full or failing disk under job.log_root.
  std::vector<common::LogWriteError> log_write_errors;

  [[nodiscard]] std::string Serialize() const;
  // Throws common::CommunicationError naming the field when `text` is not a view.
  [[nodiscard]] static AgentView Parse(const std::string& text, int from_agent);
};

// The earliest failure among the views (by its Unix time), if any.
[[nodiscard]] std::optional<WorkerFailure> FirstFailure(const std::vector<AgentView>& views);

// Every agent's view from the gathered records (AgentView::Parse of each).
[[nodiscard]] std::vector<AgentView> ParseViews(const std::vector<std::string>& records);

// Worker exit codes that a restart cannot change (README.md's table): usage 2, config 3,
// environment 4. The same program with the same config and environment fails the same way.
[[nodiscard]] bool RetryCannotHelp(int worker_exit_code);

struct RestartDecision {
  bool restart = false;
  std::string skipped;  // why restarts that remain are not used; "" otherwise
};

// Whether the job starts another attempt: after a failure (20, 21, 12) or a hang (13) while
// restarts remain, unless the root cause (the job's first failure, the same on every agent)
// is a worker that exited with a code a retry cannot change.
[[nodiscard]] RestartDecision DecideRestart(int agreed_code,
                                            const std::optional<WorkerFailure>& root_cause,
                                            int restarts_done, int max_restarts);

// The job's code once the logs are counted: a success (0) whose logs lost lines on any agent
// becomes common::kExitLogsIncomplete; every other code stands (outcome.json still lists the
// losses). Every agent computes it from the same views, so all end with the same code.
[[nodiscard]] int CodeWithLogs(int agreed_code, const std::vector<AgentView>& views);

// What every agent needs from all the views, made by node 0, which alone gathers them (an
// allgather would send N views to each of N agents: N^2 bytes through node 0), and broadcast as
// one view: the job's code (the highest, then CodeWithLogs), its first failure (FirstFailure:
// the restart decision) and every agent's lost log lines.
[[nodiscard]] AgentView JobView(const std::vector<AgentView>& views);

// "succeeded" (also for common::kExitLogsIncomplete: the work succeeded), "stopped",
// "requeued", "hung" or "failed" for a job exit code.
[[nodiscard]] std::string StatusWord(int code);

[[nodiscard]] std::string FailureJson(const WorkerFailure& failure);
[[nodiscard]] std::string AgentViewJson(const AgentView& view);

struct JobOutcome {
  std::string job;  // <name>-<id>
  int attempt = 0;
  bool restarting = false;
  int exit_code = 0;
  double started_at = 0;
  double ended_at = 0;
  int restarts = 0;
  std::vector<AgentView> agents;
  std::optional<SavedCheckpoint> checkpoint;  // what checkpoints/latest names, if anything
  std::string restart_skipped;                // RestartDecision::skipped
};

// outcome.json: status, exit code and meaning, what was saved, the first failure, every agent's
// view.
[[nodiscard]] std::string OutcomeJson(const JobOutcome& outcome);

}  // namespace runner

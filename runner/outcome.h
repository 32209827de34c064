#pragma once
// How an attempt ended, across agents: each agent's view (runner/supervision_policy.h's
// AttemptOutcome plus who it is) travels to the node-0 agent as one record, and node 0 writes
// outcome.json from the views. The JSON is made here, at the edge; the views stay structs.

#include <optional>
#include <string>
#include <vector>

#include "runner/saved_checkpoint.h"
#include "runner/supervision_policy.h"

namespace runner {

struct AgentView {
  int agent = 0;
  std::string host;
  int node = 0;
  AttemptOutcome outcome;

  [[nodiscard]] std::string Serialize() const;
  // Throws common::CommunicationError naming the field when `text` is not a view.
  [[nodiscard]] static AgentView Parse(const std::string& text, int from_agent);
};

// The earliest failure among the views (by its Unix time), if any.
[[nodiscard]] std::optional<WorkerFailure> FirstFailure(const std::vector<AgentView>& views);

// Whether the job starts another attempt: after a failure (20, 21, 12) or a hang (13) while
// restarts remain.
[[nodiscard]] bool ShouldRestart(int agreed_code, int restarts_done, int max_restarts);

// "succeeded", "stopped", "requeued", "hung" or "failed" for a job exit code.
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
};

// outcome.json: status, exit code and meaning, what was saved, the first failure, every agent's
// view.
[[nodiscard]] std::string OutcomeJson(const JobOutcome& outcome);

}  // namespace runner

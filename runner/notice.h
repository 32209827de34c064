#pragma once
// The notices agents send each other while workers run (over runner/control_plane.h): a worker's
// failure, or a stop this agent was asked for. Sent as one strict record (common/record.h).
// Agents other than 0 send theirs to agent 0, which acts on it and forwards the first notice of
// the attempt to every other agent (runner/supervisor.cpp): O(agents) messages however many
// agents fail at once, where each agent telling every other would be agents^2.

#include <string>

namespace runner {

// What one agent tells the others while workers run.
struct Notice {
  enum class Kind { kFailure, kStop };
  Kind kind = Kind::kFailure;
  int rank = -1;       // the failed worker's global rank (failure notices)
  std::string host;    // the agent's host
  std::string status;  // "exited with code 3", "could not start", "received SIGTERM"
  int agent = 0;       // the agent that sent it

  [[nodiscard]] std::string Serialize() const;
  // Throws common::CommunicationError naming the field when `text` is not a notice.
  [[nodiscard]] static Notice Parse(const std::string& text);
  // "worker rank 3 on n2 exited with code 1" or "agent on n2 received SIGTERM".
  [[nodiscard]] std::string Describe() const;
};

}  // namespace runner

#pragma once
// Native stacks of every thread of hung workers, for diagnosis/rank-<R>.txt: eu-stack (elfutils)
// when installed, else gdb in batch mode (scripts/install-deps installs both). Every capture runs
// at once, each bounded by the same deadline, so a node's stacks take seconds, not seconds per
// rank. Attaching needs ptrace rights over the worker: the agent is its ancestor, which Yama's
// default (ptrace_scope 1) allows.

#include <string>
#include <vector>

namespace runner {

struct StackRequest {
  int rank = 0;
  int pid = 0;
  std::string path;    // the file written: `header`, then the tool's output
  std::string header;  // what the reader needs to know first (rank, host, pid, where, state)
};

// The first tool found: {"eu-stack", "-p", PID} or {"gdb", "-p", PID, "-batch", ...}; empty
// when neither is installed.
[[nodiscard]] std::vector<std::string> StackCommand(int pid);

// Runs the captures and writes the files; returns one line per request ("rank 3: 41 lines from
// eu-stack", "rank 3: no stack tool: install elfutils or gdb", "rank 3: eu-stack timed out").
[[nodiscard]] std::vector<std::string> CaptureStacks(const std::vector<StackRequest>& requests,
                                                     double timeout_s);

}  // namespace runner

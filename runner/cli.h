#pragma once
// The runner's command line:
//   runner [options] [key.path=value ...] [-- CMD ARGS...]
// Options and overrides come before "--"; everything after it is the worker command (default:
// the bundled trainer with the job config).

#include <optional>
#include <string>
#include <vector>

namespace runner {

struct RunnerOptions {
  std::optional<std::string> config_file;
  std::vector<std::string> overrides;  // flags first (as key=value), then key=value arguments
  std::vector<std::string> command;    // after "--"; empty: the bundled trainer
  // --nnodes, --node-rank, --master HOST:PORT: a torchrun-style launch by hand (these win over
  // NNODES, NODE_RANK, MASTER_ADDR and MASTER_PORT).
  std::optional<std::string> nnodes;
  std::optional<std::string> node_rank;
  std::optional<std::string> master;
  bool dry_run = false;
  bool print_config = false;
  bool list_keys = false;
  bool help = false;
  bool version = false;
};

// Throws common::UsageError naming the bad argument and, for a misspelt flag, the closest one.
[[nodiscard]] RunnerOptions ParseRunnerArgs(const std::vector<std::string>& args);

// The text of `runner --help`: every flag, the override syntax, the exit codes.
[[nodiscard]] std::string RunnerHelp();

}  // namespace runner

#pragma once
// The operator's commands, for a running, finished, stopped or hung job, from any machine that
// sees the job directory (README.md, "For operators"):
//   runner status JOBDIR [--json] [--watch [SECONDS]]
//   runner logs JOBDIR [--rank LIST] [--attempt K] [--runner] [--follow] [--grep TEXT]
// They are told apart from `runner [options] [key=value ...] [-- CMD]` by their first argument
// alone, which the agent's command line never takes as a word without '='.

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace runner {

// Whether `args` (without the program name) start with an operator command.
[[nodiscard]] bool IsOperatorCommand(const std::vector<std::string>& args);

// Runs `runner <command> ...`, printing to `out`. Returns the exit code; throws common::Error
// (common::UsageError for the command line, common::EnvironmentError for an unreadable job).
[[nodiscard]] int RunOperatorCommand(const std::vector<std::string>& args, std::ostream& out);

struct StatusOptions {
  std::string job;
  bool json = false;
  std::optional<double> watch_s;
  bool help = false;
};

struct LogsOptions {
  std::string job;
  std::optional<std::vector<int>> ranks;  // nullopt: every rank
  std::optional<int> attempt;             // nullopt: the path's, else the current one
  bool runner_logs = false;
  bool follow = false;
  std::string grep;
  bool help = false;
};

// The arguments after "status" / "logs". Throw common::UsageError naming the bad argument.
[[nodiscard]] StatusOptions ParseStatusArgs(const std::vector<std::string>& args);
[[nodiscard]] LogsOptions ParseLogsArgs(const std::vector<std::string>& args);

[[nodiscard]] std::string StatusHelp();
[[nodiscard]] std::string LogsHelp();
// The lines `runner --help` shows about these commands.
[[nodiscard]] std::string OperatorCommandsHelp();

// `terminal`: redraw --watch in place (clear the screen) rather than one snapshot after another.
[[nodiscard]] int RunStatus(const StatusOptions& options, std::ostream& out, bool terminal);
[[nodiscard]] int RunLogs(const LogsOptions& options, std::ostream& out);

// How often --follow looks for new lines.
inline constexpr double kFollowPollS = 0.25;

}  // namespace runner

#include "runner/operator_cli.h"

#include <unistd.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <cmath>
#include <iostream>
#include <sstream>
#include <thread>

#include "common/cli_util.h"
#include "common/errors.h"
#include "common/parse_int.h"
#include "common/seconds.h"
#include "runner/job_files.h"
#include "runner/job_snapshot.h"
#include "runner/job_status.h"
#include "runner/rank_list.h"

namespace po = boost::program_options;

namespace runner {

namespace {

constexpr int kStyle =
    po::command_line_style::default_style & ~po::command_line_style::allow_guessing;
constexpr char kWatchDefault[] = "2";  // seconds between --watch's redraws

po::options_description StatusFlags() {
  po::options_description options("Options", 100, 50);
  options.add_options()("json", "print one JSON object (fields: README.md, \"For operators\")")(
      "watch", po::value<std::string>()->value_name("[SECONDS]")->implicit_value(kWatchDefault),
      "redraw every SECONDS (default 2) until interrupted or the job ends")(
      "help,h", "print this help and exit");
  return options;
}

po::options_description LogsFlags() {
  po::options_description options("Options", 100, 50);
  options.add_options()("rank", po::value<std::string>()->value_name("LIST"),
                        "only these global ranks, like 0,3-5 (default: every rank)")(
      "attempt", po::value<std::string>()->value_name("K"),
      "attempt K (default: the attempt the path names, else the current one)")(
      "runner", "also the agents' own logs (runner-<host>.log), prefixed <host>:runner")(
      "follow,f",
      "keep printing new lines (like tail -f), through restarts, until interrupted or the job "
      "has ended")("grep", po::value<std::string>()->value_name("TEXT"),
                   "only lines that contain TEXT (prefix included; case-sensitive)")(
      "help,h", "print this help and exit");
  return options;
}

// `--watch 5` as `--watch=5` and a bare `--watch` as `--watch=2`: Boost would take the word after
// an option with an optional value for its value, the job directory included.
std::vector<std::string> JoinWatchValue(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] != "--watch") {
      out.push_back(args[i]);
      continue;
    }
    const bool number = i + 1 < args.size() && !args[i + 1].empty() &&
                        args[i + 1].find_first_not_of("0123456789.") == std::string::npos;
    out.push_back("--watch=" + (number ? args[++i] : std::string(kWatchDefault)));
  }
  return out;
}

po::variables_map Parse(const std::vector<std::string>& args, const po::options_description& flags,
                        const std::string& program) {
  po::options_description all;
  all.add(flags).add_options()("job", po::value<std::vector<std::string>>());
  po::positional_options_description positional;
  positional.add("job", -1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(all).positional(positional).style(kStyle).run(),
              vm);
    po::notify(vm);
  } catch (const po::unknown_option& e) {
    common::ThrowUsage(flags, program, e, e.get_option_name());
  } catch (const po::error& e) {
    common::ThrowUsage(flags, program, e, "");
  }
  return vm;
}

std::string JobArgument(const po::variables_map& vm, const std::string& program) {
  const std::vector<std::string> jobs =
      vm.count("job") ? vm["job"].as<std::vector<std::string>>() : std::vector<std::string>();
  if (jobs.size() == 1) return jobs[0];
  if (jobs.empty()) {
    throw common::UsageError(program + " needs a job directory, like '" + program +
                             " logs/train-123456' (see '" + program + " --help')");
  }
  throw common::UsageError(program + " takes one job directory, got " +
                           std::to_string(jobs.size()) + ": '" + jobs[0] + "', '" + jobs[1] + "'" +
                           (jobs.size() > 2 ? ", ..." : ""));
}

double WatchSeconds(const std::string& text) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(value) || value <= 0 || value > 86400) {
    throw common::UsageError("--watch '" + text +
                             "': expected the seconds between redraws, a number above 0 and at "
                             "most 86400, like --watch 5");
  }
  return value;
}

}  // namespace

bool IsOperatorCommand(const std::vector<std::string>& args) {
  return !args.empty() && (args[0] == "status" || args[0] == "logs");
}

StatusOptions ParseStatusArgs(const std::vector<std::string>& args) {
  const po::variables_map vm = Parse(JoinWatchValue(args), StatusFlags(), "runner status");
  StatusOptions options;
  options.help = vm.count("help") > 0;
  if (options.help) return options;
  options.job = JobArgument(vm, "runner status");
  options.json = vm.count("json") > 0;
  if (vm.count("watch")) options.watch_s = WatchSeconds(vm["watch"].as<std::string>());
  return options;
}

LogsOptions ParseLogsArgs(const std::vector<std::string>& args) {
  const po::variables_map vm = Parse(args, LogsFlags(), "runner logs");
  LogsOptions options;
  options.help = vm.count("help") > 0;
  if (options.help) return options;
  options.job = JobArgument(vm, "runner logs");
  if (vm.count("rank")) options.ranks = ParseRankList(vm["rank"].as<std::string>(), "--rank");
  if (vm.count("attempt")) {
    const std::string text = vm["attempt"].as<std::string>();
    const std::optional<int64_t> k = common::ParseInt64(text);
    if (!k || *k < 0 || *k > 1000000) {
      throw common::UsageError("--attempt '" + text +
                               "': expected an attempt number (0 for the first start), like "
                               "--attempt 1");
    }
    options.attempt = static_cast<int>(*k);
  }
  options.runner_logs = vm.count("runner") > 0;
  options.follow = vm.count("follow") > 0;
  if (vm.count("grep")) options.grep = vm["grep"].as<std::string>();
  return options;
}

std::string StatusHelp() {
  std::ostringstream out;
  out << "Usage: runner status JOBDIR [--json] [--watch [SECONDS]]\n\n"
      << "The state of a job from its directory (logs/<name>-<id>, or its `current` link), from\n"
      << "any machine that sees it: running, hung (with the verdict), ended (exit code and\n"
      << "reason), stopped or requeued; the attempt and how long it has run; every rank's host,\n"
      << "pid, step, phase, heartbeat age and status; the slowest rank; throughput and ETA from\n"
      << "metrics.jsonl; the last checkpoint; agents that stopped updating their progress.\n\n"
      << StatusFlags() << "\n"
      << "Exit codes: 0 the job was read (whatever its state), 2 usage error or no job directory\n"
      << "at that path, 4 the directory cannot be read.\n";
  return out.str();
}

std::string LogsHelp() {
  std::ostringstream out;
  out << "Usage: runner logs JOBDIR [--rank LIST] [--attempt K] [--runner] [--follow] "
         "[--grep TEXT]\n\n"
      << "The rank logs (rank-<R>.log) of one attempt merged by their timestamps, each line\n"
      << "prefixed <host>:<rank>. The agents' own logs only with --runner.\n\n"
      << LogsFlags() << "\n"
      << "Exit codes: 0 done, 2 usage error (a bad rank list, no such rank, attempt or job\n"
      << "directory), 4 the directory cannot be read.\n";
  return out.str();
}

std::string OperatorCommandsHelp() {
  return "Commands for operators (from any machine that sees the job directory; add --help):\n"
         "  runner status JOBDIR [--json] [--watch [SECONDS]]\n"
         "      the job's state, every rank's step and phase, throughput, ETA, checkpoint\n"
         "  runner logs JOBDIR [--rank LIST] [--attempt K] [--runner] [--follow] [--grep TEXT]\n"
         "      the rank logs of an attempt merged by time, each line prefixed host:rank\n";
}

int RunStatus(const StatusOptions& options, std::ostream& out, bool terminal) {
  const std::string dir = ResolveJobDir(options.job).dir;
  for (bool first = true;; first = false) {
    const JobSnapshot snapshot = ReadJobSnapshot(dir);
    const double now = common::UnixSeconds();
    if (options.watch_s && !options.json) out << (terminal ? "\033[H\033[2J" : first ? "" : "\n");
    out << (options.json ? StatusJson(snapshot, now) : StatusText(snapshot, now));
    out.flush();
    if (!options.watch_s || Summarize(snapshot, now).over) return 0;
    std::this_thread::sleep_for(std::chrono::duration<double>(*options.watch_s));
  }
}

int RunOperatorCommand(const std::vector<std::string>& args, std::ostream& out) {
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  const bool terminal = &out == &std::cout && isatty(STDOUT_FILENO) == 1;
  if (args.at(0) == "status") {
    const StatusOptions options = ParseStatusArgs(rest);
    if (options.help) {
      out << StatusHelp();
      return 0;
    }
    return RunStatus(options, out, terminal);
  }
  const LogsOptions options = ParseLogsArgs(rest);
  if (options.help) {
    out << LogsHelp();
    return 0;
  }
  return RunLogs(options, out);
}

}  // namespace runner

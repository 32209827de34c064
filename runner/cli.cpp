#include "runner/cli.h"

#include <boost/program_options.hpp>
#include <sstream>

#include "common/cli_util.h"
#include "common/errors.h"
#include "runner/operator_cli.h"

namespace po = boost::program_options;

namespace {
// Exact flags only: a prefix such as --nproc must not silently mean --nproc-per-node.
constexpr int kStyle =
    po::command_line_style::default_style & ~po::command_line_style::allow_guessing;
}  // namespace

namespace runner {

namespace {

po::options_description Options() {
  po::options_description options("Options", 100, 50);
  options.add_options()("config,c", po::value<std::string>()->value_name("FILE"),
                        "job config (YAML); default: $RUNNER_CONFIG, else built-in defaults")(
      "dry-run",
      "print the resolved topology (hosts, ranks, devices, master, where each value "
      "came from) and exit without starting anything")(
      "print-config", "print the resolved job config with the origin of every value, and exit")(
      "list-keys", "print every config key with its allowed values, default and meaning, and exit")(
      "nproc-per-node", po::value<std::string>()->value_name("N|auto"),
      "workers per agent (= launch.nproc_per_node)")(
      "job-name", po::value<std::string>()->value_name("NAME"), "job name (= job.name)")(
      "log-root", po::value<std::string>()->value_name("DIR"),
      "directory of job directories (= job.log_root)")(
      "max-restarts", po::value<std::string>()->value_name("N"),
      "restarts after a worker failure (= launch.max_restarts)")(
      "nnodes", po::value<std::string>()->value_name("N"),
      "machines in a job started by hand on each (= NNODES)")(
      "node-rank", po::value<std::string>()->value_name("R"),
      "this machine's rank among them, 0..N-1 (= NODE_RANK)")(
      "master", po::value<std::string>()->value_name("HOST:PORT"),
      "where node 0 hosts the job's store and every agent meets (= MASTER_ADDR:MASTER_PORT)")(
      "help,h", "print this help and exit")("version", "print the version and exit");
  return options;
}

}  // namespace

RunnerOptions ParseRunnerArgs(const std::vector<std::string>& args) {
  RunnerOptions result;
  std::vector<std::string> before;
  bool after_separator = false;
  for (const std::string& arg : args) {
    if (!after_separator && arg == "--") {
      after_separator = true;
    } else if (after_separator) {
      result.command.push_back(arg);
    } else {
      before.push_back(arg);
    }
  }
  if (after_separator && result.command.empty()) {
    throw common::UsageError(
        "'--' must be followed by the worker command, like "
        "'runner -- python3 train.py'");
  }

  const po::options_description options = Options();
  po::options_description all;
  all.add(options).add_options()("override", po::value<std::vector<std::string>>());
  po::positional_options_description positional;
  positional.add("override", -1);
  po::variables_map vm;
  std::string current;
  try {
    po::store(
        po::command_line_parser(before).options(all).positional(positional).style(kStyle).run(),
        vm);
    po::notify(vm);
  } catch (const po::unknown_option& e) {
    common::ThrowUsage(options, "runner", e, e.get_option_name());
  } catch (const po::error& e) {
    common::ThrowUsage(options, "runner", e, "");
  }
  result.help = vm.count("help") > 0;
  result.version = vm.count("version") > 0;
  result.dry_run = vm.count("dry-run") > 0;
  result.print_config = vm.count("print-config") > 0;
  result.list_keys = vm.count("list-keys") > 0;
  if (vm.count("config")) result.config_file = vm["config"].as<std::string>();
  if (vm.count("nnodes")) result.nnodes = vm["nnodes"].as<std::string>();
  if (vm.count("node-rank")) result.node_rank = vm["node-rank"].as<std::string>();
  if (vm.count("master")) result.master = vm["master"].as<std::string>();
  const std::pair<const char*, const char*> flag_keys[] = {
      {"nproc-per-node", "launch.nproc_per_node"},
      {"job-name", "job.name"},
      {"log-root", "job.log_root"},
      {"max-restarts", "launch.max_restarts"},
  };
  for (const auto& [flag, key] : flag_keys) {
    if (vm.count(flag))
      result.overrides.push_back(std::string(key) + "=" + vm[flag].as<std::string>());
  }
  if (vm.count("override")) {
    for (const std::string& item : vm["override"].as<std::vector<std::string>>()) {
      if (item.find('=') == std::string::npos) {
        throw common::UsageError("argument '" + item + "' is neither an option nor a " +
                                 "key.path=value override; to run a command as the worker, put " +
                                 "it after '--' (runner -- " + item + " ...)");
      }
      result.overrides.push_back(item);
    }
  }
  return result;
}

std::string RunnerHelp() {
  std::ostringstream out;
  out << "Usage: runner [options] [key.path=value ...] [-- CMD ARGS...]\n"
      << "       runner status|logs JOBDIR ... (below)\n\n"
      << "Starts and supervises this node's workers of a data-parallel job. Run one runner per\n"
      << "node: 'srun --ntasks-per-node=1 runner ...', 'mpirun --map-by ppr:1:node runner ...', "
         "'runner\n"
      << "--nnodes N --node-rank R --master HOST:PORT ...' on each machine by hand, or just "
         "'runner ...' on one\n"
      << "machine. Without '--' the workers run the bundled trainer.\n\n"
      << Options() << "\n"
      << "Config overrides (highest precedence): key.path=value, like train.lr=3e-4 or\n"
      << "  train.hidden_sizes=[512,256]. Environment overrides: RUNNER_<SECTION>__<KEY>, like\n"
      << "  RUNNER_TRAIN__LR=3e-4. Precedence: defaults < --config file < environment < command\n"
      << "  line (flags such as --nproc-per-node first, then key.path=value arguments).\n"
      << "  configs/README.md (man 5 runner-config) documents every key.\n\n"
      << OperatorCommandsHelp() << "\n"
      << common::ExitCodeHelp();
  return out.str();
}

}  // namespace runner

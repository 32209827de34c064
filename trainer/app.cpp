#include "trainer/app.h"

#include <boost/program_options.hpp>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <ostream>
#include <thread>

#include "common/cli_util.h"
#include "common/config.h"
#include "common/errors.h"
#include "common/fault_inject.h"
#include "common/heartbeat.h"
#include "common/job_end_time.h"
#include "common/job_layout.h"
#include "common/worker_contract.h"
#include "trainer/banner.h"
#include "trainer/comm.h"
#include "trainer/stop_signals.h"
#include "trainer/train_loop.h"

namespace po = boost::program_options;

namespace {
// Exact flags only: a prefix such as --nproc must not silently mean --nproc-per-node.
constexpr int kStyle =
    po::command_line_style::default_style & ~po::command_line_style::allow_guessing;
}  // namespace

namespace trainer {

namespace {

po::options_description Options() {
  po::options_description options("Options", 100, 50);
  options.add_options()(
      "config,c", po::value<std::string>()->value_name("FILE"),
      "job config (YAML); default: $RUNNER_CONFIG (set by the runner), else built-in defaults")(
      "banner", "print the startup banner (versions, BLAS, threads) and exit")(
      "print-config", "print the resolved job config with the origin of every value, and exit")(
      "help,h", "print this help and exit")("version", "print the version and exit");
  return options;
}

std::string Help() {
  std::ostringstream out;
  out << "Usage: trainer [options] [key.path=value ...]\n\n"
      << "The bundled data-parallel worker. The runner starts one per GPU or CPU slot with the\n"
      << "worker contract (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT, ...) and\n"
      << "RUNNER_CONFIG in the environment. Config keys and overrides work as for the runner\n"
      << "(configs/README.md).\n\n"
      << Options() << "\n"
      << common::ExitCodeHelp();
  return out.str();
}

// Where the loop writes and what it knows about the job, from the contract and the environment.
TrainContext MakeContext(const common::Config& config, const common::WorkerContract& contract,
                         const common::Environment& env) {
  TrainContext context;
  context.output_dir = contract.attempt_dir;
  context.overlap = config.GetBool("train.overlap_comm");
  if (!contract.job_dir.empty()) {
    context.checkpoint_dir = contract.job_dir + "/" + common::job_layout::kCheckpoints;
    context.events_path = contract.job_dir + "/" + common::job_layout::kEvents;
  } else if (config.GetString("train.resume") != "auto" &&
             config.GetString("train.resume") != "none") {
    // Standalone: resume from the path given, save beside it.
    context.checkpoint_dir = common::job_layout::kCheckpoints;
  }
  if (std::optional<std::string> end = env.Get(common::kSlurmJobEndTimeVar)) {
    std::optional<int64_t> seconds = common::ParseJobEndTime(*end);
    if (!seconds)
      throw common::EnvironmentError(std::string(common::kSlurmJobEndTimeVar) + "='" + *end +
                                     "' is not a Unix time (whole seconds, as Slurm sets it); "
                                     "fix or unset it in the job script");
    context.job_end_time = static_cast<double>(*seconds);
  }
  return context;
}

}  // namespace

int RunTrainer(const std::vector<std::string>& args, const common::Environment& env,
               std::ostream& out, std::ostream& err) {
  try {
    const po::options_description options = Options();
    po::options_description all;
    all.add(options).add_options()("override", po::value<std::vector<std::string>>());
    po::positional_options_description positional;
    positional.add("override", -1);
    po::variables_map vm;
    try {
      po::store(
          po::command_line_parser(args).options(all).positional(positional).style(kStyle).run(),
          vm);
      po::notify(vm);
    } catch (const po::unknown_option& e) {
      common::ThrowUsage(options, "trainer", e, e.get_option_name());
    } catch (const po::error& e) {
      common::ThrowUsage(options, "trainer", e, "");
    }
    if (vm.count("help")) {
      out << Help();
      return common::kExitOk;
    }
    if (vm.count("version")) {
      out << common::VersionLine("trainer") << "\n";
      return common::kExitOk;
    }
    common::ConfigSources sources;
    if (vm.count("config")) sources.file = vm["config"].as<std::string>();
    sources.env = &env;
    if (vm.count("override")) sources.overrides = vm["override"].as<std::vector<std::string>>();
    common::Config config = common::LoadConfig(sources);
    if (vm.count("print-config")) {
      out << config.ToYaml(/*with_origins=*/true);
      return common::kExitOk;
    }
    auto [threads, source] = ChooseThreads(env, config.GetIntOrAuto("train.num_threads"));
    ApplyThreads(threads);
    out << StartupBanner(env, source) << std::endl;
    if (vm.count("banner")) return common::kExitOk;
    // Where this worker is, for the runner's watchdog (nothing without RUNNER_HEARTBEAT_FILE).
    common::HeartbeatWriter& heartbeat = common::ProcessHeartbeat();
    heartbeat.Phase("init");
    const common::WorkerContract contract = common::ReadContract(env);
    std::string backend = config.GetString("launch.backend");
    if (backend == "auto") backend = HaveNccl() && !contract.device.empty() ? "nccl" : "gloo";
    const auto timeout = std::chrono::milliseconds(
        static_cast<int64_t>(config.GetFloat("train.collective_timeout_s") * 1000));
    const double setup_fault_s = common::InjectedDelay(
        common::ParseFaultInjection(config.GetString(common::kFaultInjectKey), ""), contract.rank,
        "comm-setup", 0);
    std::unique_ptr<Communicator> comm =
        MakeCommunicator(contract, backend, timeout, config.GetString("train.allreduce"),
                         config.GetString("train.gradient_compression"), setup_fault_s);
    // Its own line: the data and the model come next (bench/first_step.py times each).
    out << "process group up: rank " << comm->rank() << " of " << comm->size() << ", backend "
        << comm->backend() << std::endl;
    const TrainContext context = MakeContext(config, contract, env);
    InstallStopHandlers(config.GetString("launch.preempt_signal").c_str());
    const TrainResult result = Train(config, *comm, context, heartbeat);
    // Train has published kPhaseExiting (its work is saved); what is left is tearing down.
    // A test knob: widen the window between saving and exiting that a second stop signal can hit.
    if (std::optional<std::string> delay = env.Get("TRAINER_TEST_EXIT_DELAY_MS"))
      std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(delay->c_str())));
    if (result.stop_reason == "preempt") return common::kExitRequeued;
    if (!result.stop_reason.empty()) return common::kExitStopped;
    return common::kExitOk;
  } catch (const common::Error& e) {
    err << "trainer: " << common::ExitCodeName(e.code()) << ": " << e.what() << "\n";
    return e.code();
  } catch (const std::exception& e) {
    err << "trainer: internal error: " << e.what() << " (please report this)\n";
    return common::kExitInternal;
  }
}

}  // namespace trainer

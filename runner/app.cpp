#include "runner/app.h"

#include <ostream>

#include "common/cli_util.h"
#include "common/config.h"
#include "common/config_schema.h"
#include "common/errors.h"
#include "runner/agent.h"
#include "runner/cli.h"
#include "runner/dry_run.h"
#include "runner/operator_cli.h"
#include "runner/signals.h"
#include "runner/topology.h"

namespace runner {

int RunRunner(const std::vector<std::string>& args, const common::Environment& env,
              const HostFacts& host, std::ostream& out, std::ostream& err) {
  try {
    if (IsOperatorCommand(args)) return RunOperatorCommand(args, out);
    RunnerOptions options = ParseRunnerArgs(args);
    if (options.help) {
      out << RunnerHelp();
      return common::kExitOk;
    }
    if (options.version) {
      out << common::VersionLine("runner") << "\n";
      return common::kExitOk;
    }
    if (options.list_keys) {
      out << common::SchemaMarkdown();
      return common::kExitOk;
    }
    common::Config config = common::LoadConfig({options.config_file, &env, options.overrides});
    StopIfRequested("while the config was read");
    if (options.print_config) {
      out << config.ToYaml(/*with_origins=*/true);
      return common::kExitOk;
    }
    LaunchEnvironment launch = DetectLaunchEnvironment(
        env, host, LaunchFlags{options.nnodes, options.node_rank, options.master});
    std::optional<int64_t> nproc = config.GetIntOrAuto("launch.nproc_per_node");
    AgentPlan plan =
        PlanAgent(launch, nproc ? std::optional<int>(static_cast<int>(*nproc)) : std::nullopt,
                  config.GetString("launch.backend"));
    if (options.dry_run) {
      out << FormatDryRun(launch, plan, config, env.All());
      return common::kExitOk;
    }
    StopIfRequested("while the environment was checked");
    AgentRequest request{&config, &env, launch, plan, host, options.command, nullptr};
    return RunAgent(request);
  } catch (const common::Error& e) {
    err << "runner: " << common::ExitCodeName(e.code()) << ": " << e.what() << "\n";
    return e.code();
  } catch (const std::exception& e) {
    err << "runner: internal error: " << e.what() << " (please report this)\n";
    return common::kExitInternal;
  }
}

}  // namespace runner

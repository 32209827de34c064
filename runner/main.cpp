#include <unistd.h>

#include <iostream>

#include "common/environment.h"
#include "common/exit_codes.h"
#include "runner/app.h"
#include "runner/operator_cli.h"
#include "runner/process.h"
#include "runner/signals.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  // Workers start through the runner itself (see runner/process.h): exec at once.
  if (!args.empty() && args[0] == "--exec-shim") return runner::RunExecShim(args);
  // The operator's commands (runner status, runner logs) end on Ctrl-C like any command.
  const bool agent = !runner::IsOperatorCommand(args);
  // From the first moment: a SIGTERM that srun --kill-on-bad-exit sends while this runner is still
  // checking its config or environment must not end it as 143 and hide the real error (3, 4, ...);
  // without such an error the stop ends it right after the check (10, RunRunner). Nothing is
  // blocked until the agent supervises (RunAgent), so Ctrl-C always reaches the runner.
  if (agent) runner::InstallStartupSignalHandlers();
  common::ProcessEnvironment env;
  const int code = runner::RunRunner(args, env, runner::ReadHostFacts(), std::cout, std::cerr);
  // Under srun with several runners each finds the same usage, config or environment error, but
  // the first to exit makes srun --kill-on-bad-exit SIGTERM the others, some still loading their
  // libraries: they die as 143, which hides this code in the job's ExitCode. Linger a moment so
  // that every runner reports the error itself.
  const bool early =
      code == common::kExitUsage || code == common::kExitConfig || code == common::kExitEnvironment;
  const std::optional<std::string> tasks = env.Get("SLURM_STEP_NUM_TASKS");
  if (agent && early && env.Get("SLURM_STEP_ID") && tasks && *tasks != "1" &&
      !env.Get("OMPI_COMM_WORLD_SIZE"))
    sleep(2);
  return code;
}

#include <iostream>

#include "common/environment.h"
#include "runner/app.h"
#include "runner/process.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  // Workers start through the runner itself (see runner/process.h): exec at once.
  if (!args.empty() && args[0] == "--exec-shim") return runner::RunExecShim(args);
  common::ProcessEnvironment env;
  return runner::RunRunner(args, env, runner::ReadHostFacts(), std::cout, std::cerr);
}

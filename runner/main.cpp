#include <iostream>

#include "common/environment.h"
#include "runner/app.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  common::ProcessEnvironment env;
  return runner::RunRunner(args, env, runner::ReadHostFacts(), std::cout, std::cerr);
}

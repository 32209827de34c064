#include <iostream>

#include "common/environment.h"
#include "trainer/app.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  common::ProcessEnvironment env;
  return trainer::RunTrainer(args, env, std::cout, std::cerr);
}

#pragma once
// Helpers the unit tests share: the recorded launch environments of tests/data/env (one file per
// way of launching the runner), edited per test case, and small text utilities.
// RUNNER_TEST_DATA_DIR is set for every test binary by tests/CMakeLists.txt.

#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "common/environment.h"
#include "runner/launch_env.h"

namespace testing_support {

using Strings = std::vector<std::string>;

// The recordings, by the launch they were taken from.
namespace recorded {
// srun --ntasks-per-node=4 in a 2-node GPU job; task 6 = node 1, local 2.
inline constexpr char kSrun2[] = "slurm_srun_2node_4tpn_node1_local2.env";
// srun with tasks per node 3(x1),1 on n[1-2], CPU only: node 0 local 1, and node 1.
inline constexpr char kHetero0[] = "slurm_srun_hetero_3x1_1_node0_local1.env";
inline constexpr char kHetero1[] = "slurm_srun_hetero_3x1_1_node1.env";
// The batch script of a 1-node and of a 2-node job.
inline constexpr char kBatch1[] = "slurm_batch_1node.env";
inline constexpr char kBatch2[] = "slurm_batch_2node.env";
// One task of an array job after a requeue.
inline constexpr char kRequeued[] = "slurm_srun_1node_1task_requeued.env";
// OpenMPI's mpirun on two hosts, without and inside Slurm; rank 1.
inline constexpr char kMpirun[] = "openmpi_mpirun_2hosts_rank1.env";
inline constexpr char kMpirunInSlurm[] = "openmpi_mpirun_inside_slurm_rank1.env";
// torchrun-style variables, node 1.
inline constexpr char kTorchrun[] = "torchrun_style_node1.env";
// No launcher at all.
inline constexpr char kLocal[] = "local_plain.env";
}  // namespace recorded

// One change to a recorded environment: set `name` to `value`, or unset it when value is nullopt.
struct Edit {
  std::string name;
  std::optional<std::string> value;
};
using Edits = std::vector<Edit>;

// The path of a recording in tests/data/env.
inline std::string EnvPath(const std::string& file) {
  return std::string(RUNNER_TEST_DATA_DIR) + "/env/" + file;
}

// A recording with `edits` applied in order. A missing file throws common::UsageError.
inline common::MapEnvironment LoadEnv(const std::string& file, const Edits& edits = {}) {
  common::MapEnvironment env = common::MapEnvironment::FromFile(EnvPath(file));
  for (const Edit& edit : edits) {
    if (edit.value) {
      env.Set(edit.name, *edit.value);
    } else {
      env.Unset(edit.name);
    }
  }
  return env;
}

// A fake machine for DetectLaunchEnvironment: its hostname, /dev/nvidia* count and CPUs.
inline runner::HostFacts Host(const std::string& name, int gpus = 0, int cpus = 2) {
  return {name, gpus, cpus};
}

// "file.env + A='1' - B", for a failing row's trace.
inline std::string Describe(const std::string& file, const Edits& edits) {
  std::string text = file;
  for (const Edit& edit : edits) {
    text += edit.value ? " + " + edit.name + "='" + *edit.value + "'" : " - " + edit.name;
  }
  return text;
}

// "a,b,c".
inline std::string Join(const Strings& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : ",") + item;
  return text;
}

// The whole file; "" when it cannot be read.
inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace testing_support

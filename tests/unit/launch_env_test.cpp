#include "runner/launch_env.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/environment.h"
#include "common/errors.h"

// Detection from recorded environments (tests/data/env/*.env, one file per way of launching the
// runner), each optionally edited (variables set or unset) to make the variants and the faults.

namespace runner {
namespace {

using Strings = std::vector<std::string>;
using Ints = std::vector<int>;

// One change to a recorded environment: set `name` to `value`, or unset it when value is nullopt.
struct Edit {
  std::string name;
  std::optional<std::string> value;
};
using Edits = std::vector<Edit>;

std::string EnvPath(const std::string& file) {
  return std::string(RUNNER_TEST_DATA_DIR) + "/env/" + file;
}

common::MapEnvironment LoadEnv(const std::string& file, const Edits& edits) {
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

// "file.env + A=1 -B" for the failure trace.
std::string Describe(const std::string& file, const Edits& edits) {
  std::string text = file;
  for (const Edit& edit : edits) {
    text += edit.value ? " + " + edit.name + "='" + *edit.value + "'" : " - " + edit.name;
  }
  return text;
}

std::string Join(const Strings& items) {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : ",") + item;
  return text;
}

HostFacts Host(const std::string& name, int gpus = 0, int cpus = 2) { return {name, gpus, cpus}; }

template <typename T>
void ExpectSourced(const char* what, const Sourced<T>& got, const Sourced<T>& want) {
  EXPECT_EQ(got.value, want.value) << what;
  EXPECT_EQ(got.source, want.source) << what;
}

template <typename T>
void ExpectSourced(const char* what, const std::optional<Sourced<T>>& got,
                   const std::optional<Sourced<T>>& want) {
  ASSERT_EQ(got.has_value(), want.has_value()) << what;
  if (got) ExpectSourced(what, *got, *want);
}

// ---------------------------------------------------------------------------------------------
// Good environments: every main value and the variable it came from.

struct DetectCase {
  std::string file;
  Edits edits;
  HostFacts host;
  Scheduler scheduler;
  Sourced<std::string> job_id;
  Sourced<std::string> job_name;
  Sourced<int> agent_rank;
  Sourced<int> agent_count;
  Sourced<int> local_rank;
  Sourced<int> local_count;
  std::optional<Sourced<int>> node_rank;
  std::optional<Sourced<int>> node_count;
  std::optional<Sourced<Strings>> hosts;
  std::optional<Sourced<Ints>> agents_per_node;
  Sourced<Strings> devices;
  Sourced<int> restart_count;
  size_t warnings;
};

// Sources that repeat across rows.
const char kFirst[] = "unset: first attempt";
const char kBatch[] = "batch script: the only agent";
const char kTorch[] = "torchrun-style: one agent per node";
const char kLocal[] = "single-node fallback";
const char kRendezvous[] = "picked by the node-0 agent at rendezvous";
const char kNoneAllocated[] = "none allocated (SLURM_GPUS_ON_NODE and CUDA_VISIBLE_DEVICES unset)";
const char kNoneFound[] = "none found (no CUDA_VISIBLE_DEVICES, no /dev/nvidia*)";

constexpr std::nullopt_t kAbsent = std::nullopt;

// The 2-node job's step variables, removed to see the job variables used instead.
const Edits kNoStepVars = {{"SLURM_STEP_NODELIST", std::nullopt},
                           {"SLURM_STEP_NUM_NODES", std::nullopt},
                           {"SLURM_STEP_NUM_TASKS", std::nullopt},
                           {"SLURM_STEP_TASKS_PER_NODE", std::nullopt}};

std::vector<DetectCase> DetectCases() {
  const std::string srun2 = "slurm_srun_2node_4tpn_node1_local2.env";
  const std::string hetero0 = "slurm_srun_hetero_3x1_1_node0_local1.env";
  const std::string hetero1 = "slurm_srun_hetero_3x1_1_node1.env";
  const std::string batch1 = "slurm_batch_1node.env";
  const std::string requeued = "slurm_srun_1node_1task_requeued.env";
  const std::string mpirun = "openmpi_mpirun_2hosts_rank1.env";
  const std::string mpirun_slurm = "openmpi_mpirun_inside_slurm_rank1.env";
  const std::string torch = "torchrun_style_node1.env";
  const std::string local = "local_plain.env";
  const Strings gpus4 = {"0", "1", "2", "3"};
  const Sourced<Strings> srun2_hosts{{"gpu001", "gpu002"}, "SLURM_STEP_NODELIST"};
  const Sourced<Ints> srun2_tpn{{4, 4}, "SLURM_STEP_TASKS_PER_NODE"};
  // One row per case reads better than one field per line.
  // clang-format off
  return {
      // srun --ntasks-per-node=4 in a 2-node GPU job; this agent is task 6 = node 1, local 2.
      {srun2, {}, Host("gpu002"), Scheduler::kSlurm,
       {"48213", "SLURM_JOB_ID"}, {"train", "SLURM_JOB_NAME"},
       {6, "SLURM_PROCID"}, {8, "SLURM_STEP_NUM_TASKS"},
       {2, "SLURM_LOCALID"}, {4, "SLURM_STEP_TASKS_PER_NODE[1]"},
       Sourced<int>{1, "SLURM_NODEID"}, Sourced<int>{2, "SLURM_STEP_NUM_NODES"},
       srun2_hosts, srun2_tpn,
       {gpus4, "CUDA_VISIBLE_DEVICES"}, {0, kFirst}, 0},
      // A fully qualified hostname matches its short node name: no warning.
      {srun2, {}, Host("gpu002.hpc.example.org"), Scheduler::kSlurm,
       {"48213", "SLURM_JOB_ID"}, {"train", "SLURM_JOB_NAME"},
       {6, "SLURM_PROCID"}, {8, "SLURM_STEP_NUM_TASKS"},
       {2, "SLURM_LOCALID"}, {4, "SLURM_STEP_TASKS_PER_NODE[1]"},
       Sourced<int>{1, "SLURM_NODEID"}, Sourced<int>{2, "SLURM_STEP_NUM_NODES"},
       srun2_hosts, srun2_tpn,
       {gpus4, "CUDA_VISIBLE_DEVICES"}, {0, kFirst}, 0},
      // Running on the host the nodelist gives node 0: odd, warned about, not fatal.
      {srun2, {}, Host("gpu001"), Scheduler::kSlurm,
       {"48213", "SLURM_JOB_ID"}, {"train", "SLURM_JOB_NAME"},
       {6, "SLURM_PROCID"}, {8, "SLURM_STEP_NUM_TASKS"},
       {2, "SLURM_LOCALID"}, {4, "SLURM_STEP_TASKS_PER_NODE[1]"},
       Sourced<int>{1, "SLURM_NODEID"}, Sourced<int>{2, "SLURM_STEP_NUM_NODES"},
       srun2_hosts, srun2_tpn,
       {gpus4, "CUDA_VISIBLE_DEVICES"}, {0, kFirst}, 1},
      // Without the step variables the job's are used (same values here).
      {srun2, kNoStepVars, Host("gpu002"), Scheduler::kSlurm,
       {"48213", "SLURM_JOB_ID"}, {"train", "SLURM_JOB_NAME"},
       {6, "SLURM_PROCID"}, {8, "SLURM_NTASKS"},
       {2, "SLURM_LOCALID"}, {4, "SLURM_TASKS_PER_NODE[1]"},
       Sourced<int>{1, "SLURM_NODEID"}, Sourced<int>{2, "SLURM_NNODES"},
       Sourced<Strings>{{"gpu001", "gpu002"}, "SLURM_JOB_NODELIST"},
       Sourced<Ints>{{4, 4}, "SLURM_TASKS_PER_NODE"},
       {gpus4, "CUDA_VISIBLE_DEVICES"}, {0, kFirst}, 0},
      // Step variables win over job variables that disagree (srun -n2 inside a bigger job).
      {srun2,
       {{"SLURM_NTASKS", "16"}, {"SLURM_TASKS_PER_NODE", "8(x2)"}},
       Host("gpu002"), Scheduler::kSlurm,
       {"48213", "SLURM_JOB_ID"}, {"train", "SLURM_JOB_NAME"},
       {6, "SLURM_PROCID"}, {8, "SLURM_STEP_NUM_TASKS"},
       {2, "SLURM_LOCALID"}, {4, "SLURM_STEP_TASKS_PER_NODE[1]"},
       Sourced<int>{1, "SLURM_NODEID"}, Sourced<int>{2, "SLURM_STEP_NUM_NODES"},
       srun2_hosts, srun2_tpn,
       {gpus4, "CUDA_VISIBLE_DEVICES"}, {0, kFirst}, 0},
      // No CUDA_VISIBLE_DEVICES: the GPU count Slurm gives, as indices.
      {srun2, {{"CUDA_VISIBLE_DEVICES", std::nullopt}}, Host("gpu002", 8), Scheduler::kSlurm,
       {"48213", "SLURM_JOB_ID"}, {"train", "SLURM_JOB_NAME"},
       {6, "SLURM_PROCID"}, {8, "SLURM_STEP_NUM_TASKS"},
       {2, "SLURM_LOCALID"}, {4, "SLURM_STEP_TASKS_PER_NODE[1]"},
       Sourced<int>{1, "SLURM_NODEID"}, Sourced<int>{2, "SLURM_STEP_NUM_NODES"},
       srun2_hosts, srun2_tpn,
       {gpus4, "SLURM_GPUS_ON_NODE"}, {0, kFirst}, 0},
      // Slurm's marker for a GPU node without device files: no GPUs.
      {srun2, {{"CUDA_VISIBLE_DEVICES", "NoDevFiles"}}, Host("gpu002", 4), Scheduler::kSlurm,
       {"48213", "SLURM_JOB_ID"}, {"train", "SLURM_JOB_NAME"},
       {6, "SLURM_PROCID"}, {8, "SLURM_STEP_NUM_TASKS"},
       {2, "SLURM_LOCALID"}, {4, "SLURM_STEP_TASKS_PER_NODE[1]"},
       Sourced<int>{1, "SLURM_NODEID"}, Sourced<int>{2, "SLURM_STEP_NUM_NODES"},
       srun2_hosts, srun2_tpn,
       {{}, "CUDA_VISIBLE_DEVICES=NoDevFiles"}, {0, kFirst}, 0},
      // GPU UUIDs are kept as written.
      {srun2, {{"CUDA_VISIBLE_DEVICES", "GPU-8f1c2a,GPU-02b7de,MIG-4c1d/1/0,3"}}, Host("gpu002"),
       Scheduler::kSlurm,
       {"48213", "SLURM_JOB_ID"}, {"train", "SLURM_JOB_NAME"},
       {6, "SLURM_PROCID"}, {8, "SLURM_STEP_NUM_TASKS"},
       {2, "SLURM_LOCALID"}, {4, "SLURM_STEP_TASKS_PER_NODE[1]"},
       Sourced<int>{1, "SLURM_NODEID"}, Sourced<int>{2, "SLURM_STEP_NUM_NODES"},
       srun2_hosts, srun2_tpn,
       {{"GPU-8f1c2a", "GPU-02b7de", "MIG-4c1d/1/0", "3"}, "CUDA_VISIBLE_DEVICES"}, {0, kFirst}, 0},

      // 3(x1),1 on n[1-2], CPU only: the agent on node 0 with local id 1, and the one on node 1.
      {hetero0, {}, Host("n1"), Scheduler::kSlurm,
       {"731", "SLURM_JOB_ID"}, {"cpujob", "SLURM_JOB_NAME"},
       {1, "SLURM_PROCID"}, {4, "SLURM_STEP_NUM_TASKS"},
       {1, "SLURM_LOCALID"}, {3, "SLURM_STEP_TASKS_PER_NODE[0]"},
       Sourced<int>{0, "SLURM_NODEID"}, Sourced<int>{2, "SLURM_STEP_NUM_NODES"},
       Sourced<Strings>{{"n1", "n2"}, "SLURM_STEP_NODELIST"},
       Sourced<Ints>{{3, 1}, "SLURM_STEP_TASKS_PER_NODE"},
       {{}, kNoneAllocated}, {0, kFirst}, 0},
      // What Slurm itself prints for the same layout; /dev/nvidia* is ignored under Slurm.
      {hetero0, {{"SLURM_STEP_TASKS_PER_NODE", "3,1"}}, Host("n1", 2), Scheduler::kSlurm,
       {"731", "SLURM_JOB_ID"}, {"cpujob", "SLURM_JOB_NAME"},
       {1, "SLURM_PROCID"}, {4, "SLURM_STEP_NUM_TASKS"},
       {1, "SLURM_LOCALID"}, {3, "SLURM_STEP_TASKS_PER_NODE[0]"},
       Sourced<int>{0, "SLURM_NODEID"}, Sourced<int>{2, "SLURM_STEP_NUM_NODES"},
       Sourced<Strings>{{"n1", "n2"}, "SLURM_STEP_NODELIST"},
       Sourced<Ints>{{3, 1}, "SLURM_STEP_TASKS_PER_NODE"},
       {{}, kNoneAllocated}, {0, kFirst}, 0},
      {hetero1, {}, Host("n2"), Scheduler::kSlurm,
       {"731", "SLURM_JOB_ID"}, {"cpujob", "SLURM_JOB_NAME"},
       {3, "SLURM_PROCID"}, {4, "SLURM_STEP_NUM_TASKS"},
       {0, "SLURM_LOCALID"}, {1, "SLURM_STEP_TASKS_PER_NODE[1]"},
       Sourced<int>{1, "SLURM_NODEID"}, Sourced<int>{2, "SLURM_STEP_NUM_NODES"},
       Sourced<Strings>{{"n1", "n2"}, "SLURM_STEP_NODELIST"},
       Sourced<Ints>{{3, 1}, "SLURM_STEP_TASKS_PER_NODE"},
       {{}, kNoneAllocated}, {0, kFirst}, 0},

      // The batch script of a 1-node job: the only agent.
      {batch1, {}, Host("gpu007"), Scheduler::kSlurm,
       {"60017", "SLURM_JOB_ID"}, {"solo", "SLURM_JOB_NAME"},
       {0, kBatch}, {1, kBatch}, {0, kBatch}, {1, kBatch},
       Sourced<int>{0, "batch script: the first node"}, Sourced<int>{1, "SLURM_JOB_NUM_NODES"},
       Sourced<Strings>{{"gpu007"}, "SLURM_JOB_NODELIST"}, Sourced<Ints>{{1}, kBatch},
       {{"0", "1"}, "CUDA_VISIBLE_DEVICES"}, {0, kFirst}, 0},
      // Slurm's reserved step ids are not srun steps: the batch step (0xfffffffb since 20.11),
      {batch1, {{"SLURM_STEP_ID", "4294967291"}}, Host("gpu007"), Scheduler::kSlurm,
       {"60017", "SLURM_JOB_ID"}, {"solo", "SLURM_JOB_NAME"},
       {0, kBatch}, {1, kBatch}, {0, kBatch}, {1, kBatch},
       Sourced<int>{0, "batch script: the first node"}, Sourced<int>{1, "SLURM_JOB_NUM_NODES"},
       Sourced<Strings>{{"gpu007"}, "SLURM_JOB_NODELIST"}, Sourced<Ints>{{1}, kBatch},
       {{"0", "1"}, "CUDA_VISIBLE_DEVICES"}, {0, kFirst}, 0},
      // the interactive step (salloc with use_interactive_step),
      {batch1, {{"SLURM_STEP_ID", "4294967290"}}, Host("gpu007"), Scheduler::kSlurm,
       {"60017", "SLURM_JOB_ID"}, {"solo", "SLURM_JOB_NAME"},
       {0, kBatch}, {1, kBatch}, {0, kBatch}, {1, kBatch},
       Sourced<int>{0, "batch script: the first node"}, Sourced<int>{1, "SLURM_JOB_NUM_NODES"},
       Sourced<Strings>{{"gpu007"}, "SLURM_JOB_NODELIST"}, Sourced<Ints>{{1}, kBatch},
       {{"0", "1"}, "CUDA_VISIBLE_DEVICES"}, {0, kFirst}, 0},
      // the extern step,
      {batch1, {{"SLURM_STEP_ID", "4294967292"}}, Host("gpu007"), Scheduler::kSlurm,
       {"60017", "SLURM_JOB_ID"}, {"solo", "SLURM_JOB_NAME"},
       {0, kBatch}, {1, kBatch}, {0, kBatch}, {1, kBatch},
       Sourced<int>{0, "batch script: the first node"}, Sourced<int>{1, "SLURM_JOB_NUM_NODES"},
       Sourced<Strings>{{"gpu007"}, "SLURM_JOB_NODELIST"}, Sourced<Ints>{{1}, kBatch},
       {{"0", "1"}, "CUDA_VISIBLE_DEVICES"}, {0, kFirst}, 0},
      // and the batch step id of Slurm before 20.11.
      {batch1, {{"SLURM_STEP_ID", "4294967294"}}, Host("gpu007"), Scheduler::kSlurm,
       {"60017", "SLURM_JOB_ID"}, {"solo", "SLURM_JOB_NAME"},
       {0, kBatch}, {1, kBatch}, {0, kBatch}, {1, kBatch},
       Sourced<int>{0, "batch script: the first node"}, Sourced<int>{1, "SLURM_JOB_NUM_NODES"},
       Sourced<Strings>{{"gpu007"}, "SLURM_JOB_NODELIST"}, Sourced<Ints>{{1}, kBatch},
       {{"0", "1"}, "CUDA_VISIBLE_DEVICES"}, {0, kFirst}, 0},
      // Older spellings only.
      {batch1, {{"SLURM_JOB_NUM_NODES", std::nullopt}, {"SLURM_JOB_NODELIST", std::nullopt}},
       Host("gpu007"), Scheduler::kSlurm,
       {"60017", "SLURM_JOB_ID"}, {"solo", "SLURM_JOB_NAME"},
       {0, kBatch}, {1, kBatch}, {0, kBatch}, {1, kBatch},
       Sourced<int>{0, "batch script: the first node"}, Sourced<int>{1, "SLURM_NNODES"},
       Sourced<Strings>{{"gpu007"}, "SLURM_NODELIST"}, Sourced<Ints>{{1}, kBatch},
       {{"0", "1"}, "CUDA_VISIBLE_DEVICES"}, {0, kFirst}, 0},

      // One task after a requeue.
      {requeued, {}, Host("gpu004"), Scheduler::kSlurm,
       {"9103", "SLURM_JOB_ID"}, {"sweep", "SLURM_JOB_NAME"},
       {0, "SLURM_PROCID"}, {1, "SLURM_STEP_NUM_TASKS"},
       {0, "SLURM_LOCALID"}, {1, "SLURM_STEP_TASKS_PER_NODE[0]"},
       Sourced<int>{0, "SLURM_NODEID"}, Sourced<int>{1, "SLURM_STEP_NUM_NODES"},
       Sourced<Strings>{{"gpu004"}, "SLURM_STEP_NODELIST"},
       Sourced<Ints>{{1}, "SLURM_STEP_TASKS_PER_NODE"},
       {{"0"}, "CUDA_VISIBLE_DEVICES"}, {1, "SLURM_RESTART_COUNT"}, 0},

      // mpirun without Slurm: identity from OMPI_COMM_WORLD_*, nodes learnt at rendezvous.
      {mpirun, {}, Host("b"), Scheduler::kOpenMpi,
       {"", kRendezvous}, {"", ""},
       {1, "OMPI_COMM_WORLD_RANK"}, {2, "OMPI_COMM_WORLD_SIZE"},
       {0, "OMPI_COMM_WORLD_LOCAL_RANK"}, {1, "OMPI_COMM_WORLD_LOCAL_SIZE"},
       kAbsent, kAbsent, kAbsent, kAbsent,
       {{}, kNoneFound}, {0, kFirst}, 0},
      // Outside Slurm the GPUs are the device files this host has.
      {mpirun, {}, Host("b", 2), Scheduler::kOpenMpi,
       {"", kRendezvous}, {"", ""},
       {1, "OMPI_COMM_WORLD_RANK"}, {2, "OMPI_COMM_WORLD_SIZE"},
       {0, "OMPI_COMM_WORLD_LOCAL_RANK"}, {1, "OMPI_COMM_WORLD_LOCAL_SIZE"},
       kAbsent, kAbsent, kAbsent, kAbsent,
       {{"0", "1"}, "/dev/nvidia* device files"}, {0, kFirst}, 0},
      // mpirun inside Slurm: SLURM_PROCID=0/SLURM_NODEID=0 are mpirun's daemon's, not ours.
      {mpirun_slurm, {}, Host("n2"), Scheduler::kOpenMpi,
       {"5521", "SLURM_JOB_ID"}, {"mpijob", "SLURM_JOB_NAME"},
       {1, "OMPI_COMM_WORLD_RANK"}, {2, "OMPI_COMM_WORLD_SIZE"},
       {0, "OMPI_COMM_WORLD_LOCAL_RANK"}, {1, "OMPI_COMM_WORLD_LOCAL_SIZE"},
       kAbsent, kAbsent, kAbsent, kAbsent,
       {{}, kNoneAllocated}, {0, kFirst}, 0},
      // ... and a requeued one still reports the restart.
      {mpirun_slurm, {{"SLURM_RESTART_COUNT", "2"}}, Host("n2"), Scheduler::kOpenMpi,
       {"5521", "SLURM_JOB_ID"}, {"mpijob", "SLURM_JOB_NAME"},
       {1, "OMPI_COMM_WORLD_RANK"}, {2, "OMPI_COMM_WORLD_SIZE"},
       {0, "OMPI_COMM_WORLD_LOCAL_RANK"}, {1, "OMPI_COMM_WORLD_LOCAL_SIZE"},
       kAbsent, kAbsent, kAbsent, kAbsent,
       {{}, kNoneAllocated}, {2, "SLURM_RESTART_COUNT"}, 0},

      // torchrun-style variables from the platform.
      {torch, {}, Host("train-worker-1", 8), Scheduler::kTorchrun,
       {"", kRendezvous}, {"", ""},
       {1, "NODE_RANK"}, {2, "NNODES"}, {0, kTorch}, {1, kTorch},
       Sourced<int>{1, "NODE_RANK"}, Sourced<int>{2, "NNODES"},
       kAbsent, Sourced<Ints>{{1, 1}, kTorch},
       {{"0", "1", "2", "3", "4", "5", "6", "7"}, "/dev/nvidia* device files"}, {0, kFirst}, 0},
      {torch, {{"TORCHELASTIC_RUN_ID", "exp42"}, {"CUDA_VISIBLE_DEVICES", "1,0"}},
       Host("train-worker-1", 8), Scheduler::kTorchrun,
       {"exp42", "TORCHELASTIC_RUN_ID"}, {"", ""},
       {1, "NODE_RANK"}, {2, "NNODES"}, {0, kTorch}, {1, kTorch},
       Sourced<int>{1, "NODE_RANK"}, Sourced<int>{2, "NNODES"},
       kAbsent, Sourced<Ints>{{1, 1}, kTorch},
       {{"1", "0"}, "CUDA_VISIBLE_DEVICES"}, {0, kFirst}, 0},
      // torchrun's own PET_ spellings.
      {torch,
       {{"NNODES", std::nullopt}, {"NODE_RANK", std::nullopt}, {"PET_NNODES", "3"},
        {"PET_NODE_RANK", "2"}},
       Host("train-worker-2"), Scheduler::kTorchrun,
       {"", kRendezvous}, {"", ""},
       {2, "PET_NODE_RANK"}, {3, "PET_NNODES"}, {0, kTorch}, {1, kTorch},
       Sourced<int>{2, "PET_NODE_RANK"}, Sourced<int>{3, "PET_NNODES"},
       kAbsent, Sourced<Ints>{{1, 1, 1}, kTorch},
       {{}, kNoneFound}, {0, kFirst}, 0},

      // Nothing: one agent on this machine.
      {local, {}, Host("ws12"), Scheduler::kLocal,
       {"", "generated locally (time and pid)"}, {"", ""},
       {0, kLocal}, {1, kLocal}, {0, kLocal}, {1, kLocal},
       Sourced<int>{0, kLocal}, Sourced<int>{1, kLocal},
       Sourced<Strings>{{"ws12"}, "hostname"}, Sourced<Ints>{{1}, kLocal},
       {{}, kNoneFound}, {0, kFirst}, 0},
      {local, {}, Host("ws12", 2), Scheduler::kLocal,
       {"", "generated locally (time and pid)"}, {"", ""},
       {0, kLocal}, {1, kLocal}, {0, kLocal}, {1, kLocal},
       Sourced<int>{0, kLocal}, Sourced<int>{1, kLocal},
       Sourced<Strings>{{"ws12"}, "hostname"}, Sourced<Ints>{{1}, kLocal},
       {{"0", "1"}, "/dev/nvidia* device files"}, {0, kFirst}, 0},
      // CUDA_VISIBLE_DEVICES narrows what the host has; -1 hides everything.
      {local, {{"CUDA_VISIBLE_DEVICES", "1"}}, Host("ws12", 2), Scheduler::kLocal,
       {"", "generated locally (time and pid)"}, {"", ""},
       {0, kLocal}, {1, kLocal}, {0, kLocal}, {1, kLocal},
       Sourced<int>{0, kLocal}, Sourced<int>{1, kLocal},
       Sourced<Strings>{{"ws12"}, "hostname"}, Sourced<Ints>{{1}, kLocal},
       {{"1"}, "CUDA_VISIBLE_DEVICES"}, {0, kFirst}, 0},
      {local, {{"CUDA_VISIBLE_DEVICES", "-1"}}, Host("ws12", 2), Scheduler::kLocal,
       {"", "generated locally (time and pid)"}, {"", ""},
       {0, kLocal}, {1, kLocal}, {0, kLocal}, {1, kLocal},
       Sourced<int>{0, kLocal}, Sourced<int>{1, kLocal},
       Sourced<Strings>{{"ws12"}, "hostname"}, Sourced<Ints>{{1}, kLocal},
       {{}, "CUDA_VISIBLE_DEVICES=-1"}, {0, kFirst}, 0},
      // Left-over worker variables from another launcher are ignored, with a warning each.
      {local, {{"RANK", "3"}, {"WORLD_SIZE", "8"}}, Host("ws12"), Scheduler::kLocal,
       {"", "generated locally (time and pid)"}, {"", ""},
       {0, kLocal}, {1, kLocal}, {0, kLocal}, {1, kLocal},
       Sourced<int>{0, kLocal}, Sourced<int>{1, kLocal},
       Sourced<Strings>{{"ws12"}, "hostname"}, Sourced<Ints>{{1}, kLocal},
       {{}, kNoneFound}, {0, kFirst}, 2},
  };
  // clang-format on
}

TEST(DetectLaunchEnvironmentTest, RecordedEnvironments) {
  for (const DetectCase& c : DetectCases()) {
    SCOPED_TRACE(Describe(c.file, c.edits) + " on host " + c.host.hostname);
    LaunchEnvironment got;
    try {
      got = DetectLaunchEnvironment(LoadEnv(c.file, c.edits), c.host);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "threw: " << e.what();
      continue;
    }
    EXPECT_STREQ(SchedulerName(got.scheduler), SchedulerName(c.scheduler));
    EXPECT_FALSE(got.reason.empty());
    ExpectSourced("job_id", got.job_id, c.job_id);
    ExpectSourced("job_name", got.job_name, c.job_name);
    ExpectSourced("agent_rank", got.agent_rank, c.agent_rank);
    ExpectSourced("agent_count", got.agent_count, c.agent_count);
    ExpectSourced("local_agent_rank", got.local_agent_rank, c.local_rank);
    ExpectSourced("local_agent_count", got.local_agent_count, c.local_count);
    ExpectSourced("node_rank", got.node_rank, c.node_rank);
    ExpectSourced("node_count", got.node_count, c.node_count);
    ExpectSourced("hosts", got.hosts, c.hosts);
    ExpectSourced("agents_per_node", got.agents_per_node, c.agents_per_node);
    ExpectSourced("devices", got.devices, c.devices);
    ExpectSourced("restart_count", got.restart_count, c.restart_count);
    EXPECT_EQ(got.hostname, c.host.hostname);
    EXPECT_EQ(got.online_cpus, c.host.online_cpus);
    EXPECT_EQ(got.warnings.size(), c.warnings) << "warnings: " << Join(got.warnings);
  }
}

// Facts the table does not cover, one recording at a time.

TEST(DetectLaunchEnvironmentTest, RequeuedArrayTaskKeepsJobFacts) {
  const LaunchEnvironment got =
      DetectLaunchEnvironment(LoadEnv("slurm_srun_1node_1task_requeued.env", {}), Host("gpu004"));
  ASSERT_TRUE(got.cpus_per_task.has_value());
  EXPECT_EQ(got.cpus_per_task->value, 8);
  EXPECT_EQ(got.cpus_per_task->source, "SLURM_CPUS_PER_TASK");
  ASSERT_TRUE(got.job_end_time.has_value());
  EXPECT_EQ(got.job_end_time->value, 1717041600);
  EXPECT_EQ(got.job_end_time->source, "SLURM_JOB_END_TIME");
  ASSERT_TRUE(got.array_job_id.has_value());
  EXPECT_EQ(got.array_job_id->value, "9100");
  EXPECT_EQ(got.array_job_id->source, "SLURM_ARRAY_JOB_ID");
  ASSERT_TRUE(got.array_task_id.has_value());
  EXPECT_EQ(got.array_task_id->value, "3");
  EXPECT_EQ(got.array_task_id->source, "SLURM_ARRAY_TASK_ID");
  // The job id is the array task's own (it survives the requeue), not the array's.
  EXPECT_EQ(got.job_id.value, "9103");
  EXPECT_EQ(got.reason, "SLURM_JOB_ID is set, inside srun step 0");
  EXPECT_FALSE(got.master_addr.has_value());
  EXPECT_FALSE(got.master_port.has_value());
}

TEST(DetectLaunchEnvironmentTest, OptionalSlurmFactsAbsentWhenNotRecorded) {
  const LaunchEnvironment got =
      DetectLaunchEnvironment(LoadEnv("slurm_srun_hetero_3x1_1_node0_local1.env", {}), Host("n1"));
  EXPECT_FALSE(got.cpus_per_task.has_value());  // only with srun/sbatch -c
  EXPECT_FALSE(got.array_job_id.has_value());
  EXPECT_FALSE(got.array_task_id.has_value());
  ASSERT_TRUE(got.job_end_time.has_value());
  EXPECT_EQ(got.job_end_time->value, 1717002000);
}

TEST(DetectLaunchEnvironmentTest, TorchrunStyleGivesMaster) {
  const LaunchEnvironment got =
      DetectLaunchEnvironment(LoadEnv("torchrun_style_node1.env", {}), Host("train-worker-1"));
  ASSERT_TRUE(got.master_addr.has_value());
  EXPECT_EQ(got.master_addr->value, "10.0.0.1");
  EXPECT_EQ(got.master_addr->source, "MASTER_ADDR");
  ASSERT_TRUE(got.master_port.has_value());
  EXPECT_EQ(got.master_port->value, 29500);
  EXPECT_EQ(got.master_port->source, "MASTER_PORT");
  EXPECT_EQ(got.reason, "NNODES/NODE_RANK are set (torchrun-style launch)");
}

TEST(DetectLaunchEnvironmentTest, MpirunInsideSlurmSaysWhySlurmIdentityIsIgnored) {
  const LaunchEnvironment got =
      DetectLaunchEnvironment(LoadEnv("openmpi_mpirun_inside_slurm_rank1.env", {}), Host("n2"));
  EXPECT_EQ(got.reason,
            "OMPI_COMM_WORLD_SIZE is set (started by mpirun) inside Slurm job 5521; "
            "SLURM_PROCID/SLURM_NODEID are ignored under mpirun");
  EXPECT_FALSE(got.master_addr.has_value());
}

TEST(DetectLaunchEnvironmentTest, HostMismatchWarningNamesBothHosts) {
  const LaunchEnvironment got = DetectLaunchEnvironment(
      LoadEnv("slurm_srun_2node_4tpn_node1_local2.env", {}), Host("gpu001"));
  ASSERT_EQ(got.warnings.size(), 1u);
  EXPECT_EQ(got.warnings[0],
            "this host is 'gpu001' but SLURM_STEP_NODELIST[1] (SLURM_NODEID=1) is 'gpu002'");
}

TEST(DetectLaunchEnvironmentTest, LeftOverWorkerVariablesAreWarnedAbout) {
  const LaunchEnvironment got =
      DetectLaunchEnvironment(LoadEnv("local_plain.env", {{"LOCAL_RANK", "1"}}), Host("ws12"));
  ASSERT_EQ(got.warnings.size(), 1u);
  EXPECT_EQ(got.warnings[0],
            "LOCAL_RANK=1 is set but ignored: the runner sets the workers' LOCAL_RANK itself (is "
            "it running inside another launcher's worker?)");
}

TEST(DetectLaunchEnvironmentTest, MissingRecordingIsAnErrorNotAnEmptyEnvironment) {
  // The recordings are read with MapEnvironment::FromFile; a missing file is an error, not an
  // empty environment (which would silently detect "local").
  EXPECT_THROW(static_cast<void>(common::MapEnvironment::FromFile(EnvPath("no_such_file.env"))),
               common::UsageError);
}

// ---------------------------------------------------------------------------------------------
// Faults: a good recording with one thing broken. The error must name the variable and show its
// raw value (and, for hostlists and task counts, the column of the fault).

struct ErrorCase {
  std::string file;
  Edits edits;
  std::vector<std::string> fragments;  // each must appear in the message
};

std::vector<ErrorCase> ErrorCases() {
  const std::string srun2 = "slurm_srun_2node_4tpn_node1_local2.env";
  const std::string hetero0 = "slurm_srun_hetero_3x1_1_node0_local1.env";
  const std::string hetero1 = "slurm_srun_hetero_3x1_1_node1.env";
  const std::string batch1 = "slurm_batch_1node.env";
  const std::string batch2 = "slurm_batch_2node.env";
  const std::string requeued = "slurm_srun_1node_1task_requeued.env";
  const std::string mpirun = "openmpi_mpirun_2hosts_rank1.env";
  const std::string mpirun_slurm = "openmpi_mpirun_inside_slurm_rank1.env";
  const std::string torch = "torchrun_style_node1.env";
  const std::string local = "local_plain.env";
  // clang-format off
  return {
      // Identity under srun.
      {srun2, {{"SLURM_PROCID", std::nullopt}},
       {"SLURM_PROCID is not set", "srun --ntasks-per-node=1 runner"}},
      {srun2, {{"SLURM_PROCID", ""}}, {"SLURM_PROCID is set but empty"}},
      {srun2, {{"SLURM_PROCID", "abc"}}, {"SLURM_PROCID='abc'", "is not an integer"}},
      {srun2, {{"SLURM_PROCID", "6x"}}, {"SLURM_PROCID='6x'", "is not an integer"}},
      {srun2, {{"SLURM_PROCID", " 6"}}, {"SLURM_PROCID=' 6'", "is not an integer"}},
      {srun2, {{"SLURM_PROCID", "8"}},
       {"SLURM_PROCID=8", "out of range", "SLURM_STEP_NUM_TASKS=8", "0..7"}},
      {srun2, {{"SLURM_PROCID", "-1"}}, {"SLURM_PROCID='-1'", "out of range"}},
      {srun2, {{"SLURM_NODEID", std::nullopt}}, {"SLURM_NODEID is not set"}},
      {srun2, {{"SLURM_NODEID", "2"}},
       {"SLURM_NODEID=2", "out of range", "SLURM_STEP_NUM_NODES=2", "0..1"}},
      {srun2, {{"SLURM_NODEID", "-1"}}, {"SLURM_NODEID='-1'", "out of range"}},
      {srun2, {{"SLURM_LOCALID", std::nullopt}}, {"SLURM_LOCALID is not set"}},
      {srun2, {{"SLURM_LOCALID", "4"}},
       {"SLURM_LOCALID=4", "out of range", "SLURM_STEP_TASKS_PER_NODE='4(x2)'", "node 1",
        "4 task(s)"}},
      {hetero0, {{"SLURM_LOCALID", "3"}},
       {"SLURM_LOCALID=3", "SLURM_STEP_TASKS_PER_NODE='3(x1),1'", "node 0", "3 task(s)"}},
      {hetero1, {{"SLURM_LOCALID", "1"}},
       {"SLURM_LOCALID=1", "SLURM_STEP_TASKS_PER_NODE='3(x1),1'", "node 1", "1 task(s)"}},
      {srun2, {{"SLURM_STEP_ID", "abc"}}, {"SLURM_STEP_ID='abc'", "is not an integer"}},

      // The step's layout contradicts itself.
      {srun2, {{"SLURM_STEP_NODELIST", "gpu[001-003]"}},
       {"SLURM_STEP_NODELIST='gpu[001-003]'", "names 3 hosts", "SLURM_STEP_NUM_NODES=2"}},
      {srun2, {{"SLURM_STEP_NUM_NODES", "3"}},
       {"SLURM_STEP_NODELIST='gpu[001-002]'", "names 2 hosts", "SLURM_STEP_NUM_NODES=3"}},
      {srun2, {{"SLURM_STEP_NUM_NODES", "0"}}, {"SLURM_STEP_NUM_NODES='0'", "out of range"}},
      {srun2, {{"SLURM_STEP_NUM_NODES", "two"}}, {"SLURM_STEP_NUM_NODES='two'", "not an integer"}},
      {srun2, {{"SLURM_STEP_TASKS_PER_NODE", "4,3"}},
       {"SLURM_STEP_TASKS_PER_NODE='4,3'", "adds up to 7", "SLURM_STEP_NUM_TASKS=8"}},
      {srun2, {{"SLURM_STEP_NUM_TASKS", "6"}},
       {"SLURM_STEP_TASKS_PER_NODE='4(x2)'", "adds up to 8", "SLURM_STEP_NUM_TASKS=6"}},
      {srun2, {{"SLURM_STEP_TASKS_PER_NODE", "4(x3)"}},
       {"SLURM_STEP_TASKS_PER_NODE='4(x3)'", "lists 3 nodes", "SLURM_STEP_NUM_NODES=2"}},
      {srun2, {{"SLURM_STEP_NODELIST", std::nullopt}, {"SLURM_JOB_NODELIST", std::nullopt}},
       {"SLURM_JOB_NODELIST is not set"}},
      // Job variables are checked too when they stand in for the step's.
      {srun2, {{"SLURM_STEP_NUM_TASKS", std::nullopt}, {"SLURM_NTASKS", "7"}},
       {"SLURM_STEP_TASKS_PER_NODE='4(x2)'", "adds up to 8", "SLURM_NTASKS=7"}},

      // Malformed hostlists and task counts: variable, raw value and column.
      {srun2, {{"SLURM_STEP_NODELIST", "gpu[001-"}},
       {"SLURM_STEP_NODELIST='gpu[001-'", "is not a valid Slurm hostlist", "unbalanced '['",
        "(column 4)"}},
      {srun2, {{"SLURM_STEP_NODELIST", "gpu001, gpu002"}},
       {"SLURM_STEP_NODELIST='gpu001, gpu002'", "whitespace", "(column 8)"}},
      {srun2, {{"SLURM_STEP_NODELIST", "gpu[002-001]"}},
       {"SLURM_STEP_NODELIST='gpu[002-001]'", "reversed range", "(column 5)"}},
      {srun2, {{"SLURM_STEP_NODELIST", ""}}, {"SLURM_STEP_NODELIST is set but empty"}},
      {srun2, {{"SLURM_STEP_TASKS_PER_NODE", "4(x2"}},
       {"SLURM_STEP_TASKS_PER_NODE='4(x2'", "is not a valid tasks-per-node list", "(column 5)"}},
      {srun2, {{"SLURM_STEP_TASKS_PER_NODE", "4x2"}},
       {"SLURM_STEP_TASKS_PER_NODE='4x2'", "is not a valid tasks-per-node list", "(column 2)"}},
      {srun2, {{"SLURM_STEP_TASKS_PER_NODE", "4(x0)"}},
       {"SLURM_STEP_TASKS_PER_NODE='4(x0)'", "repeat count 0", "(column 4)"}},
      {srun2, {{"SLURM_STEP_TASKS_PER_NODE", "4,,4"}},
       {"SLURM_STEP_TASKS_PER_NODE='4,,4'", "empty item", "(column 3)"}},

      // GPUs.
      {srun2, {{"CUDA_VISIBLE_DEVICES", "0,,2,3"}},
       {"CUDA_VISIBLE_DEVICES='0,,2,3'", "empty entry at position 2"}},
      {srun2, {{"CUDA_VISIBLE_DEVICES", "0,1,2,3,"}},
       {"CUDA_VISIBLE_DEVICES='0,1,2,3,'", "empty entry at position 5"}},
      {srun2, {{"CUDA_VISIBLE_DEVICES", ",0"}},
       {"CUDA_VISIBLE_DEVICES=',0'", "empty entry at position 1"}},
      {srun2, {{"CUDA_VISIBLE_DEVICES", "0,1,1,3"}},
       {"CUDA_VISIBLE_DEVICES='0,1,1,3'", "lists GPU '1' twice"}},
      {srun2, {{"CUDA_VISIBLE_DEVICES", std::nullopt}, {"SLURM_GPUS_ON_NODE", "four"}},
       {"SLURM_GPUS_ON_NODE='four'", "is not an integer"}},
      {local, {{"CUDA_VISIBLE_DEVICES", "0,0"}}, {"CUDA_VISIBLE_DEVICES='0,0'", "twice"}},

      // Job-level facts.
      {srun2, {{"SLURM_JOB_ID", "abc"}}, {"SLURM_JOB_ID='abc'", "is not an integer"}},
      {srun2, {{"SLURM_JOB_ID", "0"}}, {"SLURM_JOB_ID='0'", "out of range"}},
      {srun2, {{"SLURM_JOB_ID", ""}}, {"SLURM_JOB_ID is set but empty"}},
      {requeued, {{"SLURM_RESTART_COUNT", "-1"}}, {"SLURM_RESTART_COUNT='-1'", "out of range"}},
      {requeued, {{"SLURM_RESTART_COUNT", "once"}},
       {"SLURM_RESTART_COUNT='once'", "is not an integer"}},
      {requeued, {{"SLURM_ARRAY_TASK_ID", std::nullopt}},
       {"SLURM_ARRAY_TASK_ID is not set", "SLURM_ARRAY_JOB_ID"}},
      {requeued, {{"SLURM_ARRAY_JOB_ID", "9100_3"}},
       {"SLURM_ARRAY_JOB_ID='9100_3'", "is not an integer"}},
      {requeued, {{"SLURM_CPUS_PER_TASK", "0"}}, {"SLURM_CPUS_PER_TASK='0'", "out of range"}},
      {requeued, {{"SLURM_JOB_END_TIME", "tomorrow"}},
       {"SLURM_JOB_END_TIME='tomorrow'", "is not an integer"}},

      // The batch script.
      {batch2, {},
       {"batch script", "Slurm job 60018", "2 nodes", "SLURM_JOB_NUM_NODES=2",
        "srun --ntasks-per-node=1 runner"}},
      {batch2, {{"SLURM_JOB_NUM_NODES", std::nullopt}}, {"SLURM_NNODES=2", "batch script"}},
      {batch2, {{"SLURM_STEP_ID", "4294967291"}}, {"batch script", "SLURM_JOB_NUM_NODES=2"}},
      {batch1, {{"SLURM_JOB_NODELIST", "gpu[007-008]"}},
       {"SLURM_JOB_NODELIST='gpu[007-008]'", "names 2 hosts", "SLURM_JOB_NUM_NODES=1"}},
      {batch1, {{"SLURM_JOB_NODELIST", "gpu[007"}},
       {"SLURM_JOB_NODELIST='gpu[007'", "(column 4)"}},
      {batch1, {{"SLURM_JOB_NUM_NODES", std::nullopt}, {"SLURM_NNODES", std::nullopt}},
       {"SLURM_NNODES is not set"}},

      // mpirun.
      {mpirun, {{"OMPI_COMM_WORLD_RANK", "2"}},
       {"OMPI_COMM_WORLD_RANK='2'", "out of range", "0..1"}},
      {mpirun, {{"OMPI_COMM_WORLD_RANK", std::nullopt}}, {"OMPI_COMM_WORLD_RANK is not set"}},
      {mpirun, {{"OMPI_COMM_WORLD_SIZE", std::nullopt}}, {"OMPI_COMM_WORLD_SIZE is not set"}},
      {mpirun, {{"OMPI_COMM_WORLD_SIZE", "0"}}, {"OMPI_COMM_WORLD_SIZE='0'", "out of range"}},
      {mpirun, {{"OMPI_COMM_WORLD_LOCAL_RANK", "1"}},
       {"OMPI_COMM_WORLD_LOCAL_RANK='1'", "out of range", "0..0"}},
      {mpirun, {{"OMPI_COMM_WORLD_LOCAL_SIZE", "3"}},
       {"OMPI_COMM_WORLD_LOCAL_SIZE='3'", "out of range", "1..2"}},
      {mpirun_slurm, {{"OMPI_COMM_WORLD_RANK", "one"}},
       {"OMPI_COMM_WORLD_RANK='one'", "is not an integer"}},
      {mpirun_slurm, {{"SLURM_JOB_ID", "5521x"}}, {"SLURM_JOB_ID='5521x'", "is not an integer"}},

      // torchrun-style.
      {torch, {{"NODE_RANK", std::nullopt}, {"MASTER_ADDR", std::nullopt},
               {"MASTER_PORT", std::nullopt}},
       {"NODE_RANK is not set", "NNODES, NODE_RANK, MASTER_ADDR and MASTER_PORT"}},
      {torch, {{"NNODES", std::nullopt}, {"MASTER_ADDR", std::nullopt},
               {"MASTER_PORT", std::nullopt}},
       {"NNODES is not set", "NNODES, NODE_RANK, MASTER_ADDR and MASTER_PORT"}},
      {torch, {{"MASTER_ADDR", std::nullopt}}, {"MASTER_ADDR is not set"}},
      {torch, {{"MASTER_PORT", std::nullopt}}, {"MASTER_PORT is not set"}},
      {torch, {{"MASTER_PORT", "70000"}}, {"MASTER_PORT='70000'", "out of range", "1..65535"}},
      {torch, {{"MASTER_PORT", "http"}}, {"MASTER_PORT='http'", "is not an integer"}},
      {torch, {{"NODE_RANK", "2"}}, {"NODE_RANK='2'", "out of range", "0..1"}},
      {torch, {{"NNODES", "1:2"}}, {"NNODES='1:2'", "is an elastic range"}},
  };
  // clang-format on
}

TEST(DetectLaunchEnvironmentTest, FaultsNameTheVariableAndItsValue) {
  const std::vector<ErrorCase> cases = ErrorCases();
  ASSERT_GE(cases.size(), 15u);
  for (const ErrorCase& c : cases) {
    SCOPED_TRACE(Describe(c.file, c.edits));
    try {
      static_cast<void>(DetectLaunchEnvironment(LoadEnv(c.file, c.edits), Host("somehost")));
      ADD_FAILURE() << "no error; expected one mentioning: " << Join(c.fragments);
    } catch (const common::EnvironmentError& e) {
      const std::string message = e.what();
      EXPECT_EQ(e.code(), common::kExitEnvironment);
      for (const std::string& fragment : c.fragments) {
        EXPECT_NE(message.find(fragment), std::string::npos)
            << "missing '" << fragment << "' in: " << message;
      }
    } catch (const std::exception& e) {
      ADD_FAILURE() << "wrong exception type; message: " << e.what();
    }
  }
}

// A user who writes the NNODES/NODE_RANK spelling and forgets one of the pair must be told about
// the variable of that spelling, not about torchrun's internal PET_ alias.
TEST(DetectLaunchEnvironmentTest, MissingTorchrunPartnerIsNamedInTheUsersSpelling) {
  const std::vector<std::pair<Edits, std::string>> cases = {
      {{{"NODE_RANK", std::nullopt}}, "NODE_RANK is not set"},
      {{{"NNODES", std::nullopt}}, "NNODES is not set"},
  };
  for (const auto& [edits, prefix] : cases) {
    SCOPED_TRACE(Describe("torchrun_style_node1.env", edits));
    try {
      static_cast<void>(
          DetectLaunchEnvironment(LoadEnv("torchrun_style_node1.env", edits), Host("w1")));
      ADD_FAILURE() << "no error";
    } catch (const common::EnvironmentError& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.rfind(prefix, 0), 0u) << message;
    }
  }
}

// torchrun's elastic "MIN:MAX" node counts are not supported; the code carries a hint saying so.
// The hint belongs with the value that needs it, NNODES='1:4', not with an unset NNODES.
TEST(DetectLaunchEnvironmentTest, ElasticNodeRangeIsExplained) {
  try {
    static_cast<void>(DetectLaunchEnvironment(
        LoadEnv("torchrun_style_node1.env", {{"NNODES", "1:4"}}), Host("w1")));
    ADD_FAILURE() << "no error";
  } catch (const common::EnvironmentError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("NNODES='1:4'"), std::string::npos) << message;
    EXPECT_NE(message.find("elastic range"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace runner

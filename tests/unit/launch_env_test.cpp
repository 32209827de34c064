#include "runner/launch_env.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/environment.h"
#include "common/errors.h"
#include "tests/unit/test_helpers.h"

// Detection from recorded environments (tests/data/env/*.env, one file per way of launching the
// runner), each optionally edited (variables set or unset) to make the variants and the faults.

namespace runner {
namespace {

using Strings = std::vector<std::string>;
using Ints = std::vector<int>;

using testing_support::Describe;
using testing_support::Edits;
using testing_support::Host;
using testing_support::Join;
using testing_support::LoadEnv;
using testing_support::recorded::kBatch1;
using testing_support::recorded::kHetero0;
using testing_support::recorded::kHetero1;
using testing_support::recorded::kLocal;
using testing_support::recorded::kMpirun;
using testing_support::recorded::kMpirunInSlurm;
using testing_support::recorded::kRequeued;
using testing_support::recorded::kSrun2;
using testing_support::recorded::kTorchrun;

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
const char kFallback[] = "single-node fallback";
const char kRendezvous[] = "picked by the node-0 agent at rendezvous";
const char kNoneAllocated[] = "none allocated (SLURM_GPUS_ON_NODE and CUDA_VISIBLE_DEVICES unset)";
const char kNoneFound[] = "none found (no CUDA_VISIBLE_DEVICES, no /dev/nvidia*)";

constexpr std::nullopt_t kAbsent = std::nullopt;

// The 2-node job's step variables, removed to see the job variables used instead.
const Edits kNoStepVars = {{"SLURM_STEP_NODELIST", std::nullopt},
                           {"SLURM_STEP_NUM_NODES", std::nullopt},
                           {"SLURM_STEP_NUM_TASKS", std::nullopt},
                           {"SLURM_STEP_TASKS_PER_NODE", std::nullopt}};

// Sources and recordings that repeat across rows.
const Strings kGpus4 = {"0", "1", "2", "3"};
const Sourced<Strings> kSrun2Hosts{{"gpu001", "gpu002"}, "SLURM_STEP_NODELIST"};
const Sourced<Ints> kSrun2Tpn{{4, 4}, "SLURM_STEP_TASKS_PER_NODE"};

// One row per case reads better than one field per line.
// clang-format off
// srun steps: identity from SLURM_PROCID/NODEID/LOCALID and the step's layout.
const std::vector<DetectCase> kSlurmStepCases = {
      // srun --ntasks-per-node=4 in a 2-node GPU job; this agent is task 6 = node 1, local 2.
      {kSrun2, {}, Host("gpu002"), Scheduler::kSlurm,
       {"48213", "SLURM_JOB_ID"}, {"train", "SLURM_JOB_NAME"},
       {6, "SLURM_PROCID"}, {8, "SLURM_STEP_NUM_TASKS"},
       {2, "SLURM_LOCALID"}, {4, "SLURM_STEP_TASKS_PER_NODE[1]"},
       Sourced<int>{1, "SLURM_NODEID"}, Sourced<int>{2, "SLURM_STEP_NUM_NODES"},
       kSrun2Hosts, kSrun2Tpn,
       {kGpus4, "CUDA_VISIBLE_DEVICES"}, {0, kFirst}, 0},
      // A fully qualified hostname matches its short node name: no warning.
      {kSrun2, {}, Host("gpu002.hpc.example.org"), Scheduler::kSlurm,
       {"48213", "SLURM_JOB_ID"}, {"train", "SLURM_JOB_NAME"},
       {6, "SLURM_PROCID"}, {8, "SLURM_STEP_NUM_TASKS"},
       {2, "SLURM_LOCALID"}, {4, "SLURM_STEP_TASKS_PER_NODE[1]"},
       Sourced<int>{1, "SLURM_NODEID"}, Sourced<int>{2, "SLURM_STEP_NUM_NODES"},
       kSrun2Hosts, kSrun2Tpn,
       {kGpus4, "CUDA_VISIBLE_DEVICES"}, {0, kFirst}, 0},
      // Running on the host the nodelist gives node 0: odd, warned about, not fatal.
      {kSrun2, {}, Host("gpu001"), Scheduler::kSlurm,
       {"48213", "SLURM_JOB_ID"}, {"train", "SLURM_JOB_NAME"},
       {6, "SLURM_PROCID"}, {8, "SLURM_STEP_NUM_TASKS"},
       {2, "SLURM_LOCALID"}, {4, "SLURM_STEP_TASKS_PER_NODE[1]"},
       Sourced<int>{1, "SLURM_NODEID"}, Sourced<int>{2, "SLURM_STEP_NUM_NODES"},
       kSrun2Hosts, kSrun2Tpn,
       {kGpus4, "CUDA_VISIBLE_DEVICES"}, {0, kFirst}, 1},
      // Without the step variables the job's are used (same values here).
      {kSrun2, kNoStepVars, Host("gpu002"), Scheduler::kSlurm,
       {"48213", "SLURM_JOB_ID"}, {"train", "SLURM_JOB_NAME"},
       {6, "SLURM_PROCID"}, {8, "SLURM_NTASKS"},
       {2, "SLURM_LOCALID"}, {4, "SLURM_TASKS_PER_NODE[1]"},
       Sourced<int>{1, "SLURM_NODEID"}, Sourced<int>{2, "SLURM_NNODES"},
       Sourced<Strings>{{"gpu001", "gpu002"}, "SLURM_JOB_NODELIST"},
       Sourced<Ints>{{4, 4}, "SLURM_TASKS_PER_NODE"},
       {kGpus4, "CUDA_VISIBLE_DEVICES"}, {0, kFirst}, 0},
      // Step variables win over job variables that disagree (srun -n2 inside a bigger job).
      {kSrun2,
       {{"SLURM_NTASKS", "16"}, {"SLURM_TASKS_PER_NODE", "8(x2)"}},
       Host("gpu002"), Scheduler::kSlurm,
       {"48213", "SLURM_JOB_ID"}, {"train", "SLURM_JOB_NAME"},
       {6, "SLURM_PROCID"}, {8, "SLURM_STEP_NUM_TASKS"},
       {2, "SLURM_LOCALID"}, {4, "SLURM_STEP_TASKS_PER_NODE[1]"},
       Sourced<int>{1, "SLURM_NODEID"}, Sourced<int>{2, "SLURM_STEP_NUM_NODES"},
       kSrun2Hosts, kSrun2Tpn,
       {kGpus4, "CUDA_VISIBLE_DEVICES"}, {0, kFirst}, 0},
      // No CUDA_VISIBLE_DEVICES: the GPU count Slurm gives, as indices.
      {kSrun2, {{"CUDA_VISIBLE_DEVICES", std::nullopt}}, Host("gpu002", 8), Scheduler::kSlurm,
       {"48213", "SLURM_JOB_ID"}, {"train", "SLURM_JOB_NAME"},
       {6, "SLURM_PROCID"}, {8, "SLURM_STEP_NUM_TASKS"},
       {2, "SLURM_LOCALID"}, {4, "SLURM_STEP_TASKS_PER_NODE[1]"},
       Sourced<int>{1, "SLURM_NODEID"}, Sourced<int>{2, "SLURM_STEP_NUM_NODES"},
       kSrun2Hosts, kSrun2Tpn,
       {kGpus4, "SLURM_GPUS_ON_NODE"}, {0, kFirst}, 0},
      // Slurm's marker for a GPU node without device files: no GPUs.
      {kSrun2, {{"CUDA_VISIBLE_DEVICES", "NoDevFiles"}}, Host("gpu002", 4), Scheduler::kSlurm,
       {"48213", "SLURM_JOB_ID"}, {"train", "SLURM_JOB_NAME"},
       {6, "SLURM_PROCID"}, {8, "SLURM_STEP_NUM_TASKS"},
       {2, "SLURM_LOCALID"}, {4, "SLURM_STEP_TASKS_PER_NODE[1]"},
       Sourced<int>{1, "SLURM_NODEID"}, Sourced<int>{2, "SLURM_STEP_NUM_NODES"},
       kSrun2Hosts, kSrun2Tpn,
       {{}, "CUDA_VISIBLE_DEVICES=NoDevFiles"}, {0, kFirst}, 0},
      // GPU UUIDs are kept as written.
      {kSrun2, {{"CUDA_VISIBLE_DEVICES", "GPU-8f1c2a,GPU-02b7de,MIG-4c1d/1/0,3"}}, Host("gpu002"),
       Scheduler::kSlurm,
       {"48213", "SLURM_JOB_ID"}, {"train", "SLURM_JOB_NAME"},
       {6, "SLURM_PROCID"}, {8, "SLURM_STEP_NUM_TASKS"},
       {2, "SLURM_LOCALID"}, {4, "SLURM_STEP_TASKS_PER_NODE[1]"},
       Sourced<int>{1, "SLURM_NODEID"}, Sourced<int>{2, "SLURM_STEP_NUM_NODES"},
       kSrun2Hosts, kSrun2Tpn,
       {{"GPU-8f1c2a", "GPU-02b7de", "MIG-4c1d/1/0", "3"}, "CUDA_VISIBLE_DEVICES"}, {0, kFirst}, 0},

      // 3(x1),1 on n[1-2], CPU only: the agent on node 0 with local id 1, and the one on node 1.
      {kHetero0, {}, Host("n1"), Scheduler::kSlurm,
       {"731", "SLURM_JOB_ID"}, {"cpujob", "SLURM_JOB_NAME"},
       {1, "SLURM_PROCID"}, {4, "SLURM_STEP_NUM_TASKS"},
       {1, "SLURM_LOCALID"}, {3, "SLURM_STEP_TASKS_PER_NODE[0]"},
       Sourced<int>{0, "SLURM_NODEID"}, Sourced<int>{2, "SLURM_STEP_NUM_NODES"},
       Sourced<Strings>{{"n1", "n2"}, "SLURM_STEP_NODELIST"},
       Sourced<Ints>{{3, 1}, "SLURM_STEP_TASKS_PER_NODE"},
       {{}, kNoneAllocated}, {0, kFirst}, 0},
      // What Slurm itself prints for the same layout; /dev/nvidia* is ignored under Slurm.
      {kHetero0, {{"SLURM_STEP_TASKS_PER_NODE", "3,1"}}, Host("n1", 2), Scheduler::kSlurm,
       {"731", "SLURM_JOB_ID"}, {"cpujob", "SLURM_JOB_NAME"},
       {1, "SLURM_PROCID"}, {4, "SLURM_STEP_NUM_TASKS"},
       {1, "SLURM_LOCALID"}, {3, "SLURM_STEP_TASKS_PER_NODE[0]"},
       Sourced<int>{0, "SLURM_NODEID"}, Sourced<int>{2, "SLURM_STEP_NUM_NODES"},
       Sourced<Strings>{{"n1", "n2"}, "SLURM_STEP_NODELIST"},
       Sourced<Ints>{{3, 1}, "SLURM_STEP_TASKS_PER_NODE"},
       {{}, kNoneAllocated}, {0, kFirst}, 0},
      {kHetero1, {}, Host("n2"), Scheduler::kSlurm,
       {"731", "SLURM_JOB_ID"}, {"cpujob", "SLURM_JOB_NAME"},
       {3, "SLURM_PROCID"}, {4, "SLURM_STEP_NUM_TASKS"},
       {0, "SLURM_LOCALID"}, {1, "SLURM_STEP_TASKS_PER_NODE[1]"},
       Sourced<int>{1, "SLURM_NODEID"}, Sourced<int>{2, "SLURM_STEP_NUM_NODES"},
       Sourced<Strings>{{"n1", "n2"}, "SLURM_STEP_NODELIST"},
       Sourced<Ints>{{3, 1}, "SLURM_STEP_TASKS_PER_NODE"},
       {{}, kNoneAllocated}, {0, kFirst}, 0},
};

// The batch script (and the step ids that are not srun steps), and a requeued task.
const std::vector<DetectCase> kSlurmBatchCases = {
      // The batch script of a 1-node job: the only agent.
      {kBatch1, {}, Host("gpu007"), Scheduler::kSlurm,
       {"60017", "SLURM_JOB_ID"}, {"solo", "SLURM_JOB_NAME"},
       {0, kBatch}, {1, kBatch}, {0, kBatch}, {1, kBatch},
       Sourced<int>{0, "batch script: the first node"}, Sourced<int>{1, "SLURM_JOB_NUM_NODES"},
       Sourced<Strings>{{"gpu007"}, "SLURM_JOB_NODELIST"}, Sourced<Ints>{{1}, kBatch},
       {{"0", "1"}, "CUDA_VISIBLE_DEVICES"}, {0, kFirst}, 0},
      // Slurm's reserved step ids are not srun steps: the batch step (0xfffffffb since 20.11),
      {kBatch1, {{"SLURM_STEP_ID", "4294967291"}}, Host("gpu007"), Scheduler::kSlurm,
       {"60017", "SLURM_JOB_ID"}, {"solo", "SLURM_JOB_NAME"},
       {0, kBatch}, {1, kBatch}, {0, kBatch}, {1, kBatch},
       Sourced<int>{0, "batch script: the first node"}, Sourced<int>{1, "SLURM_JOB_NUM_NODES"},
       Sourced<Strings>{{"gpu007"}, "SLURM_JOB_NODELIST"}, Sourced<Ints>{{1}, kBatch},
       {{"0", "1"}, "CUDA_VISIBLE_DEVICES"}, {0, kFirst}, 0},
      // the interactive step (salloc with use_interactive_step),
      {kBatch1, {{"SLURM_STEP_ID", "4294967290"}}, Host("gpu007"), Scheduler::kSlurm,
       {"60017", "SLURM_JOB_ID"}, {"solo", "SLURM_JOB_NAME"},
       {0, kBatch}, {1, kBatch}, {0, kBatch}, {1, kBatch},
       Sourced<int>{0, "batch script: the first node"}, Sourced<int>{1, "SLURM_JOB_NUM_NODES"},
       Sourced<Strings>{{"gpu007"}, "SLURM_JOB_NODELIST"}, Sourced<Ints>{{1}, kBatch},
       {{"0", "1"}, "CUDA_VISIBLE_DEVICES"}, {0, kFirst}, 0},
      // the extern step,
      {kBatch1, {{"SLURM_STEP_ID", "4294967292"}}, Host("gpu007"), Scheduler::kSlurm,
       {"60017", "SLURM_JOB_ID"}, {"solo", "SLURM_JOB_NAME"},
       {0, kBatch}, {1, kBatch}, {0, kBatch}, {1, kBatch},
       Sourced<int>{0, "batch script: the first node"}, Sourced<int>{1, "SLURM_JOB_NUM_NODES"},
       Sourced<Strings>{{"gpu007"}, "SLURM_JOB_NODELIST"}, Sourced<Ints>{{1}, kBatch},
       {{"0", "1"}, "CUDA_VISIBLE_DEVICES"}, {0, kFirst}, 0},
      // and the batch step id of Slurm before 20.11.
      {kBatch1, {{"SLURM_STEP_ID", "4294967294"}}, Host("gpu007"), Scheduler::kSlurm,
       {"60017", "SLURM_JOB_ID"}, {"solo", "SLURM_JOB_NAME"},
       {0, kBatch}, {1, kBatch}, {0, kBatch}, {1, kBatch},
       Sourced<int>{0, "batch script: the first node"}, Sourced<int>{1, "SLURM_JOB_NUM_NODES"},
       Sourced<Strings>{{"gpu007"}, "SLURM_JOB_NODELIST"}, Sourced<Ints>{{1}, kBatch},
       {{"0", "1"}, "CUDA_VISIBLE_DEVICES"}, {0, kFirst}, 0},
      // Older spellings only.
      {kBatch1, {{"SLURM_JOB_NUM_NODES", std::nullopt}, {"SLURM_JOB_NODELIST", std::nullopt}},
       Host("gpu007"), Scheduler::kSlurm,
       {"60017", "SLURM_JOB_ID"}, {"solo", "SLURM_JOB_NAME"},
       {0, kBatch}, {1, kBatch}, {0, kBatch}, {1, kBatch},
       Sourced<int>{0, "batch script: the first node"}, Sourced<int>{1, "SLURM_NNODES"},
       Sourced<Strings>{{"gpu007"}, "SLURM_NODELIST"}, Sourced<Ints>{{1}, kBatch},
       {{"0", "1"}, "CUDA_VISIBLE_DEVICES"}, {0, kFirst}, 0},

      // One task after a requeue.
      {kRequeued, {}, Host("gpu004"), Scheduler::kSlurm,
       {"9103", "SLURM_JOB_ID"}, {"sweep", "SLURM_JOB_NAME"},
       {0, "SLURM_PROCID"}, {1, "SLURM_STEP_NUM_TASKS"},
       {0, "SLURM_LOCALID"}, {1, "SLURM_STEP_TASKS_PER_NODE[0]"},
       Sourced<int>{0, "SLURM_NODEID"}, Sourced<int>{1, "SLURM_STEP_NUM_NODES"},
       Sourced<Strings>{{"gpu004"}, "SLURM_STEP_NODELIST"},
       Sourced<Ints>{{1}, "SLURM_STEP_TASKS_PER_NODE"},
       {{"0"}, "CUDA_VISIBLE_DEVICES"}, {1, "SLURM_RESTART_COUNT"}, 0},
};

// OpenMPI's mpirun, without and inside Slurm.
const std::vector<DetectCase> kMpirunCases = {
      // mpirun without Slurm: identity from OMPI_COMM_WORLD_*, nodes learnt at rendezvous.
      {kMpirun, {}, Host("b"), Scheduler::kOpenMpi,
       {"", kRendezvous}, {"", ""},
       {1, "OMPI_COMM_WORLD_RANK"}, {2, "OMPI_COMM_WORLD_SIZE"},
       {0, "OMPI_COMM_WORLD_LOCAL_RANK"}, {1, "OMPI_COMM_WORLD_LOCAL_SIZE"},
       kAbsent, kAbsent, kAbsent, kAbsent,
       {{}, kNoneFound}, {0, kFirst}, 0},
      // Outside Slurm the GPUs are the device files this host has.
      {kMpirun, {}, Host("b", 2), Scheduler::kOpenMpi,
       {"", kRendezvous}, {"", ""},
       {1, "OMPI_COMM_WORLD_RANK"}, {2, "OMPI_COMM_WORLD_SIZE"},
       {0, "OMPI_COMM_WORLD_LOCAL_RANK"}, {1, "OMPI_COMM_WORLD_LOCAL_SIZE"},
       kAbsent, kAbsent, kAbsent, kAbsent,
       {{"0", "1"}, "/dev/nvidia* device files"}, {0, kFirst}, 0},
      // mpirun inside Slurm: SLURM_PROCID=0/SLURM_NODEID=0 are mpirun's daemon's, not ours.
      {kMpirunInSlurm, {}, Host("n2"), Scheduler::kOpenMpi,
       {"5521", "SLURM_JOB_ID"}, {"mpijob", "SLURM_JOB_NAME"},
       {1, "OMPI_COMM_WORLD_RANK"}, {2, "OMPI_COMM_WORLD_SIZE"},
       {0, "OMPI_COMM_WORLD_LOCAL_RANK"}, {1, "OMPI_COMM_WORLD_LOCAL_SIZE"},
       kAbsent, kAbsent, kAbsent, kAbsent,
       {{}, kNoneAllocated}, {0, kFirst}, 0},
      // ... and a requeued one still reports the restart.
      {kMpirunInSlurm, {{"SLURM_RESTART_COUNT", "2"}}, Host("n2"), Scheduler::kOpenMpi,
       {"5521", "SLURM_JOB_ID"}, {"mpijob", "SLURM_JOB_NAME"},
       {1, "OMPI_COMM_WORLD_RANK"}, {2, "OMPI_COMM_WORLD_SIZE"},
       {0, "OMPI_COMM_WORLD_LOCAL_RANK"}, {1, "OMPI_COMM_WORLD_LOCAL_SIZE"},
       kAbsent, kAbsent, kAbsent, kAbsent,
       {{}, kNoneAllocated}, {2, "SLURM_RESTART_COUNT"}, 0},
};

// torchrun-style variables, and no launcher at all.
const std::vector<DetectCase> kTorchrunAndLocalCases = {
      // torchrun-style variables from the platform.
      {kTorchrun, {}, Host("train-worker-1", 8), Scheduler::kTorchrun,
       {"", kRendezvous}, {"", ""},
       {1, "NODE_RANK"}, {2, "NNODES"}, {0, kTorch}, {1, kTorch},
       Sourced<int>{1, "NODE_RANK"}, Sourced<int>{2, "NNODES"},
       kAbsent, Sourced<Ints>{{1, 1}, kTorch},
       {{"0", "1", "2", "3", "4", "5", "6", "7"}, "/dev/nvidia* device files"}, {0, kFirst}, 0},
      {kTorchrun, {{"TORCHELASTIC_RUN_ID", "exp42"}, {"CUDA_VISIBLE_DEVICES", "1,0"}},
       Host("train-worker-1", 8), Scheduler::kTorchrun,
       {"exp42", "TORCHELASTIC_RUN_ID"}, {"", ""},
       {1, "NODE_RANK"}, {2, "NNODES"}, {0, kTorch}, {1, kTorch},
       Sourced<int>{1, "NODE_RANK"}, Sourced<int>{2, "NNODES"},
       kAbsent, Sourced<Ints>{{1, 1}, kTorch},
       {{"1", "0"}, "CUDA_VISIBLE_DEVICES"}, {0, kFirst}, 0},
      // torchrun's own PET_ spellings.
      {kTorchrun,
       {{"NNODES", std::nullopt}, {"NODE_RANK", std::nullopt}, {"PET_NNODES", "3"},
        {"PET_NODE_RANK", "2"}},
       Host("train-worker-2"), Scheduler::kTorchrun,
       {"", kRendezvous}, {"", ""},
       {2, "PET_NODE_RANK"}, {3, "PET_NNODES"}, {0, kTorch}, {1, kTorch},
       Sourced<int>{2, "PET_NODE_RANK"}, Sourced<int>{3, "PET_NNODES"},
       kAbsent, Sourced<Ints>{{1, 1, 1}, kTorch},
       {{}, kNoneFound}, {0, kFirst}, 0},

      // Nothing: one agent on this machine.
      {kLocal, {}, Host("ws12"), Scheduler::kLocal,
       {"", "generated locally (time and pid)"}, {"", ""},
       {0, kFallback}, {1, kFallback}, {0, kFallback}, {1, kFallback},
       Sourced<int>{0, kFallback}, Sourced<int>{1, kFallback},
       Sourced<Strings>{{"ws12"}, "hostname"}, Sourced<Ints>{{1}, kFallback},
       {{}, kNoneFound}, {0, kFirst}, 0},
      {kLocal, {}, Host("ws12", 2), Scheduler::kLocal,
       {"", "generated locally (time and pid)"}, {"", ""},
       {0, kFallback}, {1, kFallback}, {0, kFallback}, {1, kFallback},
       Sourced<int>{0, kFallback}, Sourced<int>{1, kFallback},
       Sourced<Strings>{{"ws12"}, "hostname"}, Sourced<Ints>{{1}, kFallback},
       {{"0", "1"}, "/dev/nvidia* device files"}, {0, kFirst}, 0},
      // CUDA_VISIBLE_DEVICES narrows what the host has; -1 hides everything.
      {kLocal, {{"CUDA_VISIBLE_DEVICES", "1"}}, Host("ws12", 2), Scheduler::kLocal,
       {"", "generated locally (time and pid)"}, {"", ""},
       {0, kFallback}, {1, kFallback}, {0, kFallback}, {1, kFallback},
       Sourced<int>{0, kFallback}, Sourced<int>{1, kFallback},
       Sourced<Strings>{{"ws12"}, "hostname"}, Sourced<Ints>{{1}, kFallback},
       {{"1"}, "CUDA_VISIBLE_DEVICES"}, {0, kFirst}, 0},
      {kLocal, {{"CUDA_VISIBLE_DEVICES", "-1"}}, Host("ws12", 2), Scheduler::kLocal,
       {"", "generated locally (time and pid)"}, {"", ""},
       {0, kFallback}, {1, kFallback}, {0, kFallback}, {1, kFallback},
       Sourced<int>{0, kFallback}, Sourced<int>{1, kFallback},
       Sourced<Strings>{{"ws12"}, "hostname"}, Sourced<Ints>{{1}, kFallback},
       {{}, "CUDA_VISIBLE_DEVICES=-1"}, {0, kFirst}, 0},
      // Left-over worker variables from another launcher are ignored, with a warning each.
      {kLocal, {{"RANK", "3"}, {"WORLD_SIZE", "8"}}, Host("ws12"), Scheduler::kLocal,
       {"", "generated locally (time and pid)"}, {"", ""},
       {0, kFallback}, {1, kFallback}, {0, kFallback}, {1, kFallback},
       Sourced<int>{0, kFallback}, Sourced<int>{1, kFallback},
       Sourced<Strings>{{"ws12"}, "hostname"}, Sourced<Ints>{{1}, kFallback},
       {{}, kNoneFound}, {0, kFirst}, 2},
};
// clang-format on

TEST(DetectLaunchEnvironmentTest, RecordedEnvironments) {
  std::vector<DetectCase> cases = kSlurmStepCases;
  for (const auto* table : {&kSlurmBatchCases, &kMpirunCases, &kTorchrunAndLocalCases}) {
    cases.insert(cases.end(), table->begin(), table->end());
  }
  for (const DetectCase& c : cases) {
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

}  // namespace
}  // namespace runner

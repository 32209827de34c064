#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/environment.h"
#include "common/errors.h"
#include "common/exit_codes.h"
#include "runner/launch_env.h"
#include "tests/unit/test_helpers.h"

namespace runner {
namespace {

using testing_support::Describe;
using testing_support::Edits;
using testing_support::Host;
using testing_support::Join;
using testing_support::LoadEnv;
using testing_support::recorded::kBatch1;
using testing_support::recorded::kBatch2;
using testing_support::recorded::kHetero0;
using testing_support::recorded::kHetero1;
using testing_support::recorded::kLocal;
using testing_support::recorded::kMpirun;
using testing_support::recorded::kMpirunInSlurm;
using testing_support::recorded::kRequeued;
using testing_support::recorded::kSrun2;
using testing_support::recorded::kTorchrun;

// Faults: a good recording with one thing broken. The error must name the variable and show its
// raw value (and, for hostlists and task counts, the column of the fault).

struct ErrorCase {
  std::string file;
  Edits edits;
  std::vector<std::string> fragments;  // each must appear in the message
};

// One row per case reads better than one field per line.
// clang-format off
const std::vector<ErrorCase> kErrorCases = {
      // Identity under srun.
      {kSrun2, {{"SLURM_PROCID", std::nullopt}},
       {"SLURM_PROCID is not set", "srun --ntasks-per-node=1 runner"}},
      {kSrun2, {{"SLURM_PROCID", ""}}, {"SLURM_PROCID is set but empty"}},
      {kSrun2, {{"SLURM_PROCID", "abc"}}, {"SLURM_PROCID='abc'", "is not an integer"}},
      {kSrun2, {{"SLURM_PROCID", "6x"}}, {"SLURM_PROCID='6x'", "is not an integer"}},
      {kSrun2, {{"SLURM_PROCID", " 6"}}, {"SLURM_PROCID=' 6'", "is not an integer"}},
      {kSrun2, {{"SLURM_PROCID", "8"}},
       {"SLURM_PROCID=8", "out of range", "SLURM_STEP_NUM_TASKS=8", "0..7"}},
      {kSrun2, {{"SLURM_PROCID", "-1"}}, {"SLURM_PROCID='-1'", "out of range"}},
      {kSrun2, {{"SLURM_NODEID", std::nullopt}}, {"SLURM_NODEID is not set"}},
      {kSrun2, {{"SLURM_NODEID", "2"}},
       {"SLURM_NODEID=2", "out of range", "SLURM_STEP_NUM_NODES=2", "0..1"}},
      {kSrun2, {{"SLURM_NODEID", "-1"}}, {"SLURM_NODEID='-1'", "out of range"}},
      {kSrun2, {{"SLURM_LOCALID", std::nullopt}}, {"SLURM_LOCALID is not set"}},
      {kSrun2, {{"SLURM_LOCALID", "4"}},
       {"SLURM_LOCALID=4", "out of range", "SLURM_STEP_TASKS_PER_NODE='4(x2)'", "node 1",
        "4 task(s)"}},
      {kHetero0, {{"SLURM_LOCALID", "3"}},
       {"SLURM_LOCALID=3", "SLURM_STEP_TASKS_PER_NODE='3(x1),1'", "node 0", "3 task(s)"}},
      {kHetero1, {{"SLURM_LOCALID", "1"}},
       {"SLURM_LOCALID=1", "SLURM_STEP_TASKS_PER_NODE='3(x1),1'", "node 1", "1 task(s)"}},
      {kSrun2, {{"SLURM_STEP_ID", "abc"}}, {"SLURM_STEP_ID='abc'", "is not an integer"}},

      // The step's layout contradicts itself.
      {kSrun2, {{"SLURM_STEP_NODELIST", "gpu[001-003]"}},
       {"SLURM_STEP_NODELIST='gpu[001-003]'", "names 3 hosts", "SLURM_STEP_NUM_NODES=2"}},
      {kSrun2, {{"SLURM_STEP_NUM_NODES", "3"}},
       {"SLURM_STEP_NODELIST='gpu[001-002]'", "names 2 hosts", "SLURM_STEP_NUM_NODES=3"}},
      {kSrun2, {{"SLURM_STEP_NUM_NODES", "0"}}, {"SLURM_STEP_NUM_NODES='0'", "out of range"}},
      {kSrun2, {{"SLURM_STEP_NUM_NODES", "two"}}, {"SLURM_STEP_NUM_NODES='two'", "not an integer"}},
      {kSrun2, {{"SLURM_STEP_TASKS_PER_NODE", "4,3"}},
       {"SLURM_STEP_TASKS_PER_NODE='4,3'", "adds up to 7", "SLURM_STEP_NUM_TASKS=8"}},
      {kSrun2, {{"SLURM_STEP_NUM_TASKS", "6"}},
       {"SLURM_STEP_TASKS_PER_NODE='4(x2)'", "adds up to 8", "SLURM_STEP_NUM_TASKS=6"}},
      {kSrun2, {{"SLURM_STEP_TASKS_PER_NODE", "4(x3)"}},
       {"SLURM_STEP_TASKS_PER_NODE='4(x3)'", "lists 3 nodes", "SLURM_STEP_NUM_NODES=2"}},
      {kSrun2, {{"SLURM_STEP_NODELIST", std::nullopt}, {"SLURM_JOB_NODELIST", std::nullopt}},
       {"SLURM_JOB_NODELIST is not set"}},
      // Job variables are checked too when they stand in for the step's.
      {kSrun2, {{"SLURM_STEP_NUM_TASKS", std::nullopt}, {"SLURM_NTASKS", "7"}},
       {"SLURM_STEP_TASKS_PER_NODE='4(x2)'", "adds up to 8", "SLURM_NTASKS=7"}},

      // Malformed hostlists and task counts: variable, raw value and column.
      {kSrun2, {{"SLURM_STEP_NODELIST", "gpu[001-"}},
       {"SLURM_STEP_NODELIST='gpu[001-'", "is not a valid Slurm hostlist", "unbalanced '['",
        "(column 4)"}},
      {kSrun2, {{"SLURM_STEP_NODELIST", "gpu001, gpu002"}},
       {"SLURM_STEP_NODELIST='gpu001, gpu002'", "whitespace", "(column 8)"}},
      {kSrun2, {{"SLURM_STEP_NODELIST", "gpu[002-001]"}},
       {"SLURM_STEP_NODELIST='gpu[002-001]'", "reversed range", "(column 5)"}},
      {kSrun2, {{"SLURM_STEP_NODELIST", ""}}, {"SLURM_STEP_NODELIST is set but empty"}},
      {kSrun2, {{"SLURM_STEP_TASKS_PER_NODE", "4(x2"}},
       {"SLURM_STEP_TASKS_PER_NODE='4(x2'", "is not a valid tasks-per-node list", "(column 5)"}},
      {kSrun2, {{"SLURM_STEP_TASKS_PER_NODE", "4x2"}},
       {"SLURM_STEP_TASKS_PER_NODE='4x2'", "is not a valid tasks-per-node list", "(column 2)"}},
      {kSrun2, {{"SLURM_STEP_TASKS_PER_NODE", "4(x0)"}},
       {"SLURM_STEP_TASKS_PER_NODE='4(x0)'", "repeat count 0", "(column 4)"}},
      {kSrun2, {{"SLURM_STEP_TASKS_PER_NODE", "4,,4"}},
       {"SLURM_STEP_TASKS_PER_NODE='4,,4'", "empty item", "(column 3)"}},

      // GPUs.
      {kSrun2, {{"CUDA_VISIBLE_DEVICES", "0,,2,3"}},
       {"CUDA_VISIBLE_DEVICES='0,,2,3'", "empty entry at position 2"}},
      {kSrun2, {{"CUDA_VISIBLE_DEVICES", "0,1,2,3,"}},
       {"CUDA_VISIBLE_DEVICES='0,1,2,3,'", "empty entry at position 5"}},
      {kSrun2, {{"CUDA_VISIBLE_DEVICES", ",0"}},
       {"CUDA_VISIBLE_DEVICES=',0'", "empty entry at position 1"}},
      {kSrun2, {{"CUDA_VISIBLE_DEVICES", "0,1,1,3"}},
       {"CUDA_VISIBLE_DEVICES='0,1,1,3'", "lists GPU '1' twice"}},
      {kSrun2, {{"CUDA_VISIBLE_DEVICES", std::nullopt}, {"SLURM_GPUS_ON_NODE", "four"}},
       {"SLURM_GPUS_ON_NODE='four'", "is not an integer"}},
      {kLocal, {{"CUDA_VISIBLE_DEVICES", "0,0"}}, {"CUDA_VISIBLE_DEVICES='0,0'", "twice"}},

      // Job-level facts.
      {kSrun2, {{"SLURM_JOB_ID", "abc"}}, {"SLURM_JOB_ID='abc'", "is not an integer"}},
      {kSrun2, {{"SLURM_JOB_ID", "0"}}, {"SLURM_JOB_ID='0'", "out of range"}},
      {kSrun2, {{"SLURM_JOB_ID", ""}}, {"SLURM_JOB_ID is set but empty"}},
      {kRequeued, {{"SLURM_RESTART_COUNT", "-1"}}, {"SLURM_RESTART_COUNT='-1'", "out of range"}},
      {kRequeued, {{"SLURM_RESTART_COUNT", "once"}},
       {"SLURM_RESTART_COUNT='once'", "is not an integer"}},
      {kRequeued, {{"SLURM_ARRAY_TASK_ID", std::nullopt}},
       {"SLURM_ARRAY_TASK_ID is not set", "SLURM_ARRAY_JOB_ID"}},
      {kRequeued, {{"SLURM_ARRAY_JOB_ID", "9100_3"}},
       {"SLURM_ARRAY_JOB_ID='9100_3'", "is not an integer"}},
      {kRequeued, {{"SLURM_CPUS_PER_TASK", "0"}}, {"SLURM_CPUS_PER_TASK='0'", "out of range"}},
      {kRequeued, {{"SLURM_JOB_END_TIME", "tomorrow"}},
       {"SLURM_JOB_END_TIME='tomorrow'", "is not an integer"}},

      // The batch script.
      {kBatch2, {},
       {"batch script", "Slurm job 60018", "2 nodes", "SLURM_JOB_NUM_NODES=2",
        "srun --ntasks-per-node=1 runner"}},
      {kBatch2, {{"SLURM_JOB_NUM_NODES", std::nullopt}}, {"SLURM_NNODES=2", "batch script"}},
      {kBatch2, {{"SLURM_STEP_ID", "4294967291"}}, {"batch script", "SLURM_JOB_NUM_NODES=2"}},
      {kBatch1, {{"SLURM_JOB_NODELIST", "gpu[007-008]"}},
       {"SLURM_JOB_NODELIST='gpu[007-008]'", "names 2 hosts", "SLURM_JOB_NUM_NODES=1"}},
      {kBatch1, {{"SLURM_JOB_NODELIST", "gpu[007"}},
       {"SLURM_JOB_NODELIST='gpu[007'", "(column 4)"}},
      {kBatch1, {{"SLURM_JOB_NUM_NODES", std::nullopt}, {"SLURM_NNODES", std::nullopt}},
       {"SLURM_NNODES is not set"}},

      // mpirun.
      {kMpirun, {{"OMPI_COMM_WORLD_RANK", "2"}},
       {"OMPI_COMM_WORLD_RANK='2'", "out of range", "0..1"}},
      {kMpirun, {{"OMPI_COMM_WORLD_RANK", std::nullopt}}, {"OMPI_COMM_WORLD_RANK is not set"}},
      {kMpirun, {{"OMPI_COMM_WORLD_SIZE", std::nullopt}}, {"OMPI_COMM_WORLD_SIZE is not set"}},
      {kMpirun, {{"OMPI_COMM_WORLD_SIZE", "0"}}, {"OMPI_COMM_WORLD_SIZE='0'", "out of range"}},
      {kMpirun, {{"OMPI_COMM_WORLD_LOCAL_RANK", "1"}},
       {"OMPI_COMM_WORLD_LOCAL_RANK='1'", "out of range", "0..0"}},
      {kMpirun, {{"OMPI_COMM_WORLD_LOCAL_SIZE", "3"}},
       {"OMPI_COMM_WORLD_LOCAL_SIZE='3'", "out of range", "1..2"}},
      {kMpirunInSlurm, {{"OMPI_COMM_WORLD_RANK", "one"}},
       {"OMPI_COMM_WORLD_RANK='one'", "is not an integer"}},
      {kMpirunInSlurm, {{"SLURM_JOB_ID", "5521x"}}, {"SLURM_JOB_ID='5521x'", "is not an integer"}},

      // torchrun-style.
      {kTorchrun, {{"NODE_RANK", std::nullopt}, {"MASTER_ADDR", std::nullopt},
               {"MASTER_PORT", std::nullopt}},
       {"NODE_RANK is not set", "NNODES, NODE_RANK, MASTER_ADDR and MASTER_PORT"}},
      {kTorchrun, {{"NNODES", std::nullopt}, {"MASTER_ADDR", std::nullopt},
               {"MASTER_PORT", std::nullopt}},
       {"NNODES is not set", "NNODES, NODE_RANK, MASTER_ADDR and MASTER_PORT"}},
      {kTorchrun, {{"MASTER_ADDR", std::nullopt}}, {"MASTER_ADDR is not set"}},
      {kTorchrun, {{"MASTER_PORT", std::nullopt}}, {"MASTER_PORT is not set"}},
      {kTorchrun, {{"MASTER_PORT", "70000"}}, {"MASTER_PORT='70000'", "out of range", "1..65535"}},
      {kTorchrun, {{"MASTER_PORT", "http"}}, {"MASTER_PORT='http'", "is not an integer"}},
      {kTorchrun, {{"NODE_RANK", "2"}}, {"NODE_RANK='2'", "out of range", "0..1"}},
      {kTorchrun, {{"NNODES", "1:2"}}, {"NNODES='1:2'", "is an elastic range"}},
};
// clang-format on

TEST(DetectLaunchEnvironmentTest, FaultsNameTheVariableAndItsValue) {
  const std::vector<ErrorCase>& cases = kErrorCases;
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
    SCOPED_TRACE(Describe(kTorchrun, edits));
    try {
      static_cast<void>(DetectLaunchEnvironment(LoadEnv(kTorchrun, edits), Host("w1")));
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
    static_cast<void>(DetectLaunchEnvironment(LoadEnv(kTorchrun, {{"NNODES", "1:4"}}), Host("w1")));
    ADD_FAILURE() << "no error";
  } catch (const common::EnvironmentError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("NNODES='1:4'"), std::string::npos) << message;
    EXPECT_NE(message.find("elastic range"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace runner

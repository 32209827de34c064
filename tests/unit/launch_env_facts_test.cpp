#include <gtest/gtest.h>

#include <string>

#include "common/environment.h"
#include "common/errors.h"
#include "runner/launch_env.h"
#include "tests/unit/test_helpers.h"

namespace runner {
namespace {

using testing_support::EnvPath;
using testing_support::Host;
using testing_support::LoadEnv;
using testing_support::recorded::kHetero0;
using testing_support::recorded::kLocal;
using testing_support::recorded::kMpirunInSlurm;
using testing_support::recorded::kRequeued;
using testing_support::recorded::kSrun2;
using testing_support::recorded::kTorchrun;

// DetectLaunchEnvironment: facts the table of launch_env_test.cpp does not cover, one recording
// at a time.

TEST(DetectLaunchEnvironmentTest, RequeuedArrayTaskKeepsJobFacts) {
  const LaunchEnvironment got = DetectLaunchEnvironment(LoadEnv(kRequeued), Host("gpu004"));
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
  const LaunchEnvironment got = DetectLaunchEnvironment(LoadEnv(kHetero0), Host("n1"));
  EXPECT_FALSE(got.cpus_per_task.has_value());  // only with srun/sbatch -c
  EXPECT_FALSE(got.array_job_id.has_value());
  EXPECT_FALSE(got.array_task_id.has_value());
  ASSERT_TRUE(got.job_end_time.has_value());
  EXPECT_EQ(got.job_end_time->value, 1717002000);
}

TEST(DetectLaunchEnvironmentTest, TorchrunStyleGivesMaster) {
  const LaunchEnvironment got = DetectLaunchEnvironment(LoadEnv(kTorchrun), Host("train-worker-1"));
  ASSERT_TRUE(got.master_addr.has_value());
  EXPECT_EQ(got.master_addr->value, "10.0.0.1");
  EXPECT_EQ(got.master_addr->source, "MASTER_ADDR");
  ASSERT_TRUE(got.master_port.has_value());
  EXPECT_EQ(got.master_port->value, 29500);
  EXPECT_EQ(got.master_port->source, "MASTER_PORT");
  EXPECT_EQ(got.reason, "NNODES/NODE_RANK are set (torchrun-style launch)");
}

TEST(DetectLaunchEnvironmentTest, MpirunInsideSlurmSaysWhySlurmIdentityIsIgnored) {
  const LaunchEnvironment got = DetectLaunchEnvironment(LoadEnv(kMpirunInSlurm), Host("n2"));
  EXPECT_EQ(got.reason,
            "OMPI_COMM_WORLD_SIZE is set (started by mpirun) inside Slurm job 5521; "
            "SLURM_PROCID/SLURM_NODEID are ignored under mpirun");
  EXPECT_FALSE(got.master_addr.has_value());
}

TEST(DetectLaunchEnvironmentTest, HostMismatchWarningNamesBothHosts) {
  const LaunchEnvironment got = DetectLaunchEnvironment(LoadEnv(kSrun2), Host("gpu001"));
  ASSERT_EQ(got.warnings.size(), 1u);
  EXPECT_EQ(got.warnings[0],
            "this host is 'gpu001' but SLURM_STEP_NODELIST[1] (SLURM_NODEID=1) is 'gpu002'");
}

TEST(DetectLaunchEnvironmentTest, LeftOverWorkerVariablesAreWarnedAbout) {
  const LaunchEnvironment got =
      DetectLaunchEnvironment(LoadEnv(kLocal, {{"LOCAL_RANK", "1"}}), Host("ws12"));
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

}  // namespace
}  // namespace runner

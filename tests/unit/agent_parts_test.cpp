// Pure parts of the agent: worker environment, secrets, the srun-without-PMI check, JSON quoting,
// and the job directory's files (the rendezvous' are in rendezvous_test.cpp).

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/errors.h"
#include "common/job_layout.h"
#include "common/json.h"
#include "runner/agent.h"
#include "runner/agent_support.h"
#include "runner/job_dir.h"
#include "runner/rendezvous.h"
#include "runner/startup_record.h"
#include "runner/watchdog_setup.h"
#include "runner/worker_env.h"
#include "tests/unit/temp_dir.h"
#include "tests/unit/test_helpers.h"

namespace runner {
namespace {

using testing_support::ReadFile;
using testing_support::TempDir;

namespace fs = std::filesystem;

TEST(WorkerEnvTest, ContractIsSetAndMpiRuntimeScrubbed) {
  std::map<std::string, std::string> agent = {{"PATH", "/usr/bin"},
                                              {"OMPI_COMM_WORLD_RANK", "1"},
                                              {"PMIX_RANK", "1"},
                                              {"PMI_FD", "3"},
                                              {"OPAL_PREFIX", "/x"},
                                              {"RUNNER_TRAIN__LR", "0.1"},
                                              {"RUNNER_HOSTNAME", "n1"},
                                              {"SLURM_JOB_ID", "7"},
                                              {"RANK", "99"},
                                              {"CUDA_VISIBLE_DEVICES", "0,1,2,3"}};
  WorkerContract c;
  c.rank = 5;
  c.local_rank = 1;
  c.world_size = 8;
  c.local_world_size = 4;
  c.node_rank = 1;
  c.node_count = 2;
  c.master_addr = "10.0.0.1";
  c.master_port = 4242;
  c.restart_count = 2;
  c.run_id = "123";
  c.device = "1";
  c.omp_threads = 3;
  auto env = BuildWorkerEnv(agent, c);
  const std::map<std::string, std::string> expected = {{"RANK", "5"},
                                                       {"LOCAL_RANK", "1"},
                                                       {"WORLD_SIZE", "8"},
                                                       {"LOCAL_WORLD_SIZE", "4"},
                                                       {"GROUP_RANK", "1"},
                                                       {"NODE_RANK", "1"},
                                                       {"GROUP_WORLD_SIZE", "2"},
                                                       {"MASTER_ADDR", "10.0.0.1"},
                                                       {"MASTER_PORT", "4242"},
                                                       {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                                                       {"TORCHELASTIC_RESTART_COUNT", "2"},
                                                       {"TORCHELASTIC_RUN_ID", "123"},
                                                       {"CUDA_VISIBLE_DEVICES", "1"},
                                                       {"OMP_NUM_THREADS", "3"},
                                                       {"OMP_WAIT_POLICY", "PASSIVE"},
                                                       {"PATH", "/usr/bin"},
                                                       {"SLURM_JOB_ID", "7"},
                                                       {"RUNNER_HOSTNAME", "n1"}};
  for (const auto& [name, value] : expected) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(env.count(name));
    EXPECT_EQ(env[name], value);
  }
  for (const char* gone :
       {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_FD", "OPAL_PREFIX", "RUNNER_TRAIN__LR"}) {
    EXPECT_EQ(env.count(gone), 0u) << gone;
  }
}

TEST(WorkerEnvTest, TheTrainerReadsWhatTheRunnerWrites) {
  WorkerContract c;
  c.rank = 3;
  c.local_rank = 1;
  c.world_size = 4;
  c.local_world_size = 2;
  c.node_rank = 1;
  c.node_count = 2;
  c.master_addr = "n1";
  c.master_port = 29500;
  c.job_dir = "/logs/j-1";
  c.attempt_dir = "/logs/j-1/attempt-0";
  // The agent's own (MPI) identity must not leak into the worker's.
  auto env = BuildWorkerEnv({{"OMPI_COMM_WORLD_RANK", "0"}, {"NODE_RANK", "0"}}, c);
  common::WorkerContract read = common::ReadContract(common::MapEnvironment(env));
  EXPECT_FALSE(read.standalone);
  EXPECT_EQ(read.rank, 3);
  EXPECT_EQ(read.local_rank, 1);
  EXPECT_EQ(read.world_size, 4);
  EXPECT_EQ(read.local_world_size, 2);
  EXPECT_EQ(read.node_rank, 1);
  EXPECT_EQ(read.node_count, 2);
  EXPECT_EQ(read.master_addr, "n1");
  EXPECT_EQ(read.master_port, 29500);
  EXPECT_EQ(read.attempt_dir, "/logs/j-1/attempt-0");
}

TEST(WorkerEnvTest, CpuWorkerSeesNoGpuAndKeepsUserThreads) {
  WorkerContract c;
  auto env = BuildWorkerEnv({{"OMP_NUM_THREADS", "7"}, {"CUDA_VISIBLE_DEVICES", "0"}}, c);
  EXPECT_EQ(env["CUDA_VISIBLE_DEVICES"], "");
  EXPECT_EQ(env["OMP_NUM_THREADS"], "7");
}

TEST(WorkerEnvTest, GpuWorkersGetNcclDiagnosticsIntoTheJobDirectory) {
  WorkerContract c;
  c.device = "0";
  c.attempt_dir = "/logs/j-1/attempt-0";
  auto env = BuildWorkerEnv({{"TORCH_NCCL_TRACE_BUFFER_SIZE", "50"}}, c);
  EXPECT_EQ(env["TORCH_NCCL_ASYNC_ERROR_HANDLING"], "1");
  EXPECT_EQ(env["TORCH_NCCL_DUMP_ON_TIMEOUT"], "1");
  EXPECT_EQ(env["TORCH_NCCL_DEBUG_INFO_TEMP_FILE"],
            "/logs/j-1/attempt-0/diagnosis/nccl_trace_rank_");
  EXPECT_EQ(env["TORCH_NCCL_TRACE_BUFFER_SIZE"], "50");  // the user's value stays
  c.device = "";
  EXPECT_EQ(BuildWorkerEnv({}, c).count("TORCH_NCCL_DUMP_ON_TIMEOUT"), 0u);
}

TEST(AgentTest, SecretsAreRecognised) {
  for (const char* name :
       {"HF_TOKEN", "WANDB_API_KEY", "AWS_SECRET_ACCESS_KEY", "DB_PASSWORD", "SLURM_AUTH_X",
        "OMPI_MCA_orte_precondition_transports", "my_session_id"}) {
    EXPECT_TRUE(LooksSecret(name)) << name;
  }
  for (const char* name :
       {"SLURM_JOB_ID", "NCCL_DEBUG", "CUDA_VISIBLE_DEVICES", "OMPI_COMM_WORLD_RANK"}) {
    EXPECT_FALSE(LooksSecret(name)) << name;
  }
}

TEST(AgentTest, SrunWithoutPmiFailsBeforeMpiInit) {
  common::MapEnvironment env({{"SLURM_STEP_ID", "0"}, {"SLURM_MPI_TYPE", "none"}});
  LaunchEnvironment launch;
  launch.scheduler = Scheduler::kSlurm;
  launch.agent_count = {4, "SLURM_STEP_NUM_TASKS"};
  try {
    CheckLaunchBeforeMpi(env, launch);
    FAIL() << "no error";
  } catch (const common::EnvironmentError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("SLURM_STEP_NUM_TASKS=4"), std::string::npos) << message;
    EXPECT_NE(message.find("SLURM_MPI_TYPE=none"), std::string::npos) << message;
    EXPECT_NE(message.find("srun --mpi=pmix"), std::string::npos) << message;
  }
  env.Set("PMIX_RANK", "0");
  EXPECT_NO_THROW(CheckLaunchBeforeMpi(env, launch));
  launch.agent_count = {1, "SLURM_STEP_NUM_TASKS"};
  env.Unset("PMIX_RANK");
  EXPECT_NO_THROW(CheckLaunchBeforeMpi(env, launch));
}

TEST(JsonTest, QuotingTable) {
  const std::vector<std::pair<std::string, std::string>> rows = {
      {"plain", "\"plain\""},
      {"a\"b", "\"a\\\"b\""},
      {"back\\slash", "\"back\\\\slash\""},
      {"line\nbreak\t", "\"line\\nbreak\\t\""},
      {std::string("nul\0x", 5), "\"nul\\u0000x\""},
      {"caf\xc3\xa9", "\"caf\xc3\xa9\""},
      {"bad\xff", "\"bad\\ufffd\""},
      {"\x1b[31m", "\"\\u001b[31m\""}};
  for (const auto& [in, out] : rows) {
    SCOPED_TRACE(in);
    EXPECT_EQ(common::JsonQuote(in), out);
  }
  common::JsonObject o;
  o.Add("n", 3).Add("x", 0.5).Add("t", true).AddNull("z").Add("l",
                                                              std::vector<std::string>{"a", "b"});
  EXPECT_EQ(o.str(), R"({"n":3,"x":0.5,"t":true,"z":null,"l":["a","b"]})");
  EXPECT_EQ(common::JsonObject().Add("time", 1795670019.849).str(), R"({"time":1795670019.849})");
}

TEST(JobDirTest, HostileSchedulerNamesStayOneDirectoryUnderTheRoot) {
  const std::string long_name(300, 'n');
  struct Case {
    std::string configured, scheduler_name, scheduler_id, name, id;
  };
  const std::vector<Case> cases = {
      {"", "", "", "job", ""},
      {"", "train", "42", "train", "42"},
      {"mine", "../../x", "42", "mine", "42"},
      {"", "../../x", "42", "_._.._x", "42"},
      {"", "a/b/c", "1", "a_b_c", "1"},
      {"", "with space\nand newline", "1", "with_space_and_newline", "1"},
      {"", ".hidden", "1", "_hidden", "1"},
      {"", "..", "1", "_.", "1"},
      {"", "\xc3\xa9t\xc3\xa9", "1", "__t__", "1"},
      {"", long_name, "1", std::string(common::job_layout::kMaxJobNameLength, 'n'), "1"},
      {"", "t", "../run id/" + std::string(40, 'i'), "t", "_._run_id_" + std::string(22, 'i')},
  };
  for (const Case& c : cases) {
    const JobDirNames names = ResolveJobDirNames(c.configured, c.scheduler_name, c.scheduler_id);
    EXPECT_EQ(names.name, c.name) << c.scheduler_name;
    EXPECT_EQ(names.id, c.id) << c.scheduler_id;
    const std::string dir =
        common::job_layout::JobDirName(names.name, names.id.empty() ? "x" : names.id);
    EXPECT_EQ(dir.find('/'), std::string::npos) << dir;
    EXPECT_LE(dir.size(), 255u) << dir;
    EXPECT_NE(dir[0], '.') << dir;
  }
}

TEST(JobDirTest, LayoutAttemptsAndCurrentLink) {
  TempDir tmp;
  mode_t old = umask(027);
  JobDir dir(tmp.path() + "/deep/logs", "train", "42");
  EXPECT_EQ(dir.path(), tmp.path() + "/deep/logs/train-42");
  EXPECT_TRUE(fs::is_directory(dir.path() + "/checkpoints"));
  EXPECT_EQ(dir.NextAttempt(), 0);
  dir.BeginAttempt(0);
  dir.BeginAttempt(1);
  EXPECT_EQ(fs::read_symlink(dir.path() + "/current").string(), "attempt-1");
  EXPECT_EQ(dir.NextAttempt(), 2);
  dir.WriteFile("outcome.json", "{}\n");
  dir.WriteFile("outcome.json", "{\"v\":2}\n");
  EXPECT_EQ(ReadFile(dir.path() + "/outcome.json"), "{\"v\":2}\n");
  dir.AppendEvent(common::JsonObject().Add("event", "a"));
  dir.AppendEvent(common::JsonObject().Add("event", "b"));
  EXPECT_EQ(ReadFile(dir.path() + "/events.jsonl"), "{\"event\":\"a\"}\n{\"event\":\"b\"}\n");
  struct stat st {};
  stat(dir.path().c_str(), &st);
  EXPECT_EQ(st.st_mode & 07, 0u) << "world-accessible job directory";
  JobDir again(tmp.path() + "/deep/logs", "train", "42");  // a second agent, same directory
  EXPECT_EQ(again.NextAttempt(), 2);
  umask(old);
}

TEST(JobDirTest, UnwritableRootNamesThePath) {
  try {
    JobDir dir("/proc/no-such-dir", "x", "1");
    FAIL() << "no error";
  } catch (const common::EnvironmentError& e) {
    EXPECT_NE(std::string(e.what()).find("/proc/no-such-dir"), std::string::npos) << e.what();
  }
}

TEST(RankLogTest, TimestampsLinesKeepsTailAndFlushesPartials) {
  TempDir tmp;
  const std::string path = tmp.path() + "/rank-0.log";
  {
    RankLog log(path, 2);
    log.Feed("one\ntw", 6);
    log.Feed("o\r\nthree", 8);
    EXPECT_EQ(std::vector<std::string>(log.tail().begin(), log.tail().end()),
              (std::vector<std::string>{"one", "two"}));
    log.Note("worker exited with code 0");
  }
  std::vector<std::string> lines;
  std::istringstream in(ReadFile(path));
  for (std::string line; std::getline(in, line);) lines.push_back(line.substr(line.find(' ') + 1));
  EXPECT_EQ(lines, (std::vector<std::string>{"one", "two", "[runner] worker exited with code 0",
                                             "three"}));
}

}  // namespace
}  // namespace runner

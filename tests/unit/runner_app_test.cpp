#include <gtest/gtest.h>

#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "common/environment.h"
#include "common/exit_codes.h"
#include "runner/app.h"
#include "runner/launch_env.h"
#include "tests/unit/test_helpers.h"

// RunRunner as users run `runner`: arguments, a recorded environment, fake host facts; exit code,
// stdout and stderr checked.

namespace runner {
namespace {

using testing_support::Edits;
using testing_support::LoadEnv;
using testing_support::Strings;
using testing_support::recorded::kBatch2;
using testing_support::recorded::kHetero0;
using testing_support::recorded::kHetero1;
using testing_support::recorded::kLocal;
using testing_support::recorded::kMpirun;
using testing_support::recorded::kMpirunInSlurm;
using testing_support::recorded::kRequeued;
using testing_support::recorded::kSrun2;
using testing_support::recorded::kTorchrun;

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

Result RunApp(const Strings& args, const common::Environment& env, const std::string& hostname) {
  std::ostringstream out;
  std::ostringstream err;
  Result result;
  result.code = RunRunner(args, env, testing_support::Host(hostname), out, err);
  result.out = out.str();
  result.err = err.str();
  return result;
}

Result RunApp(const Strings& args, const std::string& file, const std::string& hostname,
              const Edits& edits = {}) {
  return RunApp(args, LoadEnv(file, edits), hostname);
}

std::string Trace(const Result& r) {
  return "exit " + std::to_string(r.code) + "\n--- stdout:\n" + r.out + "--- stderr:\n" + r.err;
}

// From the "workers this agent would start:" line to the end of the output.
std::string WorkersSection(const std::string& out) {
  const size_t at = out.find("workers this agent would start:\n");
  return at == std::string::npos ? "" : out.substr(at);
}

bool HasLine(const std::string& text, const std::string& line) {
  std::istringstream in(text);
  for (std::string got; std::getline(in, got);) {
    if (got == line) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// --dry-run on recorded jobs.

struct DryRunCase {
  std::string file;
  std::string hostname;
  std::string workers;  // exact, from "workers this agent would start:" on
  Strings lines;        // each must be a whole line of the output
};

TEST(RunRunnerTest, DryRunPrintsTheWorkersAndTheLayout) {
  const std::string srun2_nodes =
      "  nodes         2: gpu[001-002]   (SLURM_STEP_NODELIST, SLURM_STEP_NUM_NODES)";
  const std::string srun2_agents =
      "  agents        8 (per node: 4,4)   (SLURM_STEP_NUM_TASKS, SLURM_STEP_TASKS_PER_NODE)";
  const std::string hetero_nodes =
      "  nodes         2: n[1-2]   (SLURM_STEP_NODELIST, SLURM_STEP_NUM_NODES)";
  const std::string hetero_agents =
      "  agents        4 (per node: 3,1)   (SLURM_STEP_NUM_TASKS, SLURM_STEP_TASKS_PER_NODE)";
  // clang-format off
  const std::vector<DryRunCase> cases = {
      {kSrun2, "gpu002",
       "workers this agent would start:\n"
       "  rank 6  local_rank 2  world_size 8  node_rank 1  device cuda:0 "
       "(CUDA_VISIBLE_DEVICES=2)\n",
       {srun2_nodes, srun2_agents,
        "  scheduler     slurm   (SLURM_JOB_ID is set, inside srun step 0)",
        "  job id        48213   (SLURM_JOB_ID)",
        "  job name      train   (SLURM_JOB_NAME)",
        "  job directory logs/train-48213/   (job.log_root from default)",
        "  this node     1 = gpu002   (SLURM_NODEID; hostname gpu002)",
        "  this agent    6, local 2 of 4   (SLURM_PROCID, SLURM_LOCALID)",
        "  node GPUs     0,1,2,3   (CUDA_VISIBLE_DEVICES)",
        "  agent GPUs    2   (share 3 of 4 of CUDA_VISIBLE_DEVICES)",
        "  workers       1 on this agent   (launch.nproc_per_node=auto: one per GPU)",
        "  backend       nccl   (launch.backend=auto: GPUs present)",
        "  master        gpu001   (first host of SLURM_STEP_NODELIST; its agent hosts the c10d "
        "store)",
        "  restart       0   (unset: first attempt)",
        "  cpus/task     8   (SLURM_CPUS_PER_TASK)"}},
      {kHetero0, "n1",
       "workers this agent would start:\n"
       "  rank 1  local_rank 1  world_size 4  node_rank 0  device cpu\n",
       {hetero_nodes, hetero_agents,
        "  this node     0 = n1   (SLURM_NODEID; hostname n1)",
        "  this agent    1, local 1 of 3   (SLURM_PROCID, SLURM_LOCALID)",
        "  node GPUs     none (CPU)   (none allocated (SLURM_GPUS_ON_NODE and CUDA_VISIBLE_DEVICES "
        "unset))",
        "  world size    4   (exact)",
        "  backend       gloo   (launch.backend=auto: CPU only)",
        "  master        n1   (first host of SLURM_STEP_NODELIST; its agent hosts the c10d "
        "store)"}},
      {kHetero1, "n2",
       "workers this agent would start:\n"
       "  rank 3  local_rank 0  world_size 4  node_rank 1  device cpu\n",
       {hetero_nodes, hetero_agents,
        "  this node     1 = n2   (SLURM_NODEID; hostname n2)",
        "  this agent    3, local 0 of 1   (SLURM_PROCID, SLURM_LOCALID)",
        "  world size    4   (exact)"}},
      {kRequeued, "gpu004",
       "workers this agent would start:\n"
       "  rank 0  local_rank 0  world_size 1  node_rank 0  device cuda:0 "
       "(CUDA_VISIBLE_DEVICES=0)\n",
       {"  restart       1   (SLURM_RESTART_COUNT)",
        "  array         9100_3   (SLURM_ARRAY_JOB_ID, SLURM_ARRAY_TASK_ID)",
        "  job end time  1717041600   (SLURM_JOB_END_TIME)",
        "  job directory logs/sweep-9103/   (job.log_root from default)"}},
      {kMpirunInSlurm, "n2",
       "workers this agent would start:\n"
       "  rank 1  local_rank 0  world_size 2  node_rank ?  device cpu\n",
       {"  nodes         (learnt at rendezvous)   (mpirun does not say which hosts it uses)",
        "  this agent    1, local 0 of 1   (OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_LOCAL_RANK)",
        "  job id        5521   (SLURM_JOB_ID)"}},
  };
  // clang-format on
  for (const DryRunCase& c : cases) {
    SCOPED_TRACE(c.file + " on " + c.hostname);
    const Result r = RunApp({"--dry-run"}, c.file, c.hostname);
    SCOPED_TRACE(Trace(r));
    EXPECT_EQ(r.code, common::kExitOk);
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(r.out.rfind("runner --dry-run: nothing is started\n", 0), 0u);
    EXPECT_EQ(WorkersSection(r.out), c.workers);
    for (const std::string& line : c.lines) {
      EXPECT_TRUE(HasLine(r.out, line)) << "no line: " << line;
    }
  }
}

TEST(RunRunnerTest, DryRunFlagsBecomeConfig) {
  const Result r =
      RunApp({"--dry-run", "--job-name=exp1", "--log-root=/scratch/runs"}, kHetero1, "n2");
  SCOPED_TRACE(Trace(r));
  ASSERT_EQ(r.code, common::kExitOk);
  EXPECT_NE(r.out.find("\n  job directory /scratch/runs/exp1-731/   (job.log_root from command "
                       "line"),
            std::string::npos);
  EXPECT_NE(r.out.find("\n  job name      exp1   (job.name from command line"), std::string::npos);
}

TEST(RunRunnerTest, DryRunOnTheWrongHostWarns) {
  const Result r = RunApp({"--dry-run"}, kHetero1, "n1");
  SCOPED_TRACE(Trace(r));
  EXPECT_EQ(r.code, common::kExitOk);
  EXPECT_TRUE(HasLine(r.out,
                      "warning: this host is 'n1' but SLURM_STEP_NODELIST[1] (SLURM_NODEID=1) is "
                      "'n2'"));
}

TEST(RunRunnerTest, DryRunTorchrunStyle) {
  const Result r = RunApp({"--dry-run"}, kTorchrun, "train-worker-1");
  SCOPED_TRACE(Trace(r));
  ASSERT_EQ(r.code, common::kExitOk);
  EXPECT_EQ(WorkersSection(r.out),
            "workers this agent would start:\n"
            "  rank 1  local_rank 0  world_size 2  node_rank 1  device cpu\n");
  EXPECT_TRUE(HasLine(r.out,
                      "  master        10.0.0.1   (MASTER_ADDR; its agent hosts the c10d "
                      "store)"));
  EXPECT_TRUE(HasLine(r.out, "  master port   29500   (MASTER_PORT)"));
  EXPECT_TRUE(HasLine(r.out,
                      "  this node     1 = train-worker-1   (NODE_RANK; hostname "
                      "train-worker-1)"));
  // The torchrun-style variables do not name the hosts; the row must not say mpirun is to blame.
  std::string nodes_row;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("  nodes ", 0) == 0) nodes_row = line;
  }
  ASSERT_NE(nodes_row, "");
  EXPECT_EQ(nodes_row.find("mpirun"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Errors and their exit codes.

struct ErrorCase {
  std::string name;
  Strings args;
  std::string file;
  Edits edits;
  int code;
  Strings fragments;  // each must appear in stderr
};

TEST(RunRunnerTest, ErrorsMapToExitCodes) {
  const std::string srun2 = kSrun2;
  // clang-format off
  const std::vector<ErrorCase> cases = {
      {"misspelt flag", {"--dry-runn"}, srun2, {}, common::kExitUsage,
       {"runner: usage error: ", "--dry-runn", "did you mean --dry-run?", "runner --help"}},
      {"misspelt value flag", {"--nproc-per-nodes=2"}, srun2, {}, common::kExitUsage,
       {"did you mean --nproc-per-node?"}},
      {"word that is neither option nor override", {"--dry-run", "train.py"}, srun2, {},
       common::kExitUsage, {"'train.py'", "runner -- train.py"}},
      {"'--' without a command", {"--dry-run", "--"}, srun2, {}, common::kExitUsage,
       {"'--' must be followed by the worker command"}},
      {"bad override value", {"--dry-run", "launch.backend=mpi"}, srun2, {},
       common::kExitConfig, {"runner: config error: ", "launch.backend", "mpi"}},
      {"unknown config key", {"--dry-run", "launch.nproc=2"}, srun2, {}, common::kExitConfig,
       {"launch.nproc"}},
      {"bad environment override", {"--dry-run"}, srun2, {{"RUNNER_LAUNCH__BACKEND", "mpi"}},
       common::kExitConfig, {"RUNNER_LAUNCH__BACKEND", "mpi"}},
      {"missing config file", {"--dry-run", "--config=/nonexistent/job.yaml"}, srun2, {},
       common::kExitConfig, {"/nonexistent/job.yaml"}},
      {"more workers than this agent's GPUs", {"--dry-run", "--nproc-per-node=2"}, srun2, {},
       common::kExitConfig, {"runner: config error: ", "launch.nproc_per_node=2"}},
      {"nccl on CPU", {"--dry-run", "launch.backend=nccl"},
       kHetero0, {}, common::kExitConfig,
       {"launch.backend=nccl"}},
      {"batch script of a 2-node job", {"--dry-run"}, kBatch2, {},
       common::kExitEnvironment,
       {"runner: environment error: ", "SLURM_JOB_NUM_NODES=2", "srun"}},
      {"malformed SLURM_PROCID", {"--dry-run"}, srun2, {{"SLURM_PROCID", "abc"}},
       common::kExitEnvironment, {"runner: environment error: ", "SLURM_PROCID='abc'"}},
      {"missing SLURM_LOCALID", {"--dry-run"}, srun2, {{"SLURM_LOCALID", std::nullopt}},
       common::kExitEnvironment, {"SLURM_LOCALID is not set"}},
      {"malformed nodelist", {"--dry-run"}, srun2, {{"SLURM_STEP_NODELIST", "gpu[001-"}},
       common::kExitEnvironment, {"SLURM_STEP_NODELIST='gpu[001-'", "(column 4)"}},
      {"4 agents, 2 GPUs", {"--dry-run"}, srun2, {{"CUDA_VISIBLE_DEVICES", "0,1"}},
       common::kExitEnvironment, {"4 agents on host gpu002", "2 GPU(s)"}},
      {"rank out of range under mpirun", {"--dry-run"}, kMpirun,
       {{"OMPI_COMM_WORLD_RANK", "2"}}, common::kExitEnvironment,
       {"OMPI_COMM_WORLD_RANK='2'"}},
  };
  // clang-format on
  for (const ErrorCase& c : cases) {
    SCOPED_TRACE(c.name);
    const Result r = RunApp(c.args, c.file, "gpu002", c.edits);
    SCOPED_TRACE(Trace(r));
    EXPECT_EQ(r.code, c.code);
    EXPECT_EQ(r.out, "");
    for (const std::string& fragment : c.fragments) {
      EXPECT_NE(r.err.find(fragment), std::string::npos) << "missing: " << fragment;
    }
    // One message, one line.
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1);
  }
}

TEST(RunRunnerTest, HelpNamesEveryFlagAndTheExitCodes) {
  const Result r = RunApp({"--help"}, kLocal, "ws12");
  SCOPED_TRACE(Trace(r));
  EXPECT_EQ(r.code, common::kExitOk);
  EXPECT_EQ(r.err, "");
  for (const char* flag :
       {"--config", "--dry-run", "--print-config", "--list-keys", "--nproc-per-node", "--job-name",
        "--log-root", "--max-restarts", "--help", "--version"}) {
    EXPECT_NE(r.out.find(flag), std::string::npos) << "missing flag " << flag;
  }
  EXPECT_NE(r.out.find("Usage: runner"), std::string::npos);
  EXPECT_NE(r.out.find("key.path=value"), std::string::npos);
  EXPECT_NE(r.out.find("Exit codes:\n"), std::string::npos);
  for (int code :
       {common::kExitOk, common::kExitLogsIncomplete, common::kExitUsage, common::kExitConfig,
        common::kExitEnvironment, common::kExitRendezvous, common::kExitStopped,
        common::kExitRequeued, common::kExitCollateral, common::kExitHung,
        common::kExitWorkerFailed, common::kExitWorkerSignaled, common::kExitInternal}) {
    const std::string line =
        (code < 10 ? "   " : "  ") + std::to_string(code) + "  " + common::ExitCodeName(code);
    EXPECT_TRUE(HasLine(r.out, line)) << "no exit code line: '" << line << "'";
  }
  // -h is the same.
  EXPECT_EQ(RunApp({"-h"}, kLocal, "ws12").out, r.out);
}

TEST(RunRunnerTest, HelpAndVersionNeedNoGoodEnvironment) {
  // Asking for help must work even where detection would fail.
  for (const char* flag : {"--help", "--version"}) {
    SCOPED_TRACE(flag);
    const Result r = RunApp({flag}, kBatch2, "n1");
    EXPECT_EQ(r.code, common::kExitOk) << Trace(r);
    EXPECT_EQ(r.err, "");
  }
  const Result v = RunApp({"--version"}, kLocal, "ws12");
  EXPECT_EQ(v.out.rfind("runner ", 0), 0u) << v.out;
}

TEST(RunRunnerTest, PrintConfigShowsOrigins) {
  const Result r = RunApp({"--print-config", "--nproc-per-node=2"}, kBatch2, "n1");
  SCOPED_TRACE(Trace(r));
  EXPECT_EQ(r.code, common::kExitOk);
  EXPECT_NE(r.out.find("nproc_per_node: 2"), std::string::npos);
}

}  // namespace
}  // namespace runner

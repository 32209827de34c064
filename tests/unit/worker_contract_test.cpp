// The worker contract (common/worker_contract.h): what the runner writes the trainer reads back,
// and the trainer's errors name the variable and its raw value.

#include "common/worker_contract.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <tuple>

#include "common/errors.h"

namespace common {
namespace {

using Vars = std::map<std::string, std::string>;

auto Fields(const WorkerContract& c) {
  return std::tie(c.standalone, c.rank, c.local_rank, c.world_size, c.local_world_size, c.node_rank,
                  c.node_count, c.master_addr, c.master_port, c.restart_count, c.max_restarts,
                  c.run_id, c.job_dir, c.attempt_dir, c.config_path, c.token, c.node_agent_pid,
                  c.device);
}

WorkerContract Full() {
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
  c.max_restarts = 3;
  c.run_id = "123";
  c.job_dir = "/logs/train-123";
  c.attempt_dir = "/logs/train-123/attempt-2";
  c.config_path = "/logs/train-123/job.yaml";
  c.token = "s3cret";
  c.node_agent_pid = 4711;
  c.device = "1";
  return c;
}

WorkerContract RoundTrip(const WorkerContract& written) {
  Vars env;
  WriteContract(written, env);
  return ReadContract(MapEnvironment(env));
}

TEST(WorkerContractTest, WhatIsWrittenIsReadBack) {
  WorkerContract cpu = Full();
  cpu.device = "";  // a CPU worker
  WorkerContract first = Full();
  first.rank = 0;
  first.local_rank = 0;
  first.node_rank = 0;
  first.restart_count = 0;
  WorkerContract single = WorkerContract();
  single.master_addr = "127.0.0.1";
  single.master_port = 1;
  const std::pair<const char*, WorkerContract> rows[] = {
      {"full", Full()}, {"cpu", cpu}, {"rank 0", first}, {"world of one", single}};
  for (const auto& [name, written] : rows) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(Fields(RoundTrip(written)) == Fields(written));
  }
}

TEST(WorkerContractTest, WrittenVariables) {
  Vars env = {{"PATH", "/usr/bin"}, {"RANK", "99"}, {"CUDA_VISIBLE_DEVICES", "0,1"}};
  WorkerContract c = Full();
  c.device = "";
  WriteContract(c, env);
  const Vars expected = {{"PATH", "/usr/bin"},
                         {"RANK", "5"},
                         {"LOCAL_RANK", "1"},
                         {"WORLD_SIZE", "8"},
                         {"LOCAL_WORLD_SIZE", "4"},
                         {"GROUP_RANK", "1"},
                         {"NODE_RANK", "1"},
                         {"GROUP_WORLD_SIZE", "2"},
                         {"ROLE_NAME", "default"},
                         {"ROLE_RANK", "5"},
                         {"ROLE_WORLD_SIZE", "8"},
                         {"MASTER_ADDR", "10.0.0.1"},
                         {"MASTER_PORT", "4242"},
                         {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                         {"TORCHELASTIC_RESTART_COUNT", "2"},
                         {"TORCHELASTIC_MAX_RESTARTS", "3"},
                         {"TORCHELASTIC_RUN_ID", "123"},
                         {"RUNNER_JOB_DIR", "/logs/train-123"},
                         {"RUNNER_ATTEMPT_DIR", "/logs/train-123/attempt-2"},
                         {"RUNNER_CONFIG", "/logs/train-123/job.yaml"},
                         {"RUNNER_JOB_TOKEN", "s3cret"},
                         {"RUNNER_NODE_AGENT_PID", "4711"},
                         {"CUDA_VISIBLE_DEVICES", ""}};
  EXPECT_EQ(env, expected);
}

TEST(WorkerContractTest, NoContractVariablesIsStandalone) {
  WorkerContract c = ReadContract(MapEnvironment(
      Vars{{"CUDA_VISIBLE_DEVICES", "0"}, {"RUNNER_ATTEMPT_DIR", "/a"}, {"LOCAL_RANK", "x"}}));
  EXPECT_TRUE(c.standalone);
  EXPECT_EQ(c.world_size, 1);
  EXPECT_EQ(c.device, "0");
  EXPECT_EQ(c.attempt_dir, "/a");
}

TEST(WorkerContractTest, TorchrunWithoutTheRunnersVariables) {
  const Vars torchrun = {
      {"RANK", "1"},       {"WORLD_SIZE", "2"},  {"LOCAL_RANK", "1"},     {"LOCAL_WORLD_SIZE", "2"},
      {"GROUP_RANK", "0"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "29500"}};
  WorkerContract c = ReadContract(MapEnvironment(torchrun));
  EXPECT_FALSE(c.standalone);
  EXPECT_EQ(c.rank, 1);
  EXPECT_EQ(c.node_rank, 0);
  EXPECT_EQ(c.node_count, 1);
  EXPECT_EQ(c.restart_count, 0);
  EXPECT_EQ(c.node_agent_pid, 0);
  EXPECT_EQ(c.job_dir, "");
}

TEST(WorkerContractTest, ErrorsNameTheVariableAndItsValue) {
  const std::string kNeeds =
      " is not set; the trainer needs the worker contract (RANK, WORLD_SIZE, LOCAL_RANK, "
      "MASTER_ADDR, MASTER_PORT) together: start it with the runner, or set none of them to "
      "train alone";
  struct Row {
    Vars change;  // applied to a valid contract; "-" unsets
    std::string message;
  };
  const Row rows[] = {
      {{{"LOCAL_WORLD_SIZE", "-"}}, "LOCAL_WORLD_SIZE" + kNeeds},
      {{{"WORLD_SIZE", "-"}}, "WORLD_SIZE" + kNeeds},
      {{{"MASTER_PORT", "-"}}, "MASTER_PORT" + kNeeds},
      {{{"NODE_RANK", "-"}, {"GROUP_RANK", "-"}}, "GROUP_RANK" + kNeeds},
      {{{"WORLD_SIZE", "x"}}, "WORLD_SIZE='x' is not an integer in 1..16777216"},
      {{{"WORLD_SIZE", "0"}}, "WORLD_SIZE='0' is not an integer in 1..16777216"},
      {{{"RANK", "8"}}, "RANK='8' is not an integer in 0..7"},
      {{{"RANK", " 5"}}, "RANK=' 5' is not an integer in 0..7"},
      {{{"RANK", "+5"}}, "RANK='+5' is not an integer in 0..7"},
      {{{"RANK", "0x5"}}, "RANK='0x5' is not an integer in 0..7"},
      {{{"RANK", ""}}, "RANK='' is not an integer in 0..7"},
      {{{"LOCAL_WORLD_SIZE", "9"}}, "LOCAL_WORLD_SIZE='9' is not an integer in 1..8"},
      {{{"LOCAL_RANK", "4"}}, "LOCAL_RANK='4' is not an integer in 0..3"},
      {{{"NODE_RANK", "-1"}}, "NODE_RANK='-1' is not an integer in 0..1048576"},
      {{{"NODE_RANK", "-"}, {"GROUP_RANK", "a"}}, "GROUP_RANK='a' is not an integer in 0..1048576"},
      {{{"MASTER_ADDR", ""}},
       "MASTER_ADDR is not set (or empty); the runner sets it to the store's address"},
      {{{"MASTER_PORT", "65536"}}, "MASTER_PORT='65536' is not an integer in 1..65535"},
      {{{"MASTER_PORT", "99999999999999999999"}},
       "MASTER_PORT='99999999999999999999' is not an integer in 1..65535"},
      {{{"TORCHELASTIC_RESTART_COUNT", "-1"}},
       "TORCHELASTIC_RESTART_COUNT='-1' is not an integer in 0..1048576"},
      {{{"GROUP_WORLD_SIZE", "0"}}, "GROUP_WORLD_SIZE='0' is not an integer in 1..1048576"},
      {{{"TORCHELASTIC_MAX_RESTARTS", "many"}},
       "TORCHELASTIC_MAX_RESTARTS='many' is not an integer in 0..1073741824"},
      {{{"RUNNER_NODE_AGENT_PID", "-3"}},
       "RUNNER_NODE_AGENT_PID='-3' is not an integer in 0..1073741824"},
  };
  for (const Row& row : rows) {
    Vars env;
    WriteContract(Full(), env);
    std::string trace;
    for (const auto& [name, value] : row.change) {
      trace += name + "=" + value + " ";
      if (value == "-") {
        env.erase(name);
      } else {
        env[name] = value;
      }
    }
    SCOPED_TRACE(trace);
    try {
      (void)ReadContract(MapEnvironment(env));
      ADD_FAILURE() << "no error";
    } catch (const EnvironmentError& e) {
      EXPECT_EQ(std::string(e.what()), row.message);
      EXPECT_EQ(e.code(), kExitEnvironment);
    }
  }
}

}  // namespace
}  // namespace common

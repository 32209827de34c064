// train.fault_inject (common/fault_inject.h): the grammar, good and bad values with the exact
// error, which faults fire where, and the check at config load.

#include "common/fault_inject.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/environment.h"
#include "common/errors.h"

namespace common {
namespace {

TEST(FaultInjectTest, GoodValues) {
  struct Row {
    std::string value;
    std::vector<InjectedFault> want;
  };
  const Row rows[] = {
      {"", {}},
      {"1:forward:0.02", {{1, "forward", 0.02, -1}}},
      {"0:backward:600@5", {{0, "backward", 600, 5}}},
      {"3:data:1@0", {{3, "data", 1, 0}}},
      {"0:optimizer:.5", {{0, "optimizer", 0.5, -1}}},
      {"2:evaluation:1e-3", {{2, "evaluation", 0.001, -1}}},
      {"0:checkpoint:30@12,1:forward:0.1", {{0, "checkpoint", 30, 12}, {1, "forward", 0.1, -1}}},
      {"1:comm-setup:600", {{1, "comm-setup", 600, -1}}},
      {"1:forward:0.1,1:forward:0.2@3", {{1, "forward", 0.1, -1}, {1, "forward", 0.2, 3}}},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.value);
    EXPECT_EQ(ParseFaultInjection(row.value, "here"), row.want);
  }
}

TEST(FaultInjectTest, BadValuesSayWhichPartIsWrong) {
  struct Row {
    std::string value;
    std::string want;  // the message between the value and the format
  };
  const Row rows[] = {
      {"1:forward", "fault 1 ('1:forward'): it has 2 ':'-separated parts, not 3"},
      {"1:forward:0.1:2", "fault 1 ('1:forward:0.1:2'): it has 4 ':'-separated parts, not 3"},
      {"forward:1:0.1", "fault 1 ('forward:1:0.1'): rank 'forward' is not an integer >= 0"},
      {"-1:forward:0.1", "fault 1 ('-1:forward:0.1'): rank '-1' is not an integer >= 0"},
      {" 1:forward:0.1", "fault 1 (' 1:forward:0.1'): rank ' 1' is not an integer >= 0"},
      {"1:fwd:0.1",
       "fault 1 ('1:fwd:0.1'): phase 'fwd' is not one of comm-setup, data, forward, backward, "
       "optimizer, evaluation, checkpoint"},
      {"1:all-reduce:0.1",
       "fault 1 ('1:all-reduce:0.1'): phase 'all-reduce' is not one of comm-setup, data, "
       "forward, backward, optimizer, evaluation, checkpoint"},
      {"1:forward:", "fault 1 ('1:forward:'): seconds '' is not a number in (0, 604800]"},
      {"1:forward:0", "fault 1 ('1:forward:0'): seconds '0' is not a number in (0, 604800]"},
      {"1:forward:-1", "fault 1 ('1:forward:-1'): seconds '-1' is not a number in (0, 604800]"},
      {"1:forward:1s", "fault 1 ('1:forward:1s'): seconds '1s' is not a number in (0, 604800]"},
      {"1:forward:inf", "fault 1 ('1:forward:inf'): seconds 'inf' is not a number in (0, 604800]"},
      {"1:forward:1e9", "fault 1 ('1:forward:1e9'): seconds '1e9' is not a number in (0, 604800]"},
      {"1:forward:1@", "fault 1 ('1:forward:1@'): step '' is not an integer >= 0 (steps done)"},
      {"1:forward:1@-2",
       "fault 1 ('1:forward:1@-2'): step '-2' is not an integer >= 0 (steps done)"},
      {"1:forward:1@x", "fault 1 ('1:forward:1@x'): step 'x' is not an integer >= 0 (steps done)"},
      {"1:forward:0.1,", "fault 2 (''): it is empty"},
      {",1:forward:0.1", "fault 1 (''): it is empty"},
      {"1:forward:0.1, 0:data:1", "fault 2 (' 0:data:1'): rank ' 0' is not an integer >= 0"},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.value);
    try {
      (void)ParseFaultInjection(row.value, "command line 'x'");
      ADD_FAILURE() << "no error";
    } catch (const ConfigError& e) {
      EXPECT_EQ(std::string(e.what()), "command line 'x': train.fault_inject='" + row.value +
                                           "': " + row.want + "; the format is " +
                                           kFaultInjectFormat);
    }
  }
}

TEST(FaultInjectTest, DelayMatchesRankPhaseAndStep) {
  const std::vector<InjectedFault> faults =
      ParseFaultInjection("1:forward:0.25,1:forward:2@5,0:checkpoint:3@5,1:backward:0.5@0", "here");
  struct Row {
    int rank;
    std::string phase;
    int64_t steps_done;
    double want;
  };
  const Row rows[] = {
      {1, "forward", 0, 0.25}, {1, "forward", 4, 0.25}, {1, "forward", 5, 2.25},
      {0, "forward", 5, 0},    {0, "checkpoint", 5, 3}, {0, "checkpoint", 6, 0},
      {1, "backward", 0, 0.5}, {1, "backward", 1, 0},   {1, "data", 5, 0},
      {2, "forward", 5, 0},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(std::to_string(row.rank) + ":" + row.phase + "@" + std::to_string(row.steps_done));
    EXPECT_DOUBLE_EQ(InjectedDelay(faults, row.rank, row.phase, row.steps_done), row.want);
  }
  EXPECT_EQ(InjectedDelay({}, 0, "forward", 0), 0);
}

TEST(FaultInjectTest, ABadValueIsRefusedWhenTheConfigLoads) {
  MapEnvironment env(
      std::map<std::string, std::string>{{"RUNNER_TRAIN__FAULT_INJECT", "1:forwrd:0.1"}});
  try {
    (void)LoadConfig({std::nullopt, &env, {}});
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("environment RUNNER_TRAIN__FAULT_INJECT: "
                                         "train.fault_inject='1:forwrd:0.1': fault 1"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(LoadConfig({std::nullopt, &env, {"train.fault_inject=0:data:1@2"}})
                .GetString("train.fault_inject"),
            "0:data:1@2");
}

}  // namespace
}  // namespace common

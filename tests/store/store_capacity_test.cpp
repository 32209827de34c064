// The node-0 agent's start-up check of the store's capacity (runner/store_job.h): the open-files
// hard limit and launch.store_max_connections against two connections per worker and two per
// agent, as a table.

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "runner/store_job.h"

namespace runner {
namespace {

constexpr uint64_t kUnlimited = std::numeric_limits<uint64_t>::max();

struct Case {
  const char* name;
  StoreCapacity capacity;
  std::vector<std::string> expected;  // fragments, one per expected line
};

TEST(StoreCapacity, WarnsNamingTheLimitAndTheFix) {
  const std::vector<Case> cases = {
      {"small job", {8, 2, 16384, 1024, "n0"}, {}},
      {"one of each",
       {1, 1, 16384, 200, "n0"},
       {"the job's 1 worker and 1 agent may open up to 4"}},
      {"unlimited files", {8000, 1000, 20000, kUnlimited, "n0"}, {}},
      {"exactly enough", {1000, 10, 2020, 2020 + 256, "n0"}, {}},
      {"hard limit one short",
       {1000, 10, 16384, 2020 + 255, "n0"},
       {"may open at most 2275 files (the hard limit of RLIMIT_NOFILE"}},
      {"thousands of workers",
       {16384, 2048, 65536, 20000, "gpu-001"},
       {"the job's 16384 workers and 2048 agents may open up to 36864 connections"}},
      {"cap too low",
       {10000, 1250, 16384, kUnlimited, "n0"},
       {"launch.store_max_connections is 16384, so workers past that are refused; set "
        "launch.store_max_connections to at least 22500"}},
      {"both", {10000, 1250, 16384, 4096, "n0"}, {"ulimit -n 22756", "at least 22500"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::vector<std::string> lines = StoreCapacityWarnings(c.capacity);
    ASSERT_EQ(lines.size(), c.expected.size());
    for (size_t i = 0; i < lines.size(); ++i) {
      EXPECT_NE(lines[i].find(c.expected[i]), std::string::npos) << lines[i];
    }
  }
}

TEST(StoreCapacity, TheFilesLineSaysHowToRaiseIt) {
  const std::vector<std::string> lines = StoreCapacityWarnings({16384, 2048, 65536, 20000, "h7"});
  ASSERT_EQ(lines.size(), 1u);
  for (const char* part : {"host h7", "20000", "ulimit -n 37120", "PropagateResourceLimits",
                           "--propagate=NOFILE", "LimitNOFILE"}) {
    EXPECT_NE(lines[0].find(part), std::string::npos) << part << " not in: " << lines[0];
  }
}

TEST(StoreCapacity, TwoConnectionsPerWorkerAndTwoPerAgent) {
  EXPECT_EQ(ExpectedStoreClients({0, 0, 0, 0, ""}), 0u);
  EXPECT_EQ(ExpectedStoreClients({8, 1, 0, 0, ""}), 18u);
  EXPECT_EQ(ExpectedStoreClients({32768, 4096, 0, 0, ""}), 73728u);
}

}  // namespace
}  // namespace runner

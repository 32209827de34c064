// What one heartbeat update costs (bench/heartbeat.sh runs this and records the figures in
// bench/README.md). Prints nanoseconds per call; asserts only that the record was written.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "common/heartbeat.h"
#include "tests/unit/temp_dir.h"

namespace common {
namespace {

constexpr int kCalls = 2'000'000;

template <typename Body>
double NanosecondsPerCall(Body body) {
  for (int i = 0; i < kCalls / 10; ++i) body(i);  // warm up: the page mapped and cached
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kCalls; ++i) body(i);
  const std::chrono::duration<double, std::nano> took = std::chrono::steady_clock::now() - start;
  return took.count() / kCalls;
}

TEST(HeartbeatCost, NanosecondsPerUpdate) {
  testing_support::TempDir dir;
  const std::string path = dir.path() + "/rank-0";
  CreateHeartbeat(path);
  HeartbeatWriter writer(path);
  HeartbeatWriter inactive;
  const char* phases[] = {"data", "forward", "backward", "optimizer"};
  struct Row {
    const char* what;
    double ns;
  };
  const Row rows[] = {
      {"Phase (active)", NanosecondsPerCall([&](int i) { writer.Phase(phases[i & 3]); })},
      {"Issue + Wait + EndCollective (3 calls, 2 updates)", NanosecondsPerCall([&](int i) {
         const int64_t n = writer.Issue();
         writer.Wait("all-reduce", n, 1 + (i & 1), 2);
         writer.EndCollective("optimizer");
       })},
      {"Step + Phase", NanosecondsPerCall([&](int i) {
         writer.Step(i);
         writer.Phase("data");
       })},
      {"Phase (inactive writer)",
       NanosecondsPerCall([&](int i) { inactive.Phase(phases[i & 3]); })},
  };
  for (const Row& row : rows) std::printf("heartbeat cost: %-50s %6.1f ns\n", row.what, row.ns);
  const std::optional<Heartbeat> h = ReadHeartbeat(path);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->phase, "data");
  EXPECT_EQ(h->step, kCalls - 1);
}

}  // namespace
}  // namespace common

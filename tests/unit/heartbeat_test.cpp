#include "common/heartbeat.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "common/errors.h"
#include "tests/unit/temp_dir.h"

namespace common {
namespace {

TEST(Heartbeat, NothingUntilTheWorkerOpensTheFile) {
  testing_support::TempDir dir;
  const std::string path = dir.path() + "/rank-0";
  EXPECT_FALSE(ReadHeartbeat(path).has_value());  // no file yet
  CreateHeartbeat(path);
  EXPECT_FALSE(ReadHeartbeat(path).has_value());  // zeroes: no magic
}

TEST(Heartbeat, ThePhasesAndCollectivesAWriterPublishesAreRead) {
  testing_support::TempDir dir;
  const std::string path = dir.path() + "/rank-0";
  CreateHeartbeat(path);
  HeartbeatWriter writer(path);
  ASSERT_TRUE(writer.active());
  std::optional<Heartbeat> h = ReadHeartbeat(path);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->pid, getpid());
  EXPECT_EQ(h->phase, "start");
  const uint64_t first_beats = h->beats;

  writer.Step(7);
  writer.Phase("forward");
  const int64_t launched = writer.Issue();  // bucket 1 launched during backward
  writer.Phase("backward");
  const int64_t second = writer.BeginCollective("all-reduce", 2, 2);
  h = ReadHeartbeat(path);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->step, 7);
  EXPECT_EQ(launched, 1);
  EXPECT_EQ(second, 2);
  EXPECT_TRUE(h->in_collective);
  EXPECT_EQ(h->collective, 2);
  EXPECT_EQ(h->DescribePhase(), "all-reduce #2 (bucket 2/2)");
  EXPECT_EQ(h->beats, first_beats + 3);

  writer.Wait("all-reduce", launched, 1, 2);
  EXPECT_EQ(ReadHeartbeat(path)->DescribePhase(), "all-reduce #1 (bucket 1/2)");
  writer.EndCollective("optimizer");
  h = ReadHeartbeat(path);
  EXPECT_FALSE(h->in_collective);
  EXPECT_EQ(h->collective, 1);
  EXPECT_EQ(h->DescribePhase(), "optimizer");
}

TEST(Heartbeat, ALongPhaseNameIsCutAtItsField) {
  testing_support::TempDir dir;
  const std::string path = dir.path() + "/rank-0";
  CreateHeartbeat(path);
  HeartbeatWriter writer(path);
  writer.Phase(std::string(40, 'x'));
  EXPECT_EQ(ReadHeartbeat(path)->phase, std::string(kHeartbeatPhaseSize, 'x'));
}

TEST(Heartbeat, AReaderNeverSeesAHalfWrittenRecord) {
  testing_support::TempDir dir;
  const std::string path = dir.path() + "/rank-0";
  CreateHeartbeat(path);
  HeartbeatWriter writer(path);
  const std::string seq_path = path;
  // An update in progress (odd seq) is never returned.
  {
    std::fstream f(seq_path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(16);
    const uint64_t odd = 99;
    f.write(reinterpret_cast<const char*>(&odd), sizeof odd);
  }
  EXPECT_FALSE(ReadHeartbeat(path).has_value());
  writer.Phase("data");  // the writer's next update makes it even again
  EXPECT_EQ(ReadHeartbeat(path)->phase, "data");
}

TEST(Heartbeat, AWriterOnAMissingFileSaysWhichVariableAndPath) {
  try {
    HeartbeatWriter writer("/nonexistent/dir/rank-3");
    FAIL() << "no error";
  } catch (const EnvironmentError& e) {
    EXPECT_NE(std::string(e.what()).find("RUNNER_HEARTBEAT_FILE='/nonexistent/dir/rank-3' "
                                         "cannot be opened"),
              std::string::npos)
        << e.what();
  }
}

TEST(Heartbeat, CreatingInAMissingDirectoryNamesThePath) {
  try {
    CreateHeartbeat("/nonexistent/dir/rank-3");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'/nonexistent/dir/rank-3'"), std::string::npos);
  }
}

}  // namespace
}  // namespace common

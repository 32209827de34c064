// The job directory's writers (common/atomic_file.h): whole-file replacement and event lines.

#include "common/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/unit/temp_dir.h"

namespace common {
namespace {

using testing_support::TempDir;
namespace fs = std::filesystem;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(AtomicFileTest, ReplacesTheFileAndLeavesNoTemporary) {
  TempDir tmp;
  const std::string path = tmp.path() + "/outcome.json";
  ASSERT_FALSE(WriteFileAtomic(path, "{}\n"));
  ASSERT_FALSE(WriteFileAtomic(path, "{\"v\":2}\n"));
  EXPECT_EQ(Slurp(path), "{\"v\":2}\n");
  int files = 0;
  for (const auto& entry : fs::directory_iterator(tmp.path())) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 1) << "a temporary file was left behind";
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777 & ~0640, 0u);
}

TEST(AtomicFileTest, GivenTemporaryPathIsUsedAndRemoved) {
  TempDir tmp;
  const std::string path = tmp.path() + "/latest";
  const std::string temp = tmp.path() + "/.latest-1";
  ASSERT_FALSE(WriteFileAtomic(path, "step-000120\n", temp));
  EXPECT_EQ(Slurp(path), "step-000120\n");
  EXPECT_FALSE(fs::exists(temp));
}

TEST(AtomicFileTest, FailuresNameTheStepThePathAndTheErrno) {
  TempDir tmp;
  const std::string missing = tmp.path() + "/no/such/dir/job.yaml";
  std::optional<FileError> create = WriteFileAtomic(missing, "x", missing + ".tmp");
  ASSERT_TRUE(create);
  EXPECT_EQ(create->step, "create");
  EXPECT_EQ(create->path, missing + ".tmp");
  EXPECT_EQ(create->error, ENOENT);
  EXPECT_EQ(create->Describe(),
            "cannot create '" + missing + ".tmp': " + std::string(std::strerror(ENOENT)));

  // Renaming a file over a non-empty directory fails after the write; the temporary goes.
  const std::string dir = tmp.path() + "/taken";
  fs::create_directories(dir + "/inside");
  std::optional<FileError> rename = WriteFileAtomic(dir, "x", dir + ".tmp");
  ASSERT_TRUE(rename);
  EXPECT_EQ(rename->step, "rename");
  EXPECT_EQ(rename->path, dir);
  EXPECT_FALSE(fs::exists(dir + ".tmp"));
}

TEST(AtomicFileTest, EventsAreAppendedOneLineEach) {
  TempDir tmp;
  const std::string path = tmp.path() + "/events.jsonl";
  ASSERT_FALSE(AppendEventLine(path, JsonObject().Add("event", "a")));
  ASSERT_FALSE(AppendEventLine(path, JsonObject().Add("event", "b").Add("step", 3)));
  EXPECT_EQ(Slurp(path), "{\"event\":\"a\"}\n{\"event\":\"b\",\"step\":3}\n");

  std::optional<FileError> open = AppendEventLine(tmp.path() + "/none/events.jsonl", JsonObject());
  ASSERT_TRUE(open);
  EXPECT_EQ(open->step, "open");
  EXPECT_EQ(open->path, tmp.path() + "/none/events.jsonl");
  EXPECT_EQ(open->error, ENOENT);
}

}  // namespace
}  // namespace common

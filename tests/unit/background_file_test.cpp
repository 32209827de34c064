// The agent's background file (runner/background_file.h): the newest content lands, whatever was
// handed over before it; a write that fails is reported with the path and does not stop the
// thread; the destructor writes what was handed over last.

#include "runner/background_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <mutex>
#include <string>
#include <vector>

#include "tests/unit/temp_dir.h"
#include "tests/unit/test_helpers.h"

namespace runner {
namespace {

using testing_support::ReadFile;
using testing_support::TempDir;

TEST(BackgroundFile, TheNewestContentLandsAndTheLastIsWrittenAtTheEnd) {
  TempDir dir;
  const std::string path = dir.path() + "/progress.json";
  std::vector<std::string> errors;
  {
    BackgroundFile file(path, [&](const std::string& e) { errors.push_back(e); });
    for (int i = 0; i < 100; ++i) file.Write("content " + std::to_string(i) + "\n");
    ASSERT_TRUE(file.Wait(10));
    EXPECT_EQ(ReadFile(path), "content 99\n");
    file.Write("the last\n");
  }
  EXPECT_EQ(ReadFile(path), "the last\n");
  EXPECT_TRUE(errors.empty());
}

TEST(BackgroundFile, AFailedWriteIsReportedWithThePathAndTheNextOneStillWrites) {
  TempDir dir;
  const std::string missing = dir.path() + "/no-such-directory/progress.json";
  std::mutex mutex;
  std::vector<std::string> errors;
  BackgroundFile file(missing, [&](const std::string& e) {
    std::lock_guard<std::mutex> lock(mutex);
    errors.push_back(e);
  });
  file.Write("x");
  ASSERT_TRUE(file.Wait(10));
  {
    std::lock_guard<std::mutex> lock(mutex);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_NE(errors[0].find(missing), std::string::npos) << errors[0];
  }
  ASSERT_EQ(::mkdir((dir.path() + "/no-such-directory").c_str(), 0750), 0);
  file.Write("y");
  ASSERT_TRUE(file.Wait(10));
  EXPECT_EQ(ReadFile(missing), "y");
  std::lock_guard<std::mutex> lock(mutex);
  EXPECT_EQ(errors.size(), 1u);
}

}  // namespace
}  // namespace runner

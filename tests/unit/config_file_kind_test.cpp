// A config path that is not a regular file (a directory, a pipe, a device) is a config error that
// names the path, what it is and the fix, at once: reading a pipe or a device could block for ever.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "common/config.h"
#include "common/environment.h"
#include "common/errors.h"
#include "tests/unit/temp_dir.h"

namespace common {
namespace {

TEST(ConfigFileKindTest, OnlyARegularFileIsAConfig) {
  testing_support::TempDir dir;
  const std::string fifo = dir.path() + "/job.fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  const std::string fix =
      ", not a regular file; fix: give --config (or RUNNER_CONFIG) the path of a YAML file; to "
      "use generated text or a pipe, write it to a file first (e.g. cmd > job.yaml; runner "
      "--config job.yaml)";
  struct Case {
    std::string path;
    std::string kind;
  };
  const Case cases[] = {
      {dir.path(), "a directory"},
      {fifo, "a pipe (fifo)"},  // opening it would wait for a writer
      {"/dev/null", "a character device"},
  };
  MapEnvironment env;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.path);
    try {
      (void)LoadConfig({c.path, &env, {}});
      ADD_FAILURE() << "no error";
    } catch (const ConfigError& e) {
      EXPECT_EQ(e.what(), "config file '" + c.path + "' is " + c.kind + fix);
      EXPECT_EQ(e.code(), kExitConfig);
    }
  }
  // A regular file still loads.
  const std::string file = dir.Write("job.yaml", "launch:\n  nproc_per_node: 2\n");
  EXPECT_EQ(LoadConfig({file, &env, {}}).GetIntOrAuto("launch.nproc_per_node"), 2);
}

}  // namespace
}  // namespace common

// The job config: precedence, origins, and the exact errors users read for bad input.

#include "common/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "common/config_schema.h"
#include "common/errors.h"
#include "tests/unit/temp_dir.h"

namespace common {
namespace {

using testing_support::TempDir;

namespace fs = std::filesystem;

TEST(ConfigTest, DefaultsWhenNothingIsGiven) {
  MapEnvironment env;
  Config config = LoadConfig({std::nullopt, &env, {}});
  EXPECT_EQ(config.GetString("job.log_root"), "logs");
  EXPECT_EQ(config.GetIntOrAuto("launch.nproc_per_node"), std::nullopt);
  EXPECT_DOUBLE_EQ(config.GetFloat("train.lr"), 0.01);
  EXPECT_EQ(config.GetIntList("train.hidden_sizes"), (std::vector<int64_t>{256, 128}));
  EXPECT_EQ(config.GetString("job.name"), "");
  EXPECT_EQ(config.Origin("train.lr"), "default");
}

TEST(ConfigTest, PrecedenceIsFileThenEnvironmentThenCommandLine) {
  TempDir dir;
  std::string file = dir.Write("job.yaml",
                               "job:\n  name: first\ntrain:\n  lr: 0.1\n  epochs: 3\n"
                               "  batch_size: 32\nlaunch:\n  nproc_per_node: 2\n");
  MapEnvironment env({{"RUNNER_TRAIN__LR", "0.2"}, {"RUNNER_TRAIN__EPOCHS", "4"}});
  Config config = LoadConfig({file, &env, {"train.lr=0.3", "launch.nproc_per_node=auto"}});
  EXPECT_DOUBLE_EQ(config.GetFloat("train.lr"), 0.3);
  EXPECT_EQ(config.Origin("train.lr"), "command line 'train.lr=0.3'");
  EXPECT_EQ(config.GetInt("train.epochs"), 4);
  EXPECT_EQ(config.Origin("train.epochs"), "environment RUNNER_TRAIN__EPOCHS");
  EXPECT_EQ(config.GetInt("train.batch_size"), 32);
  EXPECT_EQ(config.Origin("train.batch_size"), file + ":6:15");
  EXPECT_EQ(config.GetString("job.name"), "first");
  EXPECT_EQ(config.GetIntOrAuto("launch.nproc_per_node"), std::nullopt);
  EXPECT_EQ(config.file(), file);
}

TEST(ConfigTest, LastOverrideWinsAndListsParse) {
  MapEnvironment env;
  Config config = LoadConfig(
      {std::nullopt, &env, {"train.hidden_sizes=[512, 64]", "train.epochs=2", "train.epochs=5"}});
  EXPECT_EQ(config.GetIntList("train.hidden_sizes"), (std::vector<int64_t>{512, 64}));
  EXPECT_EQ(config.GetInt("train.epochs"), 5);
}

TEST(ConfigTest, ConfigFileFromEnvironmentWhenNoFlag) {
  TempDir dir;
  std::string file = dir.Write("env.yaml", "train:\n  epochs: 7\n");
  MapEnvironment env({{"RUNNER_CONFIG", file}});
  EXPECT_EQ(LoadConfig({std::nullopt, &env, {}}).GetInt("train.epochs"), 7);
}

TEST(ConfigTest, EmptyFileMeansDefaults) {
  TempDir dir;
  MapEnvironment env;
  Config config = LoadConfig({dir.Write("empty.yaml", ""), &env, {}});
  EXPECT_EQ(config.GetInt("train.epochs"), 1);
}

TEST(ConfigTest, ResolvedYamlRoundTrips) {
  TempDir dir;
  MapEnvironment env;
  Config first = LoadConfig(
      {std::nullopt,
       &env,
       {"job.name=a-b", "train.model_path=x: y #z", "train.lr=3e-4", "train.hidden_sizes=[8]"}});
  Config second = LoadConfig({dir.Write("resolved.yaml", first.ToYaml(true)), &env, {}});
  for (const KeySpec& spec : ConfigSchema()) {
    SCOPED_TRACE(std::string(spec.path));
    EXPECT_EQ(first.GetString(std::string(spec.path)), second.GetString(std::string(spec.path)));
  }
}

TEST(ConfigTest, EnvironmentNamesAreDistinct) {
  std::set<std::string> names;
  for (const KeySpec& spec : ConfigSchema()) {
    EXPECT_TRUE(names.insert(EnvNameFor(spec.path)).second) << spec.path;
  }
  EXPECT_EQ(EnvNameFor("launch.nproc_per_node"), "RUNNER_LAUNCH__NPROC_PER_NODE");
}

TEST(ConfigTest, DefaultsSatisfyTheSchema) {
  // LoadConfig validates only what is given; give every default explicitly.
  MapEnvironment env;
  std::vector<std::string> overrides;
  for (const KeySpec& spec : ConfigSchema()) {
    std::string value(spec.default_value);
    if (value == "\"\"") continue;
    overrides.push_back(std::string(spec.path) + "=" + value);
  }
  EXPECT_NO_THROW((void)LoadConfig({std::nullopt, &env, overrides}));
}

// Every key in the schema is documented in configs/README.md, with its default.
TEST(ConfigTest, ReadmeDocumentsEveryKey) {
  std::ifstream in(std::string(RUNNER_SOURCE_DIR) + "/configs/README.md");
  ASSERT_TRUE(in) << "configs/README.md is missing";
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const KeySpec& spec : ConfigSchema()) {
    std::string row = "| `" + std::string(spec.path) + "` |";
    EXPECT_NE(text.find(row), std::string::npos) << spec.path << " is not documented";
    std::string def = "`" + std::string(spec.default_value) + "`";
    size_t at = text.find(row);
    if (at != std::string::npos) {
      std::string line = text.substr(at, text.find('\n', at) - at);
      EXPECT_NE(line.find(def), std::string::npos)
          << spec.path << ": default " << def << " missing in: " << line;
    }
  }
}

// Every example config under configs/ loads.
TEST(ConfigTest, ExampleConfigsLoad) {
  MapEnvironment env;
  int count = 0;
  for (const auto& entry : fs::directory_iterator(std::string(RUNNER_SOURCE_DIR) + "/configs")) {
    if (entry.path().extension() != ".yaml") continue;
    SCOPED_TRACE(entry.path().string());
    EXPECT_NO_THROW((void)LoadConfig({entry.path().string(), &env, {}}));
    ++count;
  }
  EXPECT_GE(count, 2);
}

struct BadCase {
  std::string name;
  std::string yaml;  // written to bad.yaml; "" = no file
  std::vector<std::string> overrides;
  std::map<std::string, std::string> env;
  std::string expected;  // exact message; "@" stands for the file's path
  bool usage = false;    // UsageError instead of ConfigError
};

std::string Expand(const std::string& text, const std::string& file) {
  return std::regex_replace(text, std::regex("@"), file);
}

// Bad files, overrides and environment variables, each with the exact message users read.
const std::vector<BadCase> kBadCases = {
    {"unknown key with suggestion",
     "train:\n  lrr: 0.1\n",
     {},
     {},
     "@:2:3: unknown key 'train.lrr'; did you mean 'train.lr'?"},
    {"unknown key, nothing close",
     "train:\n  colour: blue\n",
     {},
     {},
     "@:2:3: unknown key 'train.colour'; configs/README.md lists every key"},
    {"key in the wrong section",
     "job:\n  lr: 0.1\n",
     {},
     {},
     "@:2:3: unknown key 'job.lr'; did you mean 'train.lr'?"},
    {"unknown section",
     "trian:\n  lr: 0.1\n",
     {},
     {},
     "@:1:1: unknown section 'trian'; did you mean 'train'?"},
    {"unknown section, nothing close",
     "model:\n  x: 1\n",
     {},
     {},
     "@:1:1: unknown section 'model'; the sections are job, launch, train"},
    {"wrong type: text for a number",
     "train:\n  lr: fast\n",
     {},
     {},
     "@:2:7: train.lr: expected a number in (0, 100], got 'fast'"},
    {"out of range: negative lr",
     "train:\n  lr: -1\n",
     {},
     {},
     "@:2:7: train.lr: expected a number in (0, 100], got '-1'"},
    {"out of range: zero batch",
     "train:\n  batch_size: 0\n",
     {},
     {},
     "@:2:15: train.batch_size: expected an integer in [1, 10000000], got '0'"},
    {"float for an integer",
     "train:\n  epochs: 2.5\n",
     {},
     {},
     "@:2:11: train.epochs: expected an integer in [1, 1000000], got '2.5'"},
    {"bool spelt yes",
     "launch:\n  requeue: yes\n",
     {},
     {},
     "@:2:12: launch.requeue: expected true or false, got 'yes'"},
    {"bad enum",
     "train:\n  optimizer: adam\n",
     {},
     {},
     "@:2:14: train.optimizer: expected one of sgd or adamw, got 'adam'"},
    {"mapping where a scalar belongs",
     "train:\n  lr:\n    value: 1\n",
     {},
     {},
     "@:3:5: train.lr: expected a number in (0, 100], got a mapping"},
    {"missing value",
     "train:\n  lr:\n",
     {},
     {},
     "@:2:3: train.lr: expected a number in (0, 100], got no value"},
    {"list with a bad item",
     "train:\n  hidden_sizes: [64, x]\n",
     {},
     {},
     "@:2:17: train.hidden_sizes: expected a list of integers in [1, 1048576], like [256, 128], "
     "got 'x' at index 1"},
    {"scalar for a list",
     "train:\n  hidden_sizes: 64\n",
     {},
     {},
     "@:2:17: train.hidden_sizes: expected a list of integers in [1, 1048576], like [256, 128], "
     "got '64'"},
    {"duplicate key",
     "train:\n  lr: 0.1\n  lr: 0.2\n",
     {},
     {},
     "@:3:3: key 'train.lr' appears twice; keep one"},
    {"duplicate section",
     "train:\n  lr: 0.1\ntrain:\n  epochs: 2\n",
     {},
     {},
     "@:3:1: section 'train' appears twice; merge the two"},
    {"section is a list",
     "train:\n  - lr\n",
     {},
     {},
     "@:2:3: section 'train' must be a mapping of keys, got a list"},
    {"top level is a list",
     "- train\n",
     {},
     {},
     "@:1:1: expected a mapping with sections job, launch and train at the top level, got a "
     "list"},
    {"YAML syntax error",
     "train:\n  lr: [0.1\n",
     {},
     {},
     "@:3:1: YAML syntax error: end of sequence flow not found"},
    {"nproc zero",
     "launch:\n  nproc_per_node: 0\n",
     {},
     {},
     "@:2:19: launch.nproc_per_node: expected auto or an integer in [1, 1024], got '0'"},
    {"job name with a slash",
     "job:\n  name: a/b\n",
     {},
     {},
     "@:2:9: job.name: expected a name of at most 222 letters, digits, '.', '_' and '-', got "
     "'a/b'"},
    {"torchscript without a file",
     "train:\n  model: torchscript\n",
     {},
     {},
     "@:2:10: train.model: torchscript needs train.model_path, the module file saved with "
     "torch.jit.save; set train.model_path"},
    {"bad command-line value",
     "",
     {"train.lr=abc"},
     {},
     "command line 'train.lr=abc': train.lr: expected a number in (0, 100], got 'abc'"},
    {"unknown command-line key",
     "",
     {"train.epoch=3"},
     {},
     "command line 'train.epoch=3': unknown key 'train.epoch'; did you mean 'train.epochs'?"},
    {"override without '='",
     "",
     {"train.lr"},
     {},
     "command-line argument 'train.lr' is not a config override; write key.path=value, like "
     "train.lr=3e-4",
     true},
    {"bad environment value",
     "",
     {},
     {{"RUNNER_LAUNCH__MAX_RESTARTS", "-2"}},
     "environment RUNNER_LAUNCH__MAX_RESTARTS: launch.max_restarts: expected an integer in [0, "
     "1000], got '-2'"},
    {"unknown environment key",
     "",
     {},
     {{"RUNNER_TRAIN__LRR", "1"}},
     "environment variable RUNNER_TRAIN__LRR='1' is not a config key; did you mean "
     "RUNNER_TRAIN__LR? (config variables are RUNNER_<SECTION>__<KEY>; unset it or fix the "
     "name)"},
    {"NaN learning rate",
     "",
     {"train.lr=nan"},
     {},
     "command line 'train.lr=nan': train.lr: expected a number in (0, 100], got 'nan'"},
    {"empty log root on the command line",
     "",
     {"job.log_root="},
     {},
     "command line 'job.log_root=': job.log_root: expected a non-empty path, got an empty value "
     "(it would mean the filesystem root '/'); fix: give a directory (the default is 'logs'), or "
     "leave the key unset"},
    {"empty log root in the environment",
     "",
     {},
     {{"RUNNER_JOB__LOG_ROOT", ""}},
     "environment RUNNER_JOB__LOG_ROOT: job.log_root: expected a non-empty path, got an empty "
     "value (it would mean the filesystem root '/'); fix: give a directory (the default is "
     "'logs'), or leave the key unset"},
    {"empty log root in a file",
     "job:\n  log_root: \"\"\n",
     {},
     {},
     "@:2:13: job.log_root: expected a non-empty path, got an empty value (it would mean the "
     "filesystem root '/'); fix: give a directory (the default is 'logs'), or leave the key unset"},
    {"job name too long for a directory name",
     "",
     {"job.name=" + std::string(223, 'n')},
     {},
     "command line 'job.name=" + std::string(71, 'n') +
         "...': job.name: expected a name of at most 222 letters, digits, '.', '_' and '-', got "
         "223 "
         "characters '" +
         std::string(80, 'n') +
         "...' (the directory <name>-<job id> must fit in a 255-byte file name)"},
    {"collective timeout below a second",
     "",
     {"train.collective_timeout_s=1e-9"},
     {},
     "command line 'train.collective_timeout_s=1e-9': train.collective_timeout_s: expected a "
     "number in [1, 604800], got '1e-9'"},
    {"integer overflow",
     "train:\n  epochs: 99999999999999999999\n",
     {},
     {},
     "@:2:11: train.epochs: expected an integer in [1, 1000000], got '99999999999999999999'"},
};

TEST(ConfigTest, BadInputIsRejectedWithWhereWhatAndFix) {
  for (const BadCase& c : kBadCases) {
    SCOPED_TRACE("case: " + c.name + "\n" + c.yaml);
    TempDir dir;
    std::optional<std::string> file;
    if (!c.yaml.empty()) file = dir.Write("bad.yaml", c.yaml);
    MapEnvironment env(c.env);
    try {
      (void)LoadConfig({file, &env, c.overrides});
      ADD_FAILURE() << "no error";
    } catch (const UsageError& e) {
      EXPECT_TRUE(c.usage) << "usage error, expected config error: " << e.what();
      EXPECT_EQ(e.what(), Expand(c.expected, file.value_or("")));
    } catch (const ConfigError& e) {
      EXPECT_FALSE(c.usage) << "config error, expected usage error";
      EXPECT_EQ(e.what(), Expand(c.expected, file.value_or("")));
      EXPECT_EQ(e.code(), kExitConfig);
    }
  }
}

TEST(ConfigTest, MissingFileNamesThePathAndTheFix) {
  MapEnvironment env;
  try {
    (void)LoadConfig({std::string("/nonexistent/job.yaml"), &env, {}});
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "config file '/nonexistent/job.yaml' cannot be read: No such file or directory; "
                 "fix: check the path given to --config (or RUNNER_CONFIG)");
  }
}

TEST(ConfigTest, SuggestionsFindNearbyKeys) {
  EXPECT_EQ(SuggestKey("train.batchsize"), "train.batch_size");
  EXPECT_EQ(SuggestKey("launch.nproc"), "");
  EXPECT_EQ(SuggestKey("job.nproc_per_node"), "launch.nproc_per_node");
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3u);
}

}  // namespace
}  // namespace common

#pragma once
// The job config's schema: every key, its type, default, allowed range and meaning, in one table.
// Loading, validation, environment overrides, `--print-config` and configs/README.md all follow it
// (a unit test checks that configs/README.md documents every key listed here).

#include <string>
#include <string_view>
#include <vector>

namespace common {

enum class ValueType {
  kBool,       // true | false
  kInt,        // integer within [min, max]
  kFloat,      // finite number within the range
  kString,     // any scalar
  kPath,       // a non-empty path (empty would mean the filesystem root)
  kName,       // [A-Za-z0-9._-]*, at most `max` characters (used in file names)
  kEnum,       // one of `choices`
  kIntOrAuto,  // "auto" or an integer within [min, max]
  kIntList,    // a sequence of integers within [min, max]
};

struct KeySpec {
  std::string_view path;  // "train.lr"
  ValueType type;
  std::string_view default_value;  // as written in YAML ("auto", "0.01", "[256, 128]")
  std::string_view doc;            // one line for configs/README.md and --help
  double min = 0;                  // numeric range
  double max = 0;
  bool min_exclusive = false;                  // (min, ...] instead of [min, ...]
  std::vector<std::string_view> choices = {};  // kEnum only
};

// All keys, in documentation order (sections job, launch, train).
[[nodiscard]] const std::vector<KeySpec>& ConfigSchema();
// The spec for `path`, or nullptr.
[[nodiscard]] const KeySpec* FindKey(std::string_view path);
// The schema's section names, in order.
[[nodiscard]] const std::vector<std::string_view>& ConfigSections();
// What a value of this key must look like, for error messages ("an integer in [1, 1024]").
[[nodiscard]] std::string DescribeExpected(const KeySpec& spec);
// The closest known key to a misspelt one ("train.lrr" -> "train.lr"), or "" if none is close.
[[nodiscard]] std::string SuggestKey(std::string_view path);

// Environment overrides: RUNNER_<SECTION>__<KEY>, upper case ("train.lr" -> RUNNER_TRAIN__LR).
// The double underscore keeps config variables apart from the runner's other RUNNER_* variables.
inline constexpr std::string_view kEnvPrefix = "RUNNER_";
[[nodiscard]] std::string EnvNameFor(std::string_view path);

// Edit distance, for "did you mean" suggestions.
[[nodiscard]] size_t EditDistance(std::string_view a, std::string_view b);

}  // namespace common

namespace common {
// Every key as Markdown tables, one per section: key, allowed values, default, meaning.
// `runner --list-keys` prints it; configs/README.md holds the same tables.
[[nodiscard]] std::string SchemaMarkdown();
}  // namespace common

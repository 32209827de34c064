#pragma once
// The job config: defaults < YAML file < RUNNER_<SECTION>__<KEY> environment variables <
// command-line overrides (`train.lr=3e-4`, and flags such as --nproc-per-node, which become
// overrides). Every value remembers where it came from, for errors and `--print-config`.
//
// Anything wrong (missing or unreadable file, YAML syntax, unknown section or key, wrong type,
// out-of-range value, duplicate key) throws common::ConfigError whose message names the file and
// line:column (or variable, or argument), the key path, the bad value, and what is expected.
// A malformed override (no '=') throws common::UsageError.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/environment.h"

namespace common {

struct ConfigSources {
  std::optional<std::string> file;     // --config; when unset, RUNNER_CONFIG; when unset, none
  const Environment* env = nullptr;    // for RUNNER_* overrides; nullptr: none
  std::vector<std::string> overrides;  // "key.path=value", applied in order (last wins)
};

// A validated config: every schema key has a value and an origin.
class Config {
 public:
  struct Entry {
    std::string value;   // normalised YAML text ("0.01", "[256, 128]", "auto")
    std::string origin;  // "default", "configs/a.yaml:3:7", "environment RUNNER_TRAIN__LR", ...
  };

  [[nodiscard]] bool GetBool(const std::string& path) const;
  [[nodiscard]] int64_t GetInt(const std::string& path) const;
  [[nodiscard]] double GetFloat(const std::string& path) const;
  [[nodiscard]] std::string GetString(const std::string& path) const;
  // nullopt for "auto".
  [[nodiscard]] std::optional<int64_t> GetIntOrAuto(const std::string& path) const;
  [[nodiscard]] std::vector<int64_t> GetIntList(const std::string& path) const;
  [[nodiscard]] const std::string& Origin(const std::string& path) const;
  [[nodiscard]] const std::string& file() const { return file_; }  // "" when none

  // The resolved config as YAML, sections and keys in schema order; with_origins adds a
  // "# from ..." comment to each value that is not a default.
  [[nodiscard]] std::string ToYaml(bool with_origins) const;

  // Used by the loader.
  void Set(const std::string& path, Entry entry) { entries_[path] = std::move(entry); }
  void set_file(std::string file) { file_ = std::move(file); }

 private:
  [[nodiscard]] const Entry& At(const std::string& path) const;
  std::map<std::string, Entry> entries_;
  std::string file_;
};

// Loads, merges and validates. See the header comment for the errors it throws.
[[nodiscard]] Config LoadConfig(const ConfigSources& sources);

}  // namespace common

#pragma once
// The process environment behind a narrow interface, so detection and config logic are pure
// functions of their inputs: ProcessEnvironment reads the real one, MapEnvironment is the fake
// that tests (and recorded scheduler environments under tests/data/env) use.

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace common {

class Environment {
 public:
  virtual ~Environment() = default;
  // The value of `name`, or nullopt when unset. Set-but-empty is "" (not nullopt).
  [[nodiscard]] virtual std::optional<std::string> Get(std::string_view name) const = 0;
  // Every variable, sorted by name.
  [[nodiscard]] virtual std::map<std::string, std::string> All() const = 0;
};

class ProcessEnvironment final : public Environment {
 public:
  [[nodiscard]] std::optional<std::string> Get(std::string_view name) const override;
  [[nodiscard]] std::map<std::string, std::string> All() const override;
};

class MapEnvironment final : public Environment {
 public:
  MapEnvironment() = default;
  explicit MapEnvironment(std::map<std::string, std::string> vars) : vars_(std::move(vars)) {}
  // Reads NAME=VALUE lines ('#' comments and blank lines skipped), as recorded with `env`.
  // Throws common::Error (usage) naming the file and line when a line has no '='.
  [[nodiscard]] static MapEnvironment FromFile(const std::string& path);

  void Set(const std::string& name, const std::string& value) { vars_[name] = value; }
  void Unset(const std::string& name) { vars_.erase(name); }
  [[nodiscard]] std::optional<std::string> Get(std::string_view name) const override;
  [[nodiscard]] std::map<std::string, std::string> All() const override { return vars_; }

 private:
  std::map<std::string, std::string> vars_;
};

}  // namespace common

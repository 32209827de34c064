#include "common/environment.h"

#include <cstdlib>
#include <fstream>

#include "common/errors.h"

extern char** environ;

namespace common {

std::optional<std::string> ProcessEnvironment::Get(std::string_view name) const {
  const char* value = std::getenv(std::string(name).c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

std::map<std::string, std::string> ProcessEnvironment::All() const {
  std::map<std::string, std::string> vars;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    size_t eq = text.find('=');
    if (eq == std::string_view::npos) continue;
    vars.emplace(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
  }
  return vars;
}

std::optional<std::string> MapEnvironment::Get(std::string_view name) const {
  auto it = vars_.find(std::string(name));
  if (it == vars_.end()) return std::nullopt;
  return it->second;
}

MapEnvironment MapEnvironment::FromFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw UsageError("cannot read environment file '" + path + "'");
  MapEnvironment env;
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    if (line.empty() || line[0] == '#') continue;
    size_t eq = line.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw UsageError(path + ":" + std::to_string(line_no) + ": expected NAME=VALUE, got '" +
                       line + "'");
    }
    env.Set(line.substr(0, eq), line.substr(eq + 1));
  }
  return env;
}

}  // namespace common

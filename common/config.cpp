#include "common/config.h"

#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>

#include "common/config_schema.h"
#include "common/errors.h"
#include "common/fault_inject.h"
#include "common/parse_int.h"
#include "common/worker_contract.h"

namespace common {

namespace {

// A value being checked, with the origin prefix used in its error message.
struct Candidate {
  YAML::Node node;
  std::string origin;  // "configs/a.yaml:3:7" or "environment RUNNER_TRAIN__LR" ...
};

std::string Quote(const std::string& text) {
  constexpr size_t kMaxShown = 80;
  if (text.size() > kMaxShown) return "'" + text.substr(0, kMaxShown) + "...'";
  return "'" + text + "'";
}

std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "no value";
    case YAML::NodeType::Scalar:
      return Quote(node.Scalar());
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

std::string MarkOf(const std::string& file, const YAML::Mark& mark) {
  return file + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

[[noreturn]] void Fail(const Candidate& c, const KeySpec& spec, const std::string& got) {
  throw ConfigError(c.origin + ": " + std::string(spec.path) + ": expected " +
                    DescribeExpected(spec) + ", got " + got);
}

bool ParseInt(const std::string& text, int64_t* out) {
  std::optional<int64_t> value = ParseInt64(text, PlusSign::kAccept);
  if (value) *out = *value;
  return value.has_value();
}

bool ParseFloat(const std::string& text, double* out) {
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) return false;
  errno = 0;
  char* end = nullptr;
  *out = std::strtod(text.c_str(), &end);
  return errno == 0 && end == text.c_str() + text.size() && std::isfinite(*out);
}

bool InRange(const KeySpec& spec, double v) {
  if (spec.min_exclusive ? v <= spec.min : v < spec.min) return false;
  return v <= spec.max;
}

// Checks one value against its spec; returns its normalised YAML text or throws ConfigError.
std::string Validate(const KeySpec& spec, const Candidate& c) {
  const YAML::Node& node = c.node;
  if (spec.type == ValueType::kIntList) {
    if (!node.IsSequence()) Fail(c, spec, Describe(node));
    std::string text = "[";
    for (size_t i = 0; i < node.size(); ++i) {
      int64_t v = 0;
      if (!node[i].IsScalar() || !ParseInt(node[i].Scalar(), &v) ||
          !InRange(spec, static_cast<double>(v))) {
        Fail(c, spec, Describe(node[i]) + " at index " + std::to_string(i));
      }
      text += (i ? ", " : "") + std::to_string(v);
    }
    if (node.size() == 0) Fail(c, spec, "an empty list");
    return text + "]";
  }
  if (!node.IsScalar()) Fail(c, spec, Describe(node));
  const std::string& text = node.Scalar();
  switch (spec.type) {
    case ValueType::kBool:
      if (text == "true" || text == "True" || text == "TRUE") return "true";
      if (text == "false" || text == "False" || text == "FALSE") return "false";
      Fail(c, spec, Quote(text));
    case ValueType::kIntOrAuto:
      if (text == "auto") return text;
      [[fallthrough]];
    case ValueType::kInt: {
      int64_t v = 0;
      if (!ParseInt(text, &v) || !InRange(spec, static_cast<double>(v))) Fail(c, spec, Quote(text));
      return std::to_string(v);
    }
    case ValueType::kFloat: {
      double v = 0;
      if (!ParseFloat(text, &v) || !InRange(spec, v)) Fail(c, spec, Quote(text));
      return text;
    }
    case ValueType::kString:
      return text;
    case ValueType::kPath:
      if (text.empty()) {
        throw ConfigError(c.origin + ": " + std::string(spec.path) +
                          ": expected a non-empty path, got an empty value (it would mean the "
                          "filesystem root '/'); fix: give a directory (the default is '" +
                          std::string(spec.default_value) + "'), or leave the key unset");
      }
      return text;
    case ValueType::kName:
      if (text.size() > static_cast<size_t>(spec.max)) {
        Fail(c, spec,
             std::to_string(text.size()) + " characters " + Quote(text) +
                 " (the directory <name>-<job id> must fit in a 255-byte file name)");
      }
      for (char ch : text) {
        if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '_' && ch != '-') {
          Fail(c, spec, Quote(text));
        }
      }
      if (text == "." || text == "..") Fail(c, spec, Quote(text));
      return text;
    case ValueType::kEnum:
      for (std::string_view choice : spec.choices) {
        if (text == choice) return text;
      }
      Fail(c, spec, Quote(text));
    case ValueType::kIntList:
      break;
  }
  throw std::logic_error("unhandled value type for " + std::string(spec.path));
}

// Text from an environment variable or the command line: lists are YAML flow sequences
// ("[512, 256]"); every other type takes the text as it is (no YAML quoting rules to learn).
YAML::Node NodeFromText(const KeySpec& spec, const std::string& text, const std::string& origin) {
  if (spec.type != ValueType::kIntList) return YAML::Node(text);
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(origin + ": " + std::string(spec.path) + ": expected " +
                      DescribeExpected(spec) + ", got " + Quote(text) + " (" + e.msg + ")");
  }
}

std::string UnknownKey(const std::string& where, const std::string& path, bool is_section) {
  std::string message = where + ": unknown " + (is_section ? "section '" : "key '") + path + "'";
  std::string suggestion;
  if (is_section) {
    for (std::string_view s : ConfigSections()) {
      if (EditDistance(path, s) <= 2) suggestion = std::string(s);
    }
  } else {
    suggestion = SuggestKey(path);
  }
  if (!suggestion.empty()) return message + "; did you mean '" + suggestion + "'?";
  std::string sections;
  for (std::string_view s : ConfigSections())
    sections += (sections.empty() ? "" : ", ") + std::string(s);
  return message +
         (is_section ? "; the sections are " + sections : "; configs/README.md lists every key");
}

// What `mode` is, for a config path that is not a regular file.
const char* FileKind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a pipe (fifo)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// Only a regular file: reading a pipe or a device could block for ever (a signal could not end
// the runner while it waits), a directory cannot be read at all.
void RequireRegularFile(const std::string& file) {
  struct stat st {};
  if (stat(file.c_str(), &st) != 0 || S_ISREG(st.st_mode)) return;  // the open below says why
  throw ConfigError("config file '" + file + "' is " + FileKind(st.st_mode) +
                    ", not a regular file; fix: give --config (or RUNNER_CONFIG) the path of a "
                    "YAML file; to use generated text or a pipe, write it to a file first "
                    "(e.g. cmd > job.yaml; runner --config job.yaml)");
}

void LoadFile(const std::string& file, Config* config) {
  RequireRegularFile(file);
  std::ifstream probe(file);
  if (!probe) {
    throw ConfigError("config file '" + file + "' cannot be read: " + std::strerror(errno) +
                      "; fix: check the path given to --config (or RUNNER_CONFIG)");
  }
  YAML::Node root;
  try {
    root = YAML::LoadFile(file);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(MarkOf(file, e.mark) + ": YAML syntax error: " + e.msg);
  } catch (const YAML::Exception& e) {
    throw ConfigError("config file '" + file + "': " + e.msg);
  }
  if (root.IsNull()) return;  // an empty file: all defaults
  if (!root.IsMap()) {
    throw ConfigError(MarkOf(file, root.Mark()) + ": expected a mapping with sections job, " +
                      "launch and train at the top level, got " + Describe(root));
  }
  std::set<std::string> seen_sections;
  for (const auto& section : root) {
    const std::string name = section.first.Scalar();
    const std::string where = MarkOf(file, section.first.Mark());
    bool known = false;
    for (std::string_view s : ConfigSections()) known = known || s == name;
    if (!known) throw ConfigError(UnknownKey(where, name, true));
    if (!seen_sections.insert(name).second) {
      throw ConfigError(where + ": section '" + name + "' appears twice; merge the two");
    }
    if (section.second.IsNull()) continue;
    if (!section.second.IsMap()) {
      throw ConfigError(MarkOf(file, section.second.Mark()) + ": section '" + name +
                        "' must be a mapping of keys, got " + Describe(section.second));
    }
    std::set<std::string> seen_keys;
    for (const auto& item : section.second) {
      const std::string path = name + "." + item.first.Scalar();
      const std::string key_where = MarkOf(file, item.first.Mark());
      const KeySpec* spec = FindKey(path);
      if (spec == nullptr) throw ConfigError(UnknownKey(key_where, path, false));
      if (!seen_keys.insert(path).second) {
        throw ConfigError(key_where + ": key '" + path + "' appears twice; keep one");
      }
      const std::string value_where =
          item.second.IsNull() ? key_where : MarkOf(file, item.second.Mark());
      Candidate c{item.second, value_where};
      config->Set(path, {Validate(*spec, c), value_where});
    }
  }
}

void ApplyEnvironment(const Environment& env, Config* config) {
  for (const auto& [name, value] : env.All()) {
    if (name.rfind(kEnvPrefix, 0) != 0 || name.find("__") == std::string::npos) continue;
    const KeySpec* match = nullptr;
    for (const KeySpec& spec : ConfigSchema()) {
      if (EnvNameFor(spec.path) == name) match = &spec;
    }
    const std::string origin = "environment " + name;
    if (match == nullptr) {
      std::string message =
          "environment variable " + name + "=" + Quote(value) + " is not a config key";
      // Suggest from the key the variable seems to spell.
      std::string guess;
      for (const KeySpec& spec : ConfigSchema()) {
        if (EditDistance(EnvNameFor(spec.path), name) <= 3) guess = EnvNameFor(spec.path);
      }
      if (!guess.empty()) message += "; did you mean " + guess + "?";
      throw ConfigError(
          message + " (config variables are RUNNER_<SECTION>__<KEY>; unset it or fix the name)");
    }
    Candidate c{NodeFromText(*match, value, origin), origin};
    config->Set(std::string(match->path), {Validate(*match, c), origin});
  }
}

void ApplyOverride(const std::string& arg, Config* config) {
  size_t eq = arg.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw UsageError("command-line argument " + Quote(arg) +
                     " is not a config override; write key.path=value, like train.lr=3e-4");
  }
  const std::string path = arg.substr(0, eq);
  const std::string value = arg.substr(eq + 1);
  const std::string origin = "command line " + Quote(arg);
  const KeySpec* spec = FindKey(path);
  if (spec == nullptr) throw ConfigError(UnknownKey(origin, path, false));
  Candidate c{NodeFromText(*spec, value, origin), origin};
  config->Set(path, {Validate(*spec, c), origin});
}

// Checks that involve more than one key, and values with a grammar of their own.
void CheckCombinations(const Config& config) {
  (void)ParseFaultInjection(config.GetString(kFaultInjectKey), config.Origin(kFaultInjectKey));
  if (config.GetString("train.model") == "torchscript" &&
      config.GetString("train.model_path").empty()) {
    throw ConfigError(config.Origin("train.model") +
                      ": train.model: torchscript needs train.model_path, the module file saved " +
                      "with torch.jit.save; set train.model_path");
  }
}

}  // namespace

Config LoadConfig(const ConfigSources& sources) {
  Config config;
  for (const KeySpec& spec : ConfigSchema()) {
    config.Set(std::string(spec.path),
               {std::string(spec.default_value) == "\"\"" ? "" : std::string(spec.default_value),
                "default"});
  }
  std::optional<std::string> file = sources.file;
  if (!file && sources.env != nullptr) file = sources.env->Get(contract_env::kConfig);
  if (file && !file->empty()) {
    config.set_file(*file);
    LoadFile(*file, &config);
  }
  if (sources.env != nullptr) ApplyEnvironment(*sources.env, &config);
  for (const std::string& arg : sources.overrides) ApplyOverride(arg, &config);
  CheckCombinations(config);
  return config;
}

const Config::Entry& Config::At(const std::string& path) const {
  auto it = entries_.find(path);
  if (it == entries_.end())
    throw std::logic_error("config key '" + path + "' is not in the schema");
  return it->second;
}

bool Config::GetBool(const std::string& path) const { return At(path).value == "true"; }

int64_t Config::GetInt(const std::string& path) const { return std::stoll(At(path).value); }

double Config::GetFloat(const std::string& path) const { return std::stod(At(path).value); }

std::string Config::GetString(const std::string& path) const { return At(path).value; }

std::optional<int64_t> Config::GetIntOrAuto(const std::string& path) const {
  const std::string& value = At(path).value;
  if (value == "auto") return std::nullopt;
  return std::stoll(value);
}

std::vector<int64_t> Config::GetIntList(const std::string& path) const {
  std::vector<int64_t> values;
  for (const auto& item : YAML::Load(At(path).value)) values.push_back(item.as<int64_t>());
  return values;
}

const std::string& Config::Origin(const std::string& path) const { return At(path).origin; }

std::string Config::ToYaml(bool with_origins) const {
  YAML::Emitter out;
  out << YAML::BeginMap;
  for (std::string_view section : ConfigSections()) {
    out << YAML::Key << std::string(section) << YAML::Value << YAML::BeginMap;
    for (const KeySpec& spec : ConfigSchema()) {
      if (spec.path.substr(0, spec.path.find('.')) != section) continue;
      const Entry& entry = At(std::string(spec.path));
      out << YAML::Key << std::string(spec.path.substr(spec.path.find('.') + 1)) << YAML::Value;
      if (spec.type == ValueType::kIntList) {
        out << YAML::Flow << YAML::Load(entry.value);
      } else if (spec.type == ValueType::kString || spec.type == ValueType::kName ||
                 spec.type == ValueType::kPath) {
        out << YAML::DoubleQuoted << entry.value;
      } else {
        out << entry.value;
      }
      if (with_origins && entry.origin != "default") out << YAML::Comment("from " + entry.origin);
    }
    out << YAML::EndMap;
  }
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace common

#pragma once
// Internals of DetectLaunchEnvironment shared by its files: the strict environment reader and
// one detector per scheduler (launch_env.cpp: mpirun, torchrun-style, local, devices;
// launch_env_slurm.cpp: Slurm). Internal to runner/; use runner/launch_env.h.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/environment.h"
#include "common/errors.h"
#include "common/parse_int.h"
#include "runner/launch_env.h"

namespace runner::launch_env_internal {

// NAME='value', as errors quote a variable.
inline std::string Raw(const std::string& name, const std::string& value) {
  return name + "='" + value + "'";
}

// Strict readers: a variable that is required must be set; one that is set must parse.
class EnvReader {
 public:
  EnvReader(const common::Environment& env, std::string context)
      : env_(env), context_(std::move(context)) {}

  [[nodiscard]] bool Has(const std::string& name) const { return env_.Get(name).has_value(); }
  [[nodiscard]] std::optional<std::string> Get(const std::string& name) const {
    return env_.Get(name);
  }

  [[nodiscard]] std::string RequireString(const std::string& name, const std::string& fix) const {
    std::optional<std::string> value = env_.Get(name);
    if (!value)
      throw common::EnvironmentError(name + " is not set, but " + context_ + " needs it; " + fix);
    if (value->empty())
      throw common::EnvironmentError(name + " is set but empty (" + context_ + "); " + fix);
    return *value;
  }

  [[nodiscard]] int64_t RequireInt(const std::string& name, int64_t min, int64_t max,
                                   const std::string& fix) const {
    return ParseInt(name, RequireString(name, fix), min, max);
  }

  [[nodiscard]] std::optional<int64_t> OptionalInt(const std::string& name, int64_t min,
                                                   int64_t max) const {
    std::optional<std::string> value = env_.Get(name);
    if (!value) return std::nullopt;
    return ParseInt(name, *value, min, max);
  }

  // The first of `names` that is set, or "".
  [[nodiscard]] std::string FirstSet(const std::vector<std::string>& names) const {
    for (const std::string& name : names) {
      if (env_.Get(name)) return name;
    }
    return "";
  }

  [[nodiscard]] static int64_t ParseInt(const std::string& name, const std::string& text,
                                        int64_t min, int64_t max) {
    const std::optional<int64_t> parsed = common::ParseInt64(text);
    if (!parsed) {
      throw common::EnvironmentError(Raw(name, text) +
                                     " is not an integer; it is set by the scheduler, " +
                                     "so check the launch command or whoever exported it");
    }
    const int64_t value = *parsed;
    if (value < min || value > max) {
      throw common::EnvironmentError(Raw(name, text) + " is out of range: expected " +
                                     std::to_string(min) + ".." + std::to_string(max));
    }
    return value;
  }

 private:
  const common::Environment& env_;
  std::string context_;
};

// Job-level Slurm facts that hold whoever started the agent (srun, mpirun or the batch script):
// job id and name, restart count, end time, array ids, CPUs per task. Nothing without SLURM_JOB_ID.
void ReadSlurmJobFacts(const EnvReader& env, LaunchEnvironment* out);

// Under Slurm without mpirun: identity from the srun step, or the batch script's single agent.
void DetectSlurm(const EnvReader& env, const HostFacts& host, LaunchEnvironment* out);

}  // namespace runner::launch_env_internal

#include "runner/agent_support.h"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <ctime>

#include "common/errors.h"
#include "common/job_layout.h"
#include "common/json.h"
#include "runner/agent.h"
#include "runner/control_plane.h"
#include "runner/job_dir.h"
#include "runner/process.h"

namespace runner {

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || read(fd, raw.data(), bytes) != static_cast<ssize_t>(bytes)) {
    throw common::EnvironmentError("cannot read /dev/urandom for the job token");
  }
  close(fd);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::string LocalJobId() {
  time_t now = time(nullptr);
  tm local{};
  localtime_r(&now, &local);
  char text[32];
  strftime(text, sizeof(text), "%Y%m%d-%H%M%S", &local);
  return std::string(text) + "-" + RandomHex(2);
}

std::string SafeName(const std::string& name) {
  std::string out;
  for (char c : name)
    out +=
        (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-') ? c : '_';
  if (out.empty()) return "job";
  if (out[0] == '.') out[0] = '_';
  return out;
}

JobDirNames ResolveJobDirNames(const std::string& configured_name,
                               const std::string& scheduler_name, const std::string& scheduler_id) {
  namespace layout = common::job_layout;
  JobDirNames names;
  names.name = !configured_name.empty()
                   ? configured_name
                   : SafeName(scheduler_name).substr(0, layout::kMaxJobNameLength);
  if (!scheduler_id.empty()) names.id = SafeName(scheduler_id).substr(0, layout::kMaxJobIdLength);
  return names;
}

std::string TrainerPath() {
  const std::string self = SelfExecutable();
  const std::string dir = self.substr(0, self.rfind('/'));
  for (const std::string& candidate : {dir + "/trainer", dir + "/../trainer/trainer"}) {
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  throw common::EnvironmentError("the bundled trainer was not found next to the runner (" + dir +
                                 "/trainer or " + dir +
                                 "/../trainer/trainer); build it, or give "
                                 "the worker command after '--'");
}

std::string EnvironmentJson(const std::map<std::string, std::string>& env) {
  common::JsonObject out;
  for (const auto& [name, value] : env) {
    bool wanted = false;
    for (const char* prefix :
         {"SLURM_", "NCCL_", "CUDA_", "OMPI_", "PMIX_", "TORCH", "OMP_", "MASTER_"}) {
      wanted = wanted || name.rfind(prefix, 0) == 0;
    }
    if (!wanted) continue;
    out.Add(name, LooksSecret(name) ? std::string("<redacted>") : value);
  }
  return out.str();
}

void CheckWorld(const ControlPlane& control, const LaunchEnvironment& launch) {
  if (control.size() != launch.agent_count.value) {
    throw common::EnvironmentError(
        "the scheduler says there are " + std::to_string(launch.agent_count.value) + " agents (" +
        launch.agent_count.source + "=" + std::to_string(launch.agent_count.value) +
        ") but MPI's world has " + std::to_string(control.size()) +
        (control.size() == 1
             ? ": each agent started alone. Under Slurm this is srun without "
               "PMI; fix: srun --mpi=pmix runner ..., or start the agents with mpirun"
             : "; were the agents started by two different launchers?"));
  }
  if (launch.scheduler != Scheduler::kLocal && control.rank() != launch.agent_rank.value) {
    throw common::EnvironmentError("MPI rank " + std::to_string(control.rank()) + " but " +
                                   launch.agent_rank.source + "=" +
                                   std::to_string(launch.agent_rank.value) +
                                   "; the agents' identities disagree (mixed launchers?)");
  }
}

common::LogWriterOptions LogWriterOptionsFrom(const common::Config& config) {
  common::LogWriterOptions options;
  options.max_queued_bytes =
      static_cast<size_t>(config.GetFloat("job.log_buffer_mib") * 1024 * 1024);
  options.flush_timeout_s = config.GetFloat("job.log_flush_timeout_s");
  return options;
}

std::string NodesJson(const Layout& layout) {
  std::vector<std::string> nodes;
  for (size_t n = 0; n < layout.hosts.size(); ++n) {
    nodes.push_back(common::JsonObject()
                        .Add("node", static_cast<int>(n))
                        .Add("host", layout.hosts[n])
                        .Add("workers", layout.workers_on_node[n])
                        .str());
  }
  return common::JsonArray(nodes);
}

std::string RunnerLogName(const AgentPlace& place, const std::string& host) {
  return common::job_layout::RunnerLogName(host, place.agents_on_node > 1 ? place.local_index : -1);
}

void WriteOutcomeFiles(const JobDir& dir, int attempt, const std::string& json,
                       spdlog::logger& log) {
  try {
    dir.WriteFile(common::job_layout::AttemptDirName(attempt) + "/" + common::job_layout::kOutcome,
                  json);
    dir.WriteFile(common::job_layout::kOutcome, json);
  } catch (const common::Error& e) {
    log.error("{}; the outcome is: {}", e.what(), json);
  }
}

}  // namespace runner

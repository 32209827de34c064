#include "runner/watchdog_setup.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "common/errors.h"
#include "common/shm_name.h"

namespace runner {

namespace {

std::string Whole(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", std::round(seconds * 10) / 10);
  return text;
}

}  // namespace

HangOptions HangOptionsFromConfig(const common::Config& config) {
  HangOptions o;
  o.timeout_s = config.GetFloat("launch.hang_timeout_s");
  o.warn_fraction = config.GetFloat("launch.hang_warn_fraction");
  o.init_timeout_s = config.GetFloat("launch.init_timeout_s");
  o.first_step_timeout_s = config.GetFloat("launch.first_step_timeout_s");
  o.checkpoint_timeout_s = config.GetFloat("launch.checkpoint_timeout_s");
  // Sampling must be fine enough for short test timeouts, and needs no more than 1 s otherwise.
  o.sample_s = o.timeout_s > 0 ? std::min(1.0, std::max(0.1, o.timeout_s / 20)) : 1.0;
  return o;
}

std::string TimeoutsLine(const common::Config& config) {
  const HangOptions o = HangOptionsFromConfig(config);
  std::string line =
      "timeouts: rendezvous " + Whole(config.GetFloat("launch.rendezvous_timeout_s")) + " s";
  if (o.timeout_s > 0) {
    line += ", process-group set-up " + Whole(o.init_timeout_s) + " s, first step " +
            Whole(std::max(o.first_step_timeout_s, o.timeout_s)) + " s, hang " +
            Whole(o.timeout_s) + " s (warning at " + Whole(o.timeout_s * o.warn_fraction) +
            " s), checkpoint or evaluation " +
            Whole(std::max(o.checkpoint_timeout_s, o.timeout_s)) + " s";
  } else {
    line += ", hang watchdog off (launch.hang_timeout_s 0)";
  }
  return line + ", each collective " + Whole(config.GetFloat("train.collective_timeout_s")) +
         " s (train.collective_timeout_s)";
}

int RemoveStaleHeartbeatDirs(const std::string& base, uint64_t pid_namespace) {
  namespace fs = std::filesystem;
  const std::string tag = "-ns" + std::to_string(pid_namespace);
  std::error_code error;
  int removed = 0;
  for (fs::directory_iterator it(base, error), end; !error && it != end; it.increment(error)) {
    std::string name = it->path().filename().string();
    // Only ours to judge: a pid means something in its own pid namespace only.
    if (name.rfind("runner-", 0) != 0 || name.size() <= tag.size() ||
        name.compare(name.size() - tag.size(), tag.size(), tag) != 0)
      continue;
    name.resize(name.size() - tag.size());
    const size_t dash = name.rfind('-');
    if (dash == std::string::npos || dash + 1 == name.size()) continue;
    const std::string pid = name.substr(dash + 1);
    if (pid.find_first_not_of("0123456789") != std::string::npos || pid.size() > 9) continue;
    struct stat info {};
    if (::lstat(it->path().c_str(), &info) != 0 || !S_ISDIR(info.st_mode) ||
        info.st_uid != ::getuid() || ::access(("/proc/" + pid).c_str(), F_OK) == 0)
      continue;
    std::error_code ignored;
    if (fs::remove_all(it->path(), ignored) > 0) ++removed;
  }
  return removed;
}

HeartbeatDir::HeartbeatDir(const std::string& job_id, int attempt, int agent,
                           const std::string& fallback) {
  std::string base;
  if (const char* chosen = std::getenv("RUNNER_HEARTBEAT_DIR"); chosen != nullptr && *chosen) {
    base = chosen;
  } else if (::access("/dev/shm", W_OK | X_OK) == 0) {
    base = "/dev/shm";
  } else {
    base = fallback;
  }
  // Only in /dev/shm, which is this host's own: a shared RUNNER_HEARTBEAT_DIR or the attempt
  // directory holds other hosts' directories, whose pids mean nothing here.
  const uint64_t pid_namespace = common::PidNamespace();
  if (base == "/dev/shm") (void)RemoveStaleHeartbeatDirs(base, pid_namespace);
  path_ = base + "/runner-" + job_id + "-" + std::to_string(attempt) + "-" + std::to_string(agent) +
          "-" + std::to_string(::getpid()) + "-ns" + std::to_string(pid_namespace);
  if (::mkdir(path_.c_str(), 0700) != 0 && errno != EEXIST) {
    throw common::EnvironmentError(
        "cannot create the heartbeat directory '" + path_ + "': " + std::strerror(errno) +
        "; fix: set RUNNER_HEARTBEAT_DIR to a writable node-local directory");
  }
}

HeartbeatDir::~HeartbeatDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string HeartbeatDir::RankFile(int rank) const {
  return path_ + "/rank-" + std::to_string(rank);
}

}  // namespace runner

#include "common/shm_name.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <regex>

namespace common {

std::string ShmSegmentName(const std::string& token, const std::string& run_id, int attempt,
                           int node, int agent_pid, uint64_t pid_namespace) {
  // FNV-1a, as trainer/checkpoint.cpp's HashKeys: two copies on purpose, each must stay as it is
  // (a checkpoint's config hash; the name every rank and agent of a running job computes).
  uint64_t h = 1469598103934665603ULL;
  for (char c : token + "\n" + run_id) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  std::string name =
      "/runner-" + std::string(hex) + "-a" + std::to_string(attempt) + "-n" + std::to_string(node);
  if (agent_pid > 0 && pid_namespace > 0)
    name += "-p" + std::to_string(agent_pid) + "-ns" + std::to_string(pid_namespace);
  return name;
}

std::string ShmSegmentName(const WorkerContract& c) {
  return ShmSegmentName(c.token,
                        c.run_id + "@" + c.master_addr + ":" + std::to_string(c.master_port),
                        c.restart_count, c.node_rank, c.node_agent_pid, PidNamespace());
}

uint64_t PidNamespace() {
  struct stat info {};
  if (stat("/proc/self/ns/pid", &info) != 0) return 0;
  return static_cast<uint64_t>(info.st_ino);
}

ShmSegmentOwner ShmSegmentOwnerOf(const std::string& name) {
  static const std::regex pattern(
      "/?runner-[0-9a-f]{16}-a[0-9]{1,9}-n[0-9]{1,9}-p([1-9][0-9]{0,8})-ns([1-9][0-9]{0,18})");
  std::smatch match;
  ShmSegmentOwner owner;
  if (!std::regex_match(name, match, pattern)) return owner;
  owner.pid = std::stoi(match[1].str());
  owner.pid_namespace = std::stoull(match[2].str());
  return owner;
}

int RemoveStaleShmSegments(const std::string& dir) {
  const uint64_t here = PidNamespace();
  DIR* d = here == 0 ? nullptr : opendir(dir.c_str());
  if (d == nullptr) return 0;
  int removed = 0;
  while (const dirent* entry = readdir(d)) {
    const std::string name = entry->d_name;
    const ShmSegmentOwner owner = ShmSegmentOwnerOf(name);
    if (owner.pid == 0 || owner.pid_namespace != here) continue;
    const int pid = owner.pid;
    const std::string path = dir + "/" + name;
    struct stat info {};
    if (lstat(path.c_str(), &info) != 0 || !S_ISREG(info.st_mode) || info.st_uid != getuid() ||
        access(("/proc/" + std::to_string(pid)).c_str(), F_OK) == 0)
      continue;
    if (unlink(path.c_str()) == 0) ++removed;
  }
  closedir(d);
  return removed;
}

}  // namespace common

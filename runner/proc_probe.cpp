#include "runner/proc_probe.h"

#include <unistd.h>

#include <cctype>
#include <fstream>
#include <sstream>
#include <vector>

namespace runner {

std::string DescribeProcState(char state) {
  switch (state) {
    case 'R':
      return "running (R)";
    case 'S':
      return "sleeping (S)";
    case 'D':
      return "uninterruptible (D)";
    case 'T':
      return "stopped (T)";
    case 't':
      return "traced (t)";
    case 'Z':
      return "zombie (Z)";
    case 'X':
      return "dead (X)";
    case 'I':
      return "idle (I)";
    default:
      return std::string("state ") + state;
  }
}

std::optional<ProcSample> ParseProcStat(std::string_view stat, long ticks_per_second) {
  const size_t close = stat.rfind(')');
  if (close == std::string_view::npos || ticks_per_second <= 0) return std::nullopt;
  // After ") ": state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
  // utime(14) stime(15), numbered as in proc(5).
  std::istringstream in(std::string(stat.substr(close + 1)));
  std::vector<std::string> fields;
  for (std::string field; in >> field && fields.size() < 13;) fields.push_back(field);
  if (fields.size() < 13 || fields[0].size() != 1) return std::nullopt;
  ProcSample sample;
  sample.state = fields[0][0];
  try {
    const double ticks = std::stod(fields[11]) + std::stod(fields[12]);
    sample.cpu_s = ticks / static_cast<double>(ticks_per_second);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  return sample;
}

int WorkerPidUnder(int pid) {
  const std::string id = std::to_string(pid);
  std::ifstream children("/proc/" + id + "/task/" + id + "/children");
  std::vector<int> pids;
  for (int child = 0; children >> child;) pids.push_back(child);
  return pids.size() == 1 ? pids.front() : pid;
}

std::optional<ProcSample> ReadProcSample(int pid) {
  const std::string dir = "/proc/" + std::to_string(pid);
  std::ifstream stat_file(dir + "/stat");
  std::string stat;
  if (!std::getline(stat_file, stat)) return std::nullopt;
  std::optional<ProcSample> sample = ParseProcStat(stat, sysconf(_SC_CLK_TCK));
  if (!sample) return std::nullopt;
  if (sample->state != 'R') {
    std::ifstream wchan_file(dir + "/wchan");
    std::getline(wchan_file, sample->wchan);
    if (sample->wchan == "0") sample->wchan.clear();
  }
  return sample;
}

std::optional<uint64_t> ParseCaughtSignals(std::string_view status) {
  const size_t at = status.find("SigCgt:");
  if (at == std::string_view::npos) return std::nullopt;
  size_t pos = at + 7;
  while (pos < status.size() && (status[pos] == ' ' || status[pos] == '\t')) ++pos;
  uint64_t mask = 0;
  size_t digits = 0;
  for (; pos < status.size() && std::isxdigit(static_cast<unsigned char>(status[pos])); ++pos) {
    const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(status[pos])));
    mask = (mask << 4) | static_cast<uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
    ++digits;
  }
  if (digits == 0 || digits > 16) return std::nullopt;
  return mask;
}

bool CatchesSignal(int pid, int signal) {
  std::ifstream in("/proc/" + std::to_string(WorkerPidUnder(pid)) + "/status");
  std::stringstream text;
  text << in.rdbuf();
  const std::optional<uint64_t> mask = ParseCaughtSignals(text.str());
  if (!mask || signal < 1 || signal > 64) return true;
  return ((*mask >> (signal - 1)) & 1) != 0;
}

}  // namespace runner

#include "common/fault_inject.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <optional>

#include "common/errors.h"
#include "common/parse_int.h"

namespace common {

namespace {

// At most a week: longer is a typo, and sleep_for must not overflow.
constexpr double kMaxSeconds = 7 * 24 * 3600;

std::string Quote(std::string_view text) { return "'" + std::string(text) + "'"; }

std::string PhaseList() {
  std::string list;
  for (std::string_view phase : FaultPhases())
    list += (list.empty() ? "" : ", ") + std::string(phase);
  return list;
}

bool ParseSeconds(std::string_view text, double* out) {
  if (text.empty() || !(std::isdigit(static_cast<unsigned char>(text[0])) || text[0] == '.'))
    return false;
  const std::string copy(text);
  errno = 0;
  char* end = nullptr;
  *out = std::strtod(copy.c_str(), &end);
  return errno == 0 && end == copy.c_str() + copy.size() && std::isfinite(*out);
}

// One RANK:PHASE:SECONDS[@STEP]; returns what is wrong with it, or "" (and fills *fault).
std::string ParseOne(std::string_view item, InjectedFault* fault) {
  if (item.empty()) return "it is empty";
  const size_t first = item.find(':');
  const size_t second = first == std::string_view::npos ? first : item.find(':', first + 1);
  if (second == std::string_view::npos || item.find(':', second + 1) != std::string_view::npos)
    return "it has " + std::to_string(std::count(item.begin(), item.end(), ':') + 1) +
           " ':'-separated parts, not 3";
  const std::string_view rank = item.substr(0, first);
  const std::string_view phase = item.substr(first + 1, second - first - 1);
  std::string_view seconds = item.substr(second + 1);
  std::string_view step;
  const size_t at = seconds.find('@');
  if (at != std::string_view::npos) {
    step = seconds.substr(at + 1);
    seconds = seconds.substr(0, at);
  }
  const std::optional<int64_t> r = ParseInt64(rank);
  if (!r || *r < 0 || *r > (1 << 24)) return "rank " + Quote(rank) + " is not an integer >= 0";
  fault->rank = static_cast<int>(*r);
  const auto& phases = FaultPhases();
  if (std::find(phases.begin(), phases.end(), phase) == phases.end())
    return "phase " + Quote(phase) + " is not one of " + PhaseList();
  fault->phase = std::string(phase);
  if (!ParseSeconds(seconds, &fault->seconds) || fault->seconds <= 0 ||
      fault->seconds > kMaxSeconds)
    return "seconds " + Quote(seconds) + " is not a number in (0, 604800]";
  if (at != std::string_view::npos) {
    const std::optional<int64_t> s = ParseInt64(step);
    if (!s || *s < 0) return "step " + Quote(step) + " is not an integer >= 0 (steps done)";
    fault->step = *s;
  }
  return "";
}

}  // namespace

const std::vector<std::string_view>& FaultPhases() {
  static const std::vector<std::string_view> phases = {
      "comm-setup", "data", "forward", "backward", "optimizer", "evaluation", "checkpoint"};
  return phases;
}

std::vector<InjectedFault> ParseFaultInjection(std::string_view value, const std::string& origin) {
  std::vector<InjectedFault> faults;
  if (value.empty()) return faults;
  size_t start = 0;
  for (int index = 1;; ++index) {
    const size_t comma = value.find(',', start);
    const std::string_view item = value.substr(start, comma - start);
    InjectedFault fault;
    const std::string wrong = ParseOne(item, &fault);
    if (!wrong.empty()) {
      throw ConfigError(origin + ": " + kFaultInjectKey + "=" + Quote(value) + ": fault " +
                        std::to_string(index) + " (" + Quote(item) + "): " + wrong +
                        "; the format is " + kFaultInjectFormat);
    }
    faults.push_back(fault);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return faults;
}

double InjectedDelay(const std::vector<InjectedFault>& faults, int rank, std::string_view phase,
                     int64_t steps_done) {
  double seconds = 0;
  for (const InjectedFault& f : faults) {
    if (f.rank == rank && f.phase == phase && (f.step < 0 || f.step == steps_done))
      seconds += f.seconds;
  }
  return seconds;
}

}  // namespace common

#pragma once
// Time as the job's files and progress lines count it: seconds as a double.

#include <chrono>

namespace common {

// Unix time now (for outcome.json, events, the end-of-job estimate).
[[nodiscard]] inline double UnixSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// A steady-clock duration in seconds (step times, timing windows).
[[nodiscard]] inline double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace common

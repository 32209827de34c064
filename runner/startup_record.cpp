#include "runner/startup_record.h"

#include <time.h>

#include <cstdio>

#include "common/seconds.h"

namespace runner {

namespace {

std::string Seconds(double s) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.3f s", s);
  return text;
}

std::string Bytes(size_t n) {
  char text[32];
  if (n < 10 * 1024) {
    std::snprintf(text, sizeof(text), "%zu B", n);
  } else if (n < 10 * 1024 * 1024) {
    std::snprintf(text, sizeof(text), "%.0f KiB", static_cast<double>(n) / 1024);
  } else {
    std::snprintf(text, sizeof(text), "%.0f MiB", static_cast<double>(n) / (1024 * 1024));
  }
  return text;
}

}  // namespace

StepClock StepClock::Now() {
  timespec cpu{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
  return {common::UnixSeconds(), static_cast<double>(cpu.tv_sec) + cpu.tv_nsec * 1e-9};
}

void StartupRecord::Mark(const std::string& name, StepClock now, const std::string& moved) {
  steps_.push_back({name, now.wall - last_.wall, now.cpu - last_.cpu, moved});
  last_ = now;
}

std::string StartupRecord::Line(const std::string& what) const {
  std::string line = what + " " + Seconds(last_.wall - started_.wall) + " (cpu " +
                     Seconds(last_.cpu - started_.cpu) + "):";
  for (size_t i = 0; i < steps_.size(); ++i) {
    const Step& s = steps_[i];
    line += (i ? ", " : " ") + s.name + " " + Seconds(s.seconds) + " (cpu " +
            Seconds(s.cpu_seconds) + (s.moved.empty() ? "" : "; " + s.moved) + ")";
  }
  return line;
}

std::string StartupRecord::Json() const {
  std::vector<std::string> steps;
  for (const Step& s : steps_) {
    common::JsonObject step;
    step.Add("step", s.name).Add("s", s.seconds).Add("cpu_s", s.cpu_seconds);
    if (!s.moved.empty()) step.Add("moved", s.moved);
    steps.push_back(step.str());
  }
  return common::JsonObject()
      .Add("total_s", last_.wall - started_.wall)
      .Add("cpu_s", last_.cpu - started_.cpu)
      .AddRaw("steps", common::JsonArray(steps))
      .str();
}

std::string StartupRecord::Moved(const std::string& collective,
                                 const std::vector<std::string>& records) {
  size_t bytes = 0;
  for (const std::string& r : records) bytes += r.size();
  return collective + " " + std::to_string(records.size()) +
         (records.size() == 1 ? " record, " : " records, ") + Bytes(bytes);
}

}  // namespace runner

#include "runner/startup_record.h"

#include <cstdio>

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

void StartupRecord::Mark(const std::string& name, double now, const std::string& moved) {
  steps_.push_back({name, now - last_, moved});
  last_ = now;
}

std::string StartupRecord::Line() const {
  std::string line = "start-up " + Seconds(last_ - started_at_) + ":";
  for (size_t i = 0; i < steps_.size(); ++i) {
    const Step& s = steps_[i];
    line += (i ? ", " : " ") + s.name + " " + Seconds(s.seconds);
    if (!s.moved.empty()) line += " (" + s.moved + ")";
  }
  return line;
}

std::string StartupRecord::Json() const {
  std::vector<std::string> steps;
  for (const Step& s : steps_) {
    common::JsonObject step;
    step.Add("step", s.name).Add("s", s.seconds);
    if (!s.moved.empty()) step.Add("moved", s.moved);
    steps.push_back(step.str());
  }
  return common::JsonObject()
      .Add("total_s", last_ - started_at_)
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

#include "runner/startup_record.h"

#include <time.h>

#include <cstdio>

#include "common/seconds.h"
#include "runner/store_server.h"

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

StepClock StepClock::Now(const StoreServer* store) {
  timespec cpu{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
  StepClock now{common::UnixSeconds(), static_cast<double>(cpu.tv_sec) + cpu.tv_nsec * 1e-9};
  if (store) {
    const StoreServerStats stats = store->Stats();
    now.store = true;
    now.store_replies = stats.replies;
    now.store_reply_bytes = stats.reply_bytes;
  }
  return now;
}

void StartupRecord::Mark(const std::string& name, StepClock now, const std::string& moved) {
  Step step{name, now.wall - last_.wall, now.cpu - last_.cpu, moved};
  if (now.store) {  // a store that came up in this step counts from 0
    step.store = true;
    step.store_replies = now.store_replies - (last_.store ? last_.store_replies : 0);
    step.store_bytes = now.store_reply_bytes - (last_.store ? last_.store_reply_bytes : 0);
  }
  steps_.push_back(step);
  last_ = now;
}

std::string StartupRecord::Line(const std::string& what) const {
  std::string line = what + " " + Seconds(last_.wall - started_.wall) + " (cpu " +
                     Seconds(last_.cpu - started_.cpu) + "):";
  for (size_t i = 0; i < steps_.size(); ++i) {
    const Step& s = steps_[i];
    line += (i ? ", " : " ") + s.name + " " + Seconds(s.seconds) + " (cpu " +
            Seconds(s.cpu_seconds) + (s.moved.empty() ? "" : "; " + s.moved);
    if (s.store) {
      line += "; store " + std::to_string(s.store_replies) +
              (s.store_replies == 1 ? " reply, " : " replies, ") + Bytes(s.store_bytes);
    }
    line += ")";
  }
  return line;
}

std::string StartupRecord::Json() const {
  std::vector<std::string> steps;
  for (const Step& s : steps_) {
    common::JsonObject step;
    step.Add("step", s.name).Add("s", s.seconds).Add("cpu_s", s.cpu_seconds);
    if (!s.moved.empty()) step.Add("moved", s.moved);
    if (s.store) {
      step.Add("store_replies", static_cast<int64_t>(s.store_replies))
          .Add("store_bytes", static_cast<int64_t>(s.store_bytes));
    }
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

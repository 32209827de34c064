#pragma once
// A rate limit for log lines a remote peer can provoke (the store's refusals and caps): at most
// `burst` lines at once, then one more per `interval`. The lines in between are counted, and the
// next line let through says how many were left out, so a flood of bad connections costs a few
// lines a minute, never the disk. Time is passed in: tests use invented time.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace runner {

class LogThrottle {
 public:
  using Clock = std::chrono::steady_clock;

  LogThrottle(int burst, Clock::duration interval)
      : burst_(burst), interval_(interval), tokens_(burst) {}

  // `line` as it is to be written (with a note of the lines left out before it), or nullopt when
  // it is to be left out.
  [[nodiscard]] std::optional<std::string> Admit(const std::string& line, Clock::time_point now) {
    if (!started_) {
      started_ = true;
      last_refill_ = now;
    }
    if (interval_.count() > 0 && now > last_refill_) {
      const auto earned = (now - last_refill_) / interval_;
      if (earned > 0) {
        tokens_ = earned >= burst_ - tokens_ ? burst_ : tokens_ + static_cast<int>(earned);
        last_refill_ += earned * interval_;
      }
    }
    if (tokens_ <= 0) {
      ++left_out_;
      ++left_out_total_;
      return std::nullopt;
    }
    --tokens_;
    if (left_out_ == 0) return line;
    std::string out = line + " (" + std::to_string(left_out_) + " similar line" +
                      (left_out_ == 1 ? "" : "s") + " left out before this one)";
    left_out_ = 0;
    return out;
  }

  [[nodiscard]] uint64_t left_out_total() const { return left_out_total_; }

 private:
  int burst_;
  Clock::duration interval_;
  int tokens_;
  bool started_ = false;
  Clock::time_point last_refill_{};
  uint64_t left_out_ = 0;
  uint64_t left_out_total_ = 0;
};

}  // namespace runner

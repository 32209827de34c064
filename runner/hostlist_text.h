#pragma once
// Character classes and number reading shared by the hostlist parser (hostlist.cpp) and its
// formatter (hostlist_format.cpp). Internal to runner/; use runner/hostlist.h.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace runner::hostlist_internal {

inline constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }

inline bool IsNameChar(char c) {
  return IsDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '.' ||
         c == '_';
}

// Reads the run of digits at text[*pos] (the caller checked there is one). False on overflow.
inline bool ReadDigits(std::string_view text, size_t* pos, uint64_t* value) {
  uint64_t v = 0;
  bool ok = true;
  for (; *pos < text.size() && IsDigit(text[*pos]); ++*pos) {
    const auto d = static_cast<uint64_t>(text[*pos] - '0');
    if (v > (kU64Max - d) / 10) ok = false;
    v = v * 10 + d;
  }
  *value = v;
  return ok;
}

// Zero-padded to `width`, as Slurm pads a range to the width of its lower bound.
inline std::string FormatNumber(uint64_t value, size_t width) {
  std::string digits = std::to_string(value);
  if (digits.size() < width) digits.insert(0, width - digits.size(), '0');
  return digits;
}

}  // namespace runner::hostlist_internal

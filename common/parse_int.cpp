#include "common/parse_int.h"

#include <charconv>

namespace common {

std::optional<int64_t> ParseInt64(std::string_view text, PlusSign plus) {
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  // from_chars takes '-' but not '+'; after an accepted '+' a second sign is not allowed.
  if (plus == PlusSign::kAccept && begin != end && *begin == '+') {
    ++begin;
    if (begin != end && *begin == '-') return std::nullopt;
  }
  if (begin == end) return std::nullopt;
  int64_t value = 0;
  auto [stop, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || stop != end) return std::nullopt;
  return value;
}

}  // namespace common

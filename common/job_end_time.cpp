#include "common/job_end_time.h"

#include "common/parse_int.h"

namespace common {

std::optional<int64_t> ParseJobEndTime(std::string_view text) {
  std::optional<int64_t> seconds = ParseInt64(text);
  if (!seconds || *seconds < 0) return std::nullopt;
  return seconds;
}

}  // namespace common

#include "runner/rank_list.h"

#include <algorithm>
#include <climits>
#include <optional>

#include "common/errors.h"
#include "common/parse_int.h"

namespace runner {

namespace {

std::optional<int> Rank(std::string_view text) {
  const std::optional<int64_t> value = common::ParseInt64(text);
  if (!value || *value < 0 || *value > INT_MAX) return std::nullopt;
  return static_cast<int>(*value);
}

// A range wider than any job: a typo like 0-1000000000 must not allocate a billion ranks.
constexpr int64_t kMaxRangeSize = 1 << 20;

void AddItem(std::string_view item, int position, std::vector<int>& out,
             const std::string& prefix) {
  auto fail = [&](const std::string& why) {
    throw common::UsageError(prefix + "item " + std::to_string(position) + " '" +
                             std::string(item) + "' " + why +
                             "; expected ranks N or ranges A-B separated by commas, like 0,3-5");
  };
  if (item.empty()) fail("is empty");
  const size_t dash = item.find('-');
  const std::optional<int> first = Rank(item.substr(0, dash));
  if (dash == std::string_view::npos) {
    if (!first) fail("is not a rank (a non-negative integer)");
    out.push_back(*first);
    return;
  }
  const std::optional<int> last = Rank(item.substr(dash + 1));
  if (!first || !last) fail("is not a range of ranks");
  if (*last < *first)
    fail("runs backwards (write it " + std::to_string(*last) + "-" + std::to_string(*first) + ")");
  if (static_cast<int64_t>(*last) - *first >= kMaxRangeSize) fail("is larger than any job");
  for (int r = *first; r <= *last; ++r) out.push_back(r);
}

}  // namespace

std::vector<int> ParseRankList(std::string_view text, const std::string& what) {
  const std::string prefix = what + " '" + std::string(text) + "': ";
  if (text.empty()) {
    throw common::UsageError(prefix +
                             "no ranks given; expected ranks N or ranges A-B separated "
                             "by commas, like 0,3-5");
  }
  std::vector<int> ranks;
  int position = 1;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    AddItem(text.substr(start, comma == std::string_view::npos ? comma : comma - start), position,
            ranks, prefix);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
    ++position;
  }
  std::sort(ranks.begin(), ranks.end());
  ranks.erase(std::unique(ranks.begin(), ranks.end()), ranks.end());
  return ranks;
}

std::string FormatRankList(std::vector<int> ranks) {
  std::sort(ranks.begin(), ranks.end());
  ranks.erase(std::unique(ranks.begin(), ranks.end()), ranks.end());
  std::string text;
  for (size_t i = 0; i < ranks.size();) {
    size_t j = i;
    while (j + 1 < ranks.size() && ranks[j + 1] == ranks[j] + 1) ++j;
    text += (text.empty() ? "" : ",") + std::to_string(ranks[i]);
    if (j > i) text += "-" + std::to_string(ranks[j]);
    i = j + 1;
  }
  return text;
}

}  // namespace runner

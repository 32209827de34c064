#pragma once
// Rank lists as operators type and read them: "0,3-5" is ranks 0, 3, 4 and 5. Parsing is
// strict (no spaces, no empty items, no backwards ranges) and errors name the bad item.

#include <string>
#include <string_view>
#include <vector>

namespace runner {

// The ranks of `text`, sorted and without duplicates. Items are N or A-B (A <= B), separated by
// commas. Throws common::UsageError naming `what` (the flag, "--rank"), the whole text, the bad
// item and the fix.
[[nodiscard]] std::vector<int> ParseRankList(std::string_view text, const std::string& what);

// The shortest list that reads back as `ranks` ("0-3,5"); `ranks` in any order, duplicates
// allowed; "" for none.
[[nodiscard]] std::string FormatRankList(std::vector<int> ranks);

}  // namespace runner

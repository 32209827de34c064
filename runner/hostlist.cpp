#include "runner/hostlist.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <utility>

#include "common/errors.h"
#include "runner/hostlist_text.h"

namespace runner {
namespace {

using hostlist_internal::FormatNumber;
using hostlist_internal::IsDigit;
using hostlist_internal::IsNameChar;
using hostlist_internal::kU64Max;
using hostlist_internal::ReadDigits;

// `index` is 0-based into the parsed text; the column users read is 1-based.
[[noreturn]] void Fail(const std::string& what, size_t index) {
  throw common::ParseError(what + " (column " + std::to_string(index + 1) + ")", index + 1);
}

bool IsSpace(char c) { return std::string_view(" \t\n\r\v\f").find(c) != std::string_view::npos; }

// Control and non-ASCII bytes are shown escaped so the message stays one readable line.
std::string Quote(char c) {
  const auto byte = static_cast<unsigned char>(c);
  if (byte >= 0x20 && byte < 0x7f) return std::string("'") + c + "'";
  char buf[8];
  std::snprintf(buf, sizeof buf, "'\\x%02x'", byte);
  return buf;
}

// At `index` (which may be the end of `text`), `expected` says what would have been fine there.
[[noreturn]] void FailUnexpected(std::string_view text, size_t index, const std::string& expected,
                                 const char* list_kind) {
  if (index == text.size()) Fail("unexpected end of input " + expected, index);
  const std::string what = "unexpected " + Quote(text[index]);
  if (IsSpace(text[index])) Fail(what + ": whitespace is not allowed in " + list_kind, index);
  Fail(what + " " + expected, index);
}

bool DigitAt(std::string_view text, size_t index) {
  return index < text.size() && IsDigit(text[index]);
}

uint64_t SatAdd(uint64_t a, uint64_t b) { return a > kU64Max - b ? kU64Max : a + b; }

uint64_t SatMul(uint64_t a, uint64_t b) { return a != 0 && b > kU64Max / a ? kU64Max : a * b; }

// A hostlist is parsed whole into items first, so that the size limits are checked before a single
// name is built.
struct Range {
  uint64_t lo = 0;
  uint64_t hi = 0;
  size_t width = 0;  // of the lower bound as written
};

// literals.size() == groups.size() + 1; a name is literals[0] groups[0] literals[1] ...
struct Item {
  size_t index = 0;
  std::vector<std::string> literals;
  std::vector<std::vector<Range>> groups;
};

constexpr char kHostlist[] = "a hostlist";

class HostlistParser {
 public:
  explicit HostlistParser(std::string_view text) : text_(text) {}

  std::vector<Item> Parse() {
    if (text_.empty()) Fail("empty hostlist: expected host names like n[1-4],login1", 0);
    std::vector<Item> items{ParseItem()};
    while (pos_ < text_.size()) {
      ++pos_;  // the ',' that ended the item
      items.push_back(ParseItem());
    }
    return items;
  }

 private:
  Item ParseItem() {
    Item item;
    item.index = pos_;
    item.literals.emplace_back();
    if (pos_ == text_.size() || text_[pos_] == ',') Fail("empty item: expected a host name", pos_);
    for (char c; pos_ < text_.size() && (c = text_[pos_]) != ',';) {
      if (c == '[') {
        item.groups.push_back(ParseGroup());
        item.literals.emplace_back();
      } else if (c == ']') {
        Fail("unbalanced ']': no matching '['", pos_);
      } else if (!IsNameChar(c)) {
        FailUnexpected(text_, pos_, "in host name: expected letters, digits, '-', '.', '_' or '['",
                       kHostlist);
      } else {
        item.literals.back() += c;
        ++pos_;
      }
    }
    return item;
  }

  // At '['. The brackets are matched first so that a missing ']' is reported as such rather
  // than as whatever character happens to follow.
  std::vector<Range> ParseGroup() {
    const size_t open = pos_;
    size_t close = open + 1;
    for (; close < text_.size() && text_[close] != ']'; ++close) {
      if (text_[close] == '[') {
        Fail("nested '[': expected ']' to close the '[' at column " + std::to_string(open + 1) +
                 " first",
             close);
      }
    }
    if (close == text_.size()) Fail("unbalanced '[': no matching ']'", open);
    if (++pos_ == close) Fail("empty brackets '[]': expected a number or range like 1-4", pos_);
    std::vector<Range> ranges{ParseRange(close)};
    while (pos_ != close) {
      ++pos_;  // the ',' that ended the range
      ranges.push_back(ParseRange(close));
    }
    pos_ = close + 1;
    return ranges;
  }

  // One "N" or "N-M" inside brackets; stops at the ',' or ']' after it.
  Range ParseRange(size_t close) {
    const size_t start = pos_;
    if (pos_ == close || text_[pos_] == ',') {
      Fail("empty range element: expected a number or range like 1-4", pos_);
    }
    Range range;
    range.lo = range.hi = ReadBound();
    range.width = pos_ - start;
    std::string expected = "in range: expected a digit, '-', ',' or ']'";
    if (text_[pos_] == '-') {
      if (++pos_ == close || text_[pos_] == ',') {
        Fail("incomplete range: expected a number after '-'", pos_);
      }
      range.hi = ReadBound();
      if (range.hi < range.lo) {
        Fail("reversed range " + std::string(text_.substr(start, pos_ - start)) +
                 ": the first number must not exceed the second",
             start);
      }
      expected = "in range: expected ',' or ']'";
    }
    if (pos_ != close && text_[pos_] != ',') FailUnexpected(text_, pos_, expected, kHostlist);
    return range;
  }

  uint64_t ReadBound() {
    const size_t start = pos_;
    if (!IsDigit(text_[pos_])) FailUnexpected(text_, pos_, "in range: expected a digit", kHostlist);
    uint64_t value = 0;
    if (!ReadDigits(text_, &pos_, &value)) {
      Fail("number too large in range: the limit is " + std::to_string(kU64Max), start);
    }
    return value;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

uint64_t CountHosts(const Item& item) {
  uint64_t count = 1;
  for (const auto& group : item.groups) {
    uint64_t in_group = 0;
    for (const Range& r : group) in_group = SatAdd(in_group, SatAdd(r.hi - r.lo, 1));
    count = SatMul(count, in_group);
  }
  return count;
}

size_t LongestName(const Item& item) {
  size_t length = 0;
  for (const auto& literal : item.literals) length += literal.size();
  for (const auto& group : item.groups) {
    size_t widest = 0;
    for (const Range& r : group) widest = std::max({widest, r.width, std::to_string(r.hi).size()});
    length += widest;
  }
  return length;
}

// Appends the item's names to `out`, the last group varying fastest.
void ExpandItem(const Item& item, std::vector<std::string>* out) {
  std::vector<std::vector<std::string>> numbers(item.groups.size());
  for (size_t g = 0; g < item.groups.size(); ++g) {
    for (const Range& r : item.groups[g]) {
      for (uint64_t v = r.lo;; ++v) {
        numbers[g].push_back(FormatNumber(v, r.width));
        if (v == r.hi) break;  // not `v <= r.hi`: hi may be the largest uint64_t
      }
    }
  }
  std::vector<size_t> digit(item.groups.size(), 0);
  while (true) {
    std::string name = item.literals[0];
    for (size_t g = 0; g < numbers.size(); ++g) name += numbers[g][digit[g]] + item.literals[g + 1];
    out->push_back(std::move(name));
    size_t g = numbers.size();
    while (g > 0 && ++digit[g - 1] == numbers[g - 1].size()) digit[--g] = 0;
    if (g == 0) break;
  }
}

// (count, 0-based index) per item. Fails at the first item whose running total passes `limit`,
// naming the grand total; returns that total otherwise.
uint64_t CheckLimit(const std::vector<std::pair<uint64_t, size_t>>& counts, size_t limit,
                    const std::string& what, const char* unit) {
  uint64_t total = 0;
  for (const auto& count : counts) total = SatAdd(total, count.first);
  uint64_t so_far = 0;
  for (const auto& [count, index] : counts) {
    so_far = SatAdd(so_far, count);
    if (so_far <= limit) continue;
    Fail(what + " " + (total == kU64Max ? "at least " : "") + std::to_string(total) + " " + unit +
             (total == 1 ? "" : "s") + ", more than the limit of " + std::to_string(limit),
         index);
  }
  return total;
}

constexpr char kTaskCounts[] = "task counts";

struct TaskEntry {
  int count = 0;
  uint64_t repeat = 1;
};

TaskEntry ParseTaskEntry(std::string_view text, size_t* pos) {
  const auto fail = [&](const std::string& expected) {
    FailUnexpected(text, *pos, expected, kTaskCounts);
  };
  const auto at = [&](char c) { return *pos < text.size() && text[*pos] == c; };
  const size_t start = *pos;
  if (*pos == text.size() || at(',')) Fail("empty item: expected a task count", *pos);
  if (!DigitAt(text, *pos)) fail("in task count: expected a digit");
  uint64_t count = 0;
  if (!ReadDigits(text, pos, &count) || count > static_cast<uint64_t>(INT_MAX)) {
    Fail("task count too large: the limit is " + std::to_string(INT_MAX), start);
  }
  TaskEntry entry{static_cast<int>(count), 1};
  if (*pos == text.size() || at(',')) return entry;
  if (!at('(')) fail("after task count: expected ',' or a repeat like (x2)");
  const std::string close_open = "')' to close the '(' at column " + std::to_string(*pos + 1);
  ++*pos;
  if (!at('x')) fail("after '(': expected 'x' as in (x2)");
  ++*pos;
  if (!DigitAt(text, *pos)) fail("after 'x': expected a repeat count (digits)");
  const size_t repeat_start = *pos;
  if (!ReadDigits(text, pos, &entry.repeat)) {
    Fail("repeat count too large: the limit is " + std::to_string(kU64Max), repeat_start);
  }
  if (entry.repeat == 0) Fail("repeat count 0: it must be at least 1", repeat_start);
  if (!at(')')) fail("in repeat count: expected a digit or " + close_open);
  ++*pos;
  if (*pos != text.size() && !at(',')) fail("after ')': expected ','");
  return entry;
}

}  // namespace

std::vector<std::string> ExpandHostlist(std::string_view expr, size_t max_hosts) {
  const std::vector<Item> items = HostlistParser(expr).Parse();
  std::vector<std::pair<uint64_t, size_t>> counts;
  for (const Item& item : items) counts.emplace_back(CountHosts(item), item.index);
  const uint64_t total = CheckLimit(counts, max_hosts, "hostlist expands to", "host");
  for (const Item& item : items) {
    const size_t longest = LongestName(item);
    if (longest > kMaxHostNameLength) {
      Fail("host name of " + std::to_string(longest) + " characters, more than the limit of " +
               std::to_string(kMaxHostNameLength),
           item.index);
    }
  }
  std::vector<std::string> hosts;
  hosts.reserve(static_cast<size_t>(total));
  for (const Item& item : items) ExpandItem(item, &hosts);
  return hosts;
}

std::vector<int> ParseTasksPerNode(std::string_view expr, size_t max_nodes) {
  if (expr.empty()) Fail("empty task counts: expected counts like 4(x2),2", 0);
  std::vector<TaskEntry> entries;
  std::vector<std::pair<uint64_t, size_t>> counts;
  for (size_t pos = 0;; ++pos) {  // ++pos skips the ',' that ended the entry
    counts.emplace_back(0, pos);
    entries.push_back(ParseTaskEntry(expr, &pos));
    counts.back().first = entries.back().repeat;
    if (pos == expr.size()) break;
  }
  const uint64_t total = CheckLimit(counts, max_nodes, "task counts expand to", "node");
  std::vector<int> nodes;
  nodes.reserve(static_cast<size_t>(total));
  for (const TaskEntry& e : entries) {
    nodes.insert(nodes.end(), static_cast<size_t>(e.repeat), e.count);
  }
  return nodes;
}

}  // namespace runner

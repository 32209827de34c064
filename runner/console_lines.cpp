#include "runner/console_lines.h"

#include <algorithm>
#include <cctype>

#include "runner/rank_list.h"

namespace runner {

namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsIdent(char c) { return IsAlpha(c) || IsDigit(c) || c == '_'; }

bool Digits(std::string_view s, size_t at, size_t count) {
  if (at + count > s.size()) return false;
  for (size_t i = at; i < at + count; ++i) {
    if (!IsDigit(s[i])) return false;
  }
  return true;
}

size_t SkipDigits(std::string_view s, size_t at) {
  while (at < s.size() && IsDigit(s[at])) ++at;
  return at;
}

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// HH:MM:SS[.fff|,fff][Z|+HH:MM|+HHMM] at `at`; the end, or `at` when none.
size_t TimeEnd(std::string_view s, size_t at) {
  if (!Digits(s, at, 2) || at + 8 > s.size() || s[at + 2] != ':' || !Digits(s, at + 3, 2) ||
      s[at + 5] != ':' || !Digits(s, at + 6, 2))
    return at;
  size_t i = at + 8;
  if (i + 1 < s.size() && (s[i] == '.' || s[i] == ',') && IsDigit(s[i + 1]))
    i = SkipDigits(s, i + 1);
  if (i < s.size() && s[i] == 'Z') return i + 1;
  if (i < s.size() && (s[i] == '+' || s[i] == '-') && Digits(s, i + 1, 2)) {
    if (i + 3 < s.size() && s[i + 3] == ':' && Digits(s, i + 4, 2)) return i + 6;
    if (Digits(s, i + 3, 2)) return i + 5;
  }
  return i;
}

// A leading timestamp: [YYYY-MM-DD][T| ]HH:MM:SS..., optionally in brackets.
size_t TimestampLength(std::string_view s) {
  const bool bracket = !s.empty() && s[0] == '[';
  size_t i = bracket ? 1 : 0;
  const bool date = Digits(s, i, 4) && i + 10 <= s.size() && s[i + 4] == '-' &&
                    Digits(s, i + 5, 2) && s[i + 7] == '-' && Digits(s, i + 8, 2);
  if (date) {
    i += 10;
    if (i < s.size() && (s[i] == 'T' || s[i] == ' ')) {
      const size_t end = TimeEnd(s, i + 1);
      if (end > i + 1) i = end;
    }
  } else {
    const size_t end = TimeEnd(s, i);
    if (end == i) return 0;
    i = end;
  }
  if (!bracket) return i;
  return i < s.size() && s[i] == ']' ? i + 1 : 0;
}

// A leading rank tag: "rank 3", "[rank 3]", "(rank=3/8)", "rank3:", "[default3]", "[3]".
size_t RankTagLength(std::string_view s) {
  const char open = s.empty() ? '\0' : s[0];
  const bool bracket = open == '[' || open == '(';
  size_t i = bracket ? 1 : 0;
  if (EqualsNoCase(s.substr(i, 4), "rank")) {
    i += 4;
    if (i < s.size() && (s[i] == ' ' || s[i] == ':' || s[i] == '=' || s[i] == '#')) ++i;
  } else if (bracket && EqualsNoCase(s.substr(i, 7), "default")) {
    i += 7;
  } else if (!bracket) {
    return 0;
  }
  const size_t digits_end = SkipDigits(s, i);
  if (digits_end == i) return 0;
  i = digits_end;
  if (i + 1 < s.size() && s[i] == '/' && IsDigit(s[i + 1])) i = SkipDigits(s, i + 1);
  if (bracket) return i < s.size() && s[i] == (open == '[' ? ']' : ')') ? i + 1 : 0;
  const bool ends = i == s.size() || s[i] == ' ' || s[i] == ':' || s[i] == '|' || s[i] == ']';
  return ends ? i : 0;
}

std::string_view TrimLeft(std::string_view s) {
  while (!s.empty() && (s[0] == ' ' || s[0] == '\t')) s.remove_prefix(1);
  return s;
}

bool IsLevelWord(std::string_view word) {
  for (std::string_view level : {"warn", "warning", "error", "critical", "fatal"}) {
    if (EqualsNoCase(word, level)) return true;
  }
  return false;
}

bool IsUpperLevelWord(std::string_view word) {
  for (std::string_view level : {"WARN", "WARNING", "ERROR", "CRITICAL", "FATAL"}) {
    if (word == level) return true;
  }
  return false;
}

bool EndsWith(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

bool StartsWith(std::string_view s, std::string_view head) {
  return s.substr(0, head.size()) == head;
}

// Rule 1: a level word first, bare or in brackets.
bool LeadingLevel(std::string_view s) {
  size_t i = !s.empty() && s[0] == '[' ? 1 : 0;
  size_t j = i;
  while (j < s.size() && IsAlpha(s[j])) ++j;
  if (!IsLevelWord(s.substr(i, j - i))) return false;
  return j == s.size() || s[j] == ':' || s[j] == ']' || s[j] == ' ';
}

// Rules 2-4 over every identifier of `s`.
bool LevelWordAnywhere(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (!IsIdent(s[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && IsIdent(s[j])) ++j;
    const std::string_view word = s.substr(i, j - i);
    if (IsUpperLevelWord(word)) return true;
    if (i > 0 && s[i - 1] == '[' && j < s.size() && s[j] == ']' && IsLevelWord(word)) return true;
    const bool named =
        EndsWith(word, "Error") || EndsWith(word, "Exception") || EndsWith(word, "Warning");
    if (named && j < s.size() && s[j] == ':' && (j + 1 == s.size() || s[j + 1] != ':')) return true;
    i = j;
  }
  return false;
}

}  // namespace

std::string_view StripLinePrefix(std::string_view line) {
  std::string_view s = TrimLeft(line);
  while (true) {
    size_t n = TimestampLength(s);
    if (n == 0) n = RankTagLength(s);
    if (n == 0) return s;
    s = TrimLeft(s.substr(n));
    if (!s.empty() && (s[0] == ':' || s[0] == '|')) s = TrimLeft(s.substr(1));
  }
}

bool IsWarningOrError(std::string_view line) {
  const std::string_view s = StripLinePrefix(line);
  if (StartsWith(s, "Traceback (most recent call last)") ||
      StartsWith(s, "terminate called after throwing"))
    return true;
  return LeadingLevel(s) || LevelWordAnywhere(s);
}

ConsoleCollapser::ConsoleCollapser(double window_s, int shown_rank, size_t max_groups)
    : window_s_(window_s), shown_rank_(shown_rank), max_groups_(std::max<size_t>(1, max_groups)) {}

void ConsoleCollapser::Add(int rank, std::string_view stamp, std::string_view text, double now) {
  std::string key(StripLinePrefix(text));
  auto found = index_.find(key);
  if (found != index_.end()) {
    Group& group = groups_[found->second];
    group.ranks.push_back(rank);
    ++group.lines;
    return;
  }
  if (groups_.size() >= max_groups_) {
    for (Group& group : groups_) {
      if (!group.due) {
        group.due = true;
        break;
      }
    }
  }
  index_.emplace(key, groups_.size());
  groups_.push_back({std::move(key), std::string(stamp), {rank}, 1, now, false});
}

std::vector<std::string> ConsoleCollapser::Flush(double now, bool all) {
  std::vector<std::string> out;
  std::vector<Group> kept;
  index_.clear();
  for (Group& group : groups_) {
    if (all || group.due || now - group.first >= window_s_) {
      const bool only_shown = std::all_of(group.ranks.begin(), group.ranks.end(),
                                          [this](int r) { return r == shown_rank_; });
      if (!only_shown) out.push_back(Describe(group));
    } else {
      index_.emplace(group.key, kept.size());
      kept.push_back(std::move(group));
    }
  }
  groups_ = std::move(kept);
  return out;
}

std::string ConsoleCollapser::Describe(const Group& group) const {
  std::vector<int> ranks = group.ranks;
  std::sort(ranks.begin(), ranks.end());
  ranks.erase(std::unique(ranks.begin(), ranks.end()), ranks.end());
  std::string tag = (ranks.size() == 1 ? "[rank " : "[ranks ") + FormatRankList(ranks);
  if (group.lines > 1) tag += " x" + std::to_string(group.lines);
  return group.stamp + (group.stamp.empty() ? "" : " ") + tag + "] " + group.key;
}

}  // namespace runner

#include <string>
#include <string_view>
#include <vector>

#include "runner/hostlist.h"
#include "runner/hostlist_text.h"

// Formatting: host names back into a Slurm hostlist (CompressHostlist), for display.
namespace runner {
namespace {

using hostlist_internal::FormatNumber;
using hostlist_internal::IsDigit;
using hostlist_internal::IsNameChar;
using hostlist_internal::kU64Max;
using hostlist_internal::ReadDigits;

// A valid name split around its last run of digits: "n012x" -> "n", "012", "x".
struct SplitName {
  std::string_view prefix;
  std::string_view digits;
  std::string_view suffix;
  uint64_t value = 0;
};

bool Split(std::string_view host, SplitName* out) {
  for (char c : host) {
    if (!IsNameChar(c)) return false;
  }
  size_t end = host.size();
  while (end > 0 && !IsDigit(host[end - 1])) --end;
  size_t begin = end;
  while (begin > 0 && IsDigit(host[begin - 1])) --begin;
  size_t pos = begin;
  if (begin == end || !ReadDigits(host.substr(0, end), &pos, &out->value)) return false;
  out->prefix = host.substr(0, begin);
  out->digits = host.substr(begin, end - begin);
  out->suffix = host.substr(end);
  return true;
}

struct Element {
  std::string_view lo_text;  // as written, so its width is the padding
  uint64_t lo = 0;
  uint64_t hi = 0;
};

}  // namespace

std::string CompressHostlist(const std::vector<std::string>& hosts) {
  std::string out;
  size_t i = 0;
  while (i < hosts.size()) {
    if (i > 0) out += ',';
    SplitName first;
    if (!Split(hosts[i], &first)) {
      out += hosts[i++];
      continue;
    }
    // Only neighbours merge: sorting (as Slurm does) would change what the list expands to.
    std::vector<Element> elements{{first.digits, first.value, first.value}};
    size_t j = i + 1;
    for (SplitName next; j < hosts.size(); ++j) {
      if (!Split(hosts[j], &next) || next.prefix != first.prefix || next.suffix != first.suffix) {
        break;
      }
      Element& last = elements.back();
      if (last.hi != kU64Max && next.value == last.hi + 1 &&
          FormatNumber(next.value, last.lo_text.size()) == next.digits) {
        last.hi = next.value;
      } else {
        elements.push_back({next.digits, next.value, next.value});
      }
    }
    out += first.prefix;
    if (elements.size() == 1 && elements[0].lo == elements[0].hi) {
      out += first.digits;
    } else {
      out += '[';
      for (size_t e = 0; e < elements.size(); ++e) {
        if (e > 0) out += ',';
        out += elements[e].lo_text;
        if (elements[e].hi != elements[e].lo) {
          out += '-';
          out += FormatNumber(elements[e].hi, elements[e].lo_text.size());
        }
      }
      out += ']';
    }
    out += first.suffix;
    i = j;
  }
  return out;
}

}  // namespace runner

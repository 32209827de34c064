#pragma once
// Slurm hostlists ("gpu[001-004,010],cpu-a[1-2]") and task counts ("4(x2),2"), both ways.
//
// Pure functions of their input. Parse failures throw common::ParseError carrying the 1-based
// column of the fault; the message ends in "(column N)" and never repeats the whole input, so the
// caller can prefix the variable name and its raw value.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace runner {

// An expansion larger than this is absurd for one job.
inline constexpr size_t kMaxHosts = 65536;
// Longest host name an expansion may produce (DNS allows 253); keeps padded widths in check.
inline constexpr size_t kMaxHostNameLength = 255;

// Expands a Slurm hostlist into host names, in order, duplicates kept.
//
// Grammar: comma-separated items (commas inside brackets belong to the bracket). An item is a
// name of letters, digits, '-', '.' and '_' with zero or more bracket groups anywhere in it.
// A group holds comma-separated numbers or ranges: "n[1-3,5]" -> n1 n2 n3 n5. A range is padded
// to the width of its lower bound as written ("n[08-10]" -> n08 n09 n10, "n[8-10]" -> n8 n9 n10).
// With several groups the last varies fastest ("r[0-1]b[0-1]" -> r0b0 r0b1 r1b0 r1b1).
// Whitespace is an error. The whole list is checked against `max_hosts` (and every name against
// kMaxHostNameLength) before anything is allocated.
// Throws common::ParseError with the 1-based column of the fault.
[[nodiscard]] std::vector<std::string> ExpandHostlist(std::string_view expr,
                                                      size_t max_hosts = kMaxHosts);

// The reverse, for display: merges runs of consecutive hosts that differ only in their last
// number into one bracket ("n1,n2,n3,n7" -> "n[1-3,7]"), keeping zero padding and the input
// order (duplicates included). Never wrong, may be longer than Slurm's (which sorts).
// ExpandHostlist(CompressHostlist(h)) == h whenever h is non-empty, within kMaxHosts, and every
// name is valid (non-empty, only letters, digits, '-', '.', '_', at most kMaxHostNameLength);
// invalid names are emitted unchanged, for display, and will not parse back.
[[nodiscard]] std::string CompressHostlist(const std::vector<std::string>& hosts);

// Parses SLURM_TASKS_PER_NODE: a comma list of "N" or "N(xM)" ("4(x2),2" -> {4, 4, 2}).
// N >= 0 (Slurm prints 0 for nodes without tasks in some steps) and fits an int; M >= 1.
// Throws common::ParseError with the 1-based column on malformed input or when the expansion
// has more than `max_nodes` entries (checked before allocating).
[[nodiscard]] std::vector<int> ParseTasksPerNode(std::string_view expr,
                                                 size_t max_nodes = kMaxHosts);

}  // namespace runner

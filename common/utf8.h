#pragma once
// Text that workers print is arbitrary bytes. These helpers make it safe to quote: strictly
// valid UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF), controls made visible,
// and long lines cut with a note. JsonQuote (common/json.h) and the agent's log use them.

#include <cstddef>
#include <string>
#include <string_view>

namespace common {

// Length of the valid UTF-8 sequence starting at text[i] (1 to 4), or 0 when the bytes there are
// not one (a stray continuation byte, an overlong form, a surrogate, a code point above
// U+10FFFF, a truncated sequence).
[[nodiscard]] size_t Utf8SequenceLength(std::string_view text, size_t i);

// The code point of the valid sequence of `length` bytes at text[i].
[[nodiscard]] unsigned Utf8CodePoint(std::string_view text, size_t i, size_t length);

// `text` for a terminal or a log line: invalid bytes become U+FFFD, C0 controls (but tab), DEL
// and C1 controls become visible escapes (ESC -> "\x1b", U+009B -> "\u009b"), so a worker's
// output cannot move the cursor, recolour or retitle the console that shows it.
[[nodiscard]] std::string PrintableText(std::string_view text);

// `text` if it has at most `max_bytes` bytes; else its first bytes up to a character boundary
// and a note saying how long the whole line was and where it is kept in full.
[[nodiscard]] std::string CutLine(std::string_view text, size_t max_bytes,
                                  std::string_view kept_in);

}  // namespace common

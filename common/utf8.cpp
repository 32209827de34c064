#include "common/utf8.h"

#include <cstdio>

namespace common {

size_t Utf8SequenceLength(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  // Lead bytes C0, C1 (always overlong) and F5..FF (above U+10FFFF) never start a sequence.
  const size_t n = c >= 0xC2 && c <= 0xDF   ? 2
                   : (c >> 4) == 0xE        ? 3
                   : c >= 0xF0 && c <= 0xF4 ? 4
                                            : 0;
  if (n == 0 || i + n > text.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) >> 6) != 0x2) return 0;
  }
  // The second byte's allowed range excludes overlongs (E0 80..9F, F0 80..8F), surrogates
  // (ED A0..BF) and code points above U+10FFFF (F4 90..BF).
  const unsigned char second = byte(i + 1);
  if (c == 0xE0 && second < 0xA0) return 0;
  if (c == 0xED && second > 0x9F) return 0;
  if (c == 0xF0 && second < 0x90) return 0;
  if (c == 0xF4 && second > 0x8F) return 0;
  return n;
}

unsigned Utf8CodePoint(std::string_view text, size_t i, size_t length) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  if (length == 1) return byte(i);
  unsigned value = byte(i) & (0x7Fu >> (length + 1));
  for (size_t k = 1; k < length; ++k) value = (value << 6) | (byte(i + k) & 0x3Fu);
  return value;
}

std::string PrintableText(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t n = Utf8SequenceLength(text, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
      continue;
    }
    const unsigned cp = Utf8CodePoint(text, i, n);
    if ((cp < 0x20 && cp != '\t') || cp == 0x7F) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\x%02x", cp);
      out += escaped;
    } else if (cp >= 0x80 && cp <= 0x9F) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\u%04x", cp);
      out += escaped;
    } else {
      out.append(text.substr(i, n));
    }
    i += n;
  }
  return out;
}

std::string CutLine(std::string_view text, size_t max_bytes, std::string_view kept_in) {
  if (text.size() <= max_bytes) return std::string(text);
  size_t end = max_bytes;
  // Back off to the start of a character (never more than 3 continuation bytes).
  for (int k = 0; k < 3 && end > 0 && (static_cast<unsigned char>(text[end]) >> 6) == 0x2; ++k)
    --end;
  std::string out(text.substr(0, end));
  out += " [line cut: " + std::to_string(text.size()) + " bytes in all";
  if (!kept_in.empty()) out += ", in full in " + std::string(kept_in);
  return out + "]";
}

}  // namespace common

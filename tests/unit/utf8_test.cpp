// Worker output is arbitrary bytes: what JSON and the agent's log make of it (common/utf8.h,
// common/json.h). Tables of hostile inputs, each with its exact result.

#include "common/utf8.h"

#include <gtest/gtest.h>

#include <string>

#include "common/json.h"

namespace common {
namespace {

struct TextCase {
  const char* name;
  std::string input;
  std::string json;       // JsonQuote(input)
  std::string printable;  // PrintableText(input)
};

const std::string kFffd = "\xEF\xBF\xBD";

const TextCase kCases[] = {
    {"plain ASCII", "loss 0.5", "\"loss 0.5\"", "loss 0.5"},
    {"valid 2, 3 and 4 byte characters", "\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80",
     "\"\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"", "\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"},
    {"a UTF-16 surrogate encoded as UTF-8", "a\xED\xA0\x80z", "\"a\\ufffd\\ufffd\\ufffdz\"",
     "a" + kFffd + kFffd + kFffd + "z"},
    {"an overlong '/'", "\xC0\xAF", "\"\\ufffd\\ufffd\"", kFffd + kFffd},
    {"an overlong 3-byte form", "\xE0\x80\xAF", "\"\\ufffd\\ufffd\\ufffd\"", kFffd + kFffd + kFffd},
    {"an overlong 4-byte form", "\xF0\x80\x80\xAF", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"",
     kFffd + kFffd + kFffd + kFffd},
    {"above U+10FFFF", "\xF4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"",
     kFffd + kFffd + kFffd + kFffd},
    {"lead byte F5", "\xF5\x80\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"",
     kFffd + kFffd + kFffd + kFffd},
    {"a truncated sequence at the end", "ok\xE2\x82", "\"ok\\ufffd\\ufffd\"", "ok" + kFffd + kFffd},
    {"a stray continuation byte", "\x80x", "\"\\ufffdx\"", kFffd + "x"},
    {"bytes FE and FF", "\xFE\xFF", "\"\\ufffd\\ufffd\"", kFffd + kFffd},
    {"a terminal escape (clear screen, red)", "\x1b[2J\x1b[31mred", "\"\\u001b[2J\\u001b[31mred\"",
     "\\x1b[2J\\x1b[31mred"},
    {"C0 controls, DEL and a tab", std::string("a\x07\x08\x00\x7f\tb", 7),
     "\"a\\u0007\\u0008\\u0000\\u007f\\tb\"", "a\\x07\\x08\\x00\\x7f\tb"},
    {"carriage return and newline", "a\rb\nc", "\"a\\rb\\nc\"", "a\\x0db\\x0ac"},
    {"C1 controls (CSI, NEL)",
     "\xC2\x9B"
     "2J\xC2\x85",
     "\"\\u009b2J\\u0085\"", "\\u009b2J\\u0085"},
    {"the last valid characters", "\xED\x9F\xBF\xEE\x80\x80\xF4\x8F\xBF\xBF",
     "\"\xED\x9F\xBF\xEE\x80\x80\xF4\x8F\xBF\xBF\"", "\xED\x9F\xBF\xEE\x80\x80\xF4\x8F\xBF\xBF"},
};

TEST(Utf8Test, JsonAndPrintableTextOfHostileBytes) {
  for (const TextCase& c : kCases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(JsonQuote(c.input), c.json);
    EXPECT_EQ(PrintableText(c.input), c.printable);
  }
}

TEST(Utf8Test, EveryTwoByteInputQuotesToValidUtf8) {
  // Whatever two bytes come in, JsonQuote's output decodes strictly (checked with the same
  // strict decoder, which the table above checks against known answers).
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      const std::string in{static_cast<char>(a), static_cast<char>(b)};
      const std::string out = JsonQuote(in);
      for (size_t i = 0; i < out.size();) {
        const size_t n = Utf8SequenceLength(out, i);
        ASSERT_NE(n, 0u) << "bytes " << a << " " << b << " gave invalid UTF-8";
        ASSERT_FALSE(n == 1 && static_cast<unsigned char>(out[i]) < 0x20) << a << " " << b;
        i += n;
      }
    }
  }
}

struct CutCase {
  const char* name;
  std::string line;
  size_t max_bytes;
  std::string expected;
};

const CutCase kCuts[] = {
    {"short enough", "abc", 3, "abc"},
    {"cut with a note", "abcdef", 3, "abc [line cut: 6 bytes in all, in full in rank-1.log]"},
    {"never inside a character",
     "ab\xE2\x82\xAC"
     "cd",
     4, "ab [line cut: 7 bytes in all, in full in rank-1.log]"},
    {"a megabyte line", std::string(1 << 20, 'x'), 2048,
     std::string(2048, 'x') + " [line cut: 1048576 bytes in all, in full in rank-1.log]"},
};

TEST(Utf8Test, LongLinesAreCutWithANote) {
  for (const CutCase& c : kCuts) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(CutLine(c.line, c.max_bytes, "rank-1.log"), c.expected);
  }
}

}  // namespace
}  // namespace common

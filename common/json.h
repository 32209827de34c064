#pragma once
// A small JSON writer for the job directory's files (manifest.json, outcome.json, events.jsonl).
// Keys keep insertion order, so the files read top-down the way they were written.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace common {

// `text` as a JSON string literal, quotes included, always valid UTF-8 JSON: bytes that are not
// strictly valid UTF-8 (common/utf8.h: overlongs, surrogates, ...) become \ufffd, and every C0
// and C1 control and DEL is escaped (\u001b, \u009b).
[[nodiscard]] std::string JsonQuote(std::string_view text);

class JsonObject {
 public:
  JsonObject& Add(std::string_view key, std::string_view value);
  JsonObject& Add(std::string_view key, const char* value) {
    return Add(key, std::string_view(value));
  }
  JsonObject& Add(std::string_view key, const std::string& value) {
    return Add(key, std::string_view(value));
  }
  JsonObject& Add(std::string_view key, int64_t value);
  JsonObject& Add(std::string_view key, int value) { return Add(key, static_cast<int64_t>(value)); }
  JsonObject& Add(std::string_view key, double value);
  JsonObject& Add(std::string_view key, bool value);
  JsonObject& AddNull(std::string_view key);
  // `json` must already be valid JSON (an object or array built with these helpers).
  JsonObject& AddRaw(std::string_view key, std::string_view json);
  JsonObject& Add(std::string_view key, const std::vector<std::string>& values);
  // Appends every field of `other`, in its order.
  JsonObject& Extend(const JsonObject& other);

  [[nodiscard]] std::string str() const { return "{" + body_ + "}"; }

 private:
  void Key(std::string_view key);
  std::string body_;
};

// A JSON array of already-serialised items.
[[nodiscard]] std::string JsonArray(const std::vector<std::string>& items);

}  // namespace common

#pragma once
// Flat records the agents send each other (rendezvous reports, the job session, notices, each
// agent's view of an attempt): `key=value` lines, one per field, with backslash, newline and
// carriage return escaped in values. The reader is strict: a missing field, a field twice, a
// line without '=' or a number that does not parse is a common::CommunicationError that names
// the record, the field and the raw text — never a std::stoi exception.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace common {

class RecordWriter {
 public:
  RecordWriter& Add(const std::string& key, const std::string& value);
  RecordWriter& Add(const std::string& key, const char* value) {
    return Add(key, std::string(value));
  }
  RecordWriter& Add(const std::string& key, int64_t value);
  RecordWriter& Add(const std::string& key, int value) {
    return Add(key, static_cast<int64_t>(value));
  }
  RecordWriter& Add(const std::string& key, double value);  // round-trips exactly
  RecordWriter& Add(const std::string& key, bool value);
  // A list of strings, none empty or holding ','; joined with ','. Throws common::Error
  // (internal) for an item that would not read back.
  RecordWriter& Add(const std::string& key, const std::vector<std::string>& values);
  [[nodiscard]] const std::string& str() const { return text_; }

 private:
  std::string text_;
};

class RecordReader {
 public:
  // `what` names the record in errors ("rendezvous report from agent 3"). Throws
  // CommunicationError when `text` is not a record.
  RecordReader(const std::string& text, std::string what);

  [[nodiscard]] bool Has(const std::string& key) const { return fields_.count(key) > 0; }
  [[nodiscard]] const std::string& String(const std::string& key) const;
  // Throws CommunicationError when the value is not an integer in [min, max].
  [[nodiscard]] int64_t Int(const std::string& key, int64_t min = INT64_MIN,
                            int64_t max = INT64_MAX) const;
  [[nodiscard]] int Int32(const std::string& key, int min = INT32_MIN, int max = INT32_MAX) const;
  [[nodiscard]] double Double(const std::string& key) const;
  [[nodiscard]] bool Bool(const std::string& key) const;
  [[nodiscard]] std::vector<std::string> List(const std::string& key) const;

  // Throws CommunicationError naming `key`, the raw value and `problem`.
  [[noreturn]] void Fail(const std::string& key, const std::string& problem) const;

 private:
  std::map<std::string, std::string> fields_;
  std::string what_;
  std::string text_;
};

}  // namespace common

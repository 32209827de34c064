#include "common/record.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "common/errors.h"
#include "common/json.h"
#include "common/parse_int.h"

namespace common {

namespace {

std::string Escape(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else {
      out += c;
    }
  }
  return out;
}

// False when `text` holds a lone backslash or an unknown escape.
bool Unescape(const std::string& text, std::string* out) {
  out->clear();
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\') {
      *out += text[i];
      continue;
    }
    if (++i == text.size()) return false;
    switch (text[i]) {
      case '\\':
        *out += '\\';
        break;
      case 'n':
        *out += '\n';
        break;
      case 'r':
        *out += '\r';
        break;
      default:
        return false;
    }
  }
  return true;
}

bool ValidKey(const std::string& key) {
  if (key.empty()) return false;
  for (char c : key) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.')) return false;
  }
  return true;
}

// Quoted and cut, for error messages: a record can be long.
std::string Excerpt(const std::string& text) {
  return JsonQuote(text.size() > 200 ? text.substr(0, 200) + "..." : text);
}

}  // namespace

RecordWriter& RecordWriter::Add(const std::string& key, const std::string& value) {
  if (!ValidKey(key)) {
    throw Error(kExitInternal, "record key " + JsonQuote(key) + " is not [A-Za-z0-9_.]+");
  }
  text_ += key + "=" + Escape(value) + "\n";
  return *this;
}

RecordWriter& RecordWriter::Add(const std::string& key, int64_t value) {
  return Add(key, std::to_string(value));
}

RecordWriter& RecordWriter::Add(const std::string& key, double value) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.17g", value);
  return Add(key, std::string(text));
}

RecordWriter& RecordWriter::Add(const std::string& key, bool value) {
  return Add(key, std::string(value ? "true" : "false"));
}

RecordWriter& RecordWriter::Add(const std::string& key, const std::vector<std::string>& values) {
  std::string joined;
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i].empty() || values[i].find(',') != std::string::npos) {
      throw Error(kExitInternal, "record field '" + key + "': list item " + JsonQuote(values[i]) +
                                     " is empty or holds ',' and would not read back");
    }
    joined += (i ? "," : "") + values[i];
  }
  return Add(key, joined);
}

RecordReader::RecordReader(const std::string& text, std::string what)
    : what_(std::move(what)), text_(text) {
  size_t start = 0;
  int line_number = 0;
  while (start < text.size()) {
    ++line_number;
    size_t end = text.find('\n', start);
    if (end == std::string::npos) {
      throw CommunicationError(what_ + ": the record is truncated (line " +
                               std::to_string(line_number) + " has no end): " + Excerpt(text));
    }
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    const size_t eq = line.find('=');
    const std::string key = eq == std::string::npos ? line : line.substr(0, eq);
    std::string value;
    if (eq == std::string::npos || !ValidKey(key) || !Unescape(line.substr(eq + 1), &value)) {
      throw CommunicationError(what_ + ": line " + std::to_string(line_number) +
                               " is not key=value: " + Excerpt(line) +
                               " (agents of different runner versions?)");
    }
    if (!fields_.emplace(key, value).second) {
      throw CommunicationError(what_ + ": field '" + key + "' appears twice in " + Excerpt(text));
    }
  }
}

void RecordReader::Fail(const std::string& key, const std::string& problem) const {
  const auto it = fields_.find(key);
  throw CommunicationError(what_ + ": field '" + key + "' " +
                           (it == fields_.end() ? std::string("is missing")
                                                : "= " + Excerpt(it->second) + " " + problem) +
                           " (record: " + Excerpt(text_) +
                           "; agents of different runner versions?)");
}

const std::string& RecordReader::String(const std::string& key) const {
  const auto it = fields_.find(key);
  if (it == fields_.end()) Fail(key, "");
  return it->second;
}

int64_t RecordReader::Int(const std::string& key, int64_t min, int64_t max) const {
  const std::string& text = String(key);
  const std::optional<int64_t> parsed = ParseInt64(text);
  if (!parsed) Fail(key, "is not an integer");
  const int64_t value = *parsed;
  if (value < min || value > max) {
    Fail(key, "is out of range [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return value;
}

int RecordReader::Int32(const std::string& key, int min, int max) const {
  return static_cast<int>(Int(key, min, max));
}

double RecordReader::Double(const std::string& key) const {
  const std::string& text = String(key);
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || errno != 0 || !std::isfinite(value)) {
    Fail(key, "is not a finite number");
  }
  return value;
}

bool RecordReader::Bool(const std::string& key) const {
  const std::string& text = String(key);
  if (text != "true" && text != "false") Fail(key, "is not true or false");
  return text == "true";
}

std::vector<std::string> RecordReader::List(const std::string& key) const {
  const std::string& text = String(key);
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    if (comma == start || comma + 1 == text.size()) Fail(key, "has an empty item");
    out.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

}  // namespace common

// JSON text written front to back. The payloads and the outage journal are
// made on collectd's threads, where building a jansson tree and dumping it
// costs several times more than the writing itself. jansson still parses
// (templates, state files) and is the tests' oracle for what this writes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace xmatters {

// Appends s as the inside of a JSON string (no quotes): '"', '\' and the
// control characters escaped. s must be valid UTF-8.
void append_json_escaped(std::string& out, std::string_view s);

class JsonWriter {
 public:
  // reserve: the expected size, so that the text is not copied as it grows.
  explicit JsonWriter(std::size_t reserve = 256) { out_.reserve(reserve); }

  JsonWriter& begin_object() { return open('{'); }
  JsonWriter& end_object() { return close('}'); }
  JsonWriter& begin_array() { return open('['); }
  JsonWriter& end_array() { return close(']'); }
  // The name of the next member; valid UTF-8.
  JsonWriter& key(std::string_view name);
  // Valid UTF-8.
  JsonWriter& string(std::string_view s);
  // The shortest text that reads back as v, always as a real (95.0); null
  // for NaN and the infinities, which JSON cannot carry.
  JsonWriter& number(double v);
  JsonWriter& number(std::int64_t v);
  JsonWriter& number(std::uint64_t v);
  JsonWriter& boolean(bool v);
  JsonWriter& null();

  const std::string& text() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  void separate();
  JsonWriter& open(char bracket);
  JsonWriter& close(char bracket);
  template <typename Integer>
  JsonWriter& integer(Integer v);
  void append_quoted(std::string_view s);
  std::string out_;
  bool need_comma_ = false;
};

}  // namespace xmatters

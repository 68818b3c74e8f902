// JSON text written front to back. The payloads and the outage snapshots are
// made on collectd's threads, where building a jansson tree and dumping it
// costs several times more than the writing itself. jansson still parses
// (templates, state files) and is the tests' oracle for what this writes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

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
  // The same, for a name that needs no escape (a literal of ours): skips the
  // check, which is a good part of what a payload's member names cost.
  JsonWriter& plain_key(std::string_view name);
  // Valid UTF-8.
  JsonWriter& string(std::string_view s);
  // The shortest text that reads back as v, always as a real (95.0); null
  // for NaN and the infinities, which JSON cannot carry.
  JsonWriter& number(double v);
  JsonWriter& number(std::int64_t v);
  JsonWriter& number(std::uint64_t v);
  JsonWriter& boolean(bool v);
  JsonWriter& null();

  std::string_view text() const { return std::string_view(out_.data(), len_); }
  // The text; the writer starts over, empty. No copy: a payload lives only
  // until it is spooled (queued events keep no body), so the spare room it
  // keeps costs nothing, and a copy would, on collectd's thread.
  std::string take() {
    out_.resize(len_);
    len_ = 0;
    need_comma_ = false;
    return std::exchange(out_, std::string());
  }

 private:
  // out_ is kept at least as long as the text, which is its first len_
  // bytes: an append is then a bounds check and a memcpy, without
  // std::string's per-call bookkeeping. Payloads are dozens of appends, on
  // collectd's thread. It grows a step at a time within the reserved room
  // (std::string zero-fills what it grows by: zeroing all of the room at
  // once would write to memory the text never reaches).
  char* room(std::size_t n) {
    if (out_.size() - len_ < n) grow(n);
    char* at = out_.data() + len_;
    len_ += n;
    return at;
  }
  void grow(std::size_t n);
  void put(char c) { *room(1) = c; }
  void put(std::string_view s);
  void separate() {
    if (need_comma_) put(',');
    need_comma_ = true;
  }
  JsonWriter& open(char bracket);
  JsonWriter& close(char bracket);
  template <typename Integer>
  JsonWriter& integer(Integer v);
  void append_quoted(std::string_view s);
  std::string out_;
  std::size_t len_ = 0;
  bool need_comma_ = false;
};

}  // namespace xmatters

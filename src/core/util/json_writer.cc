#include "util/json_writer.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>


namespace xmatters {
namespace {

// The bytes that JSON text cannot hold as they are: the control
// characters, '"' and '\\'.
constexpr std::array<bool, 256> kNeedsEscape = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = true;
  t['"'] = t['\\'] = true;
  return t;
}();

bool needs_escape(char c) { return kNeedsEscape[static_cast<unsigned char>(c)]; }

// The JSON escape of each byte that needs one: the short forms where JSON
// has them, else \u00XX.
struct Escapes {
  std::array<std::array<char, 6>, 0x60> text{};
  std::array<std::uint8_t, 0x60> size{};
};

constexpr Escapes kEscapes = [] {
  Escapes e{};
  constexpr char kHex[] = "0123456789abcdef";
  for (int c = 0; c < 0x20; ++c) {
    e.text[c] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
    e.size[c] = 6;
  }
  auto shorthand = [&e](int c, char letter) {
    e.text[c] = {'\\', letter};
    e.size[c] = 2;
  };
  shorthand('\b', 'b');
  shorthand('\f', 'f');
  shorthand('\n', 'n');
  shorthand('\r', 'r');
  shorthand('\t', 't');
  shorthand('"', '"');
  shorthand('\\', '\\');
  return e;
}();

// c needs an escape, so it is below 0x60.
std::string_view escape_of(char c) {
  const auto u = static_cast<unsigned char>(c);
  return std::string_view(kEscapes.text[u].data(), kEscapes.size[u]);
}

// Calls put(piece) with the pieces of s escaped, in order.
template <typename Put>
void escape(std::string_view s, Put&& put) {
  std::size_t run = 0;  // start of the bytes not yet put
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (!needs_escape(s[i])) continue;
    if (i > run) put(s.substr(run, i - run));
    put(escape_of(s[i]));
    run = i + 1;
  }
  if (run < s.size()) put(s.substr(run));
}

}  // namespace

void append_json_escaped(std::string& out, std::string_view s) {
  escape(s, [&out](std::string_view piece) { out += piece; });
}

void JsonWriter::grow(std::size_t n) {
  // Past the capacity, std::string's resize grows geometrically.
  constexpr std::size_t kStep = 256;
  out_.resize(len_ + std::max(n, kStep));
}

void JsonWriter::put(std::string_view s) {
  if (!s.empty()) std::memcpy(room(s.size()), s.data(), s.size());
}

JsonWriter& JsonWriter::open(char bracket) {
  separate();
  put(bracket);
  need_comma_ = false;
  return *this;
}

JsonWriter& JsonWriter::close(char bracket) {
  put(bracket);
  need_comma_ = true;
  return *this;
}

JsonWriter& JsonWriter::key(std::string_view name) {
  separate();
  append_quoted(name);
  put(':');
  need_comma_ = false;  // the value follows without one
  return *this;
}

JsonWriter& JsonWriter::plain_key(std::string_view name) {
  separate();
  char* at = room(name.size() + 3);
  at[0] = '"';
  std::memcpy(at + 1, name.data(), name.size());
  at[name.size() + 1] = '"';
  at[name.size() + 2] = ':';
  need_comma_ = false;
  return *this;
}

JsonWriter& JsonWriter::string(std::string_view s) {
  separate();
  append_quoted(s);
  return *this;
}

void JsonWriter::append_quoted(std::string_view s) {
  put('"');
  escape(s, [this](std::string_view piece) { put(piece); });
  put('"');
}

JsonWriter& JsonWriter::number(double v) {
  if (!std::isfinite(v)) return null();
  separate();
  std::array<char, 32> buf;
  const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  const std::string_view text(buf.data(), static_cast<std::size_t>(r.ptr - buf.data()));
  put(text);
  // A real stays a real for the reader (jansson tells 95 from 95.0).
  if (text.find_first_of(".e") == std::string_view::npos) put(".0");
  return *this;
}

template <typename Integer>
JsonWriter& JsonWriter::integer(Integer v) {
  separate();
  std::array<char, 24> buf;
  const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  put(std::string_view(buf.data(), static_cast<std::size_t>(r.ptr - buf.data())));
  return *this;
}

JsonWriter& JsonWriter::number(std::int64_t v) { return integer(v); }
JsonWriter& JsonWriter::number(std::uint64_t v) { return integer(v); }

JsonWriter& JsonWriter::boolean(bool v) {
  separate();
  put(v ? "true" : "false");
  return *this;
}

JsonWriter& JsonWriter::null() {
  separate();
  put("null");
  return *this;
}

}  // namespace xmatters

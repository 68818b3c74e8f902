// Small text helpers shared by the units (one copy each): ASCII case,
// RFC 3986 percent-encoding, a file mode as chmod takes it, text made one
// printable line.
#pragma once

#include <sys/types.h>

#include <cstdio>
#include <string>
#include <string_view>

namespace xmatters {

// ASCII letters only, whatever the locale: header names, day names.
inline std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// RFC 3986: everything but the unreserved characters (ALPHA, DIGIT, "-",
// ".", "_", "~") as %XX, upper-case hex, as curl_easy_escape does.
inline void append_percent_encoded(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
}

inline std::string percent_encoded(std::string_view s) {
  std::string out;
  append_percent_encoded(out, s);
  return out;
}

// s as one line without terminal control, for the command's output: a line
// break in a reason or a comment would start another row, an escape
// sequence would reach the operator's terminal. Control characters become
// spaces.
inline std::string one_printable_line(std::string s) {
  for (char& ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) ch = ' ';
  }
  return s;
}

// "0640": a file's permission bits (and set-id, sticky) in octal.
inline std::string mode_octal(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

}  // namespace xmatters

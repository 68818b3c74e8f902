#include "util/utf8.h"


namespace xmatters {
namespace {

// Length of the well-formed sequence starting at in[i] (ok = true), or of its
// maximal subpart (ok = false): the bytes that Unicode's "substitution of
// maximal subparts" replaces with one U+FFFD.
struct Step {
  std::size_t length;
  bool ok;
};

Step utf8_step(std::string_view in, std::size_t i) {
  const auto c = static_cast<unsigned char>(in[i]);
  if (c < 0x80) return {1, true};
  int continuation;
  unsigned char lo = 0x80, hi = 0xBF;  // range of the first continuation byte
  if (c >= 0xC2 && c <= 0xDF) {
    continuation = 1;
  } else if (c == 0xE0) {
    continuation = 2, lo = 0xA0;  // excludes overlong forms
  } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
    continuation = 2;
  } else if (c == 0xED) {
    continuation = 2, hi = 0x9F;  // excludes surrogates
  } else if (c == 0xF0) {
    continuation = 3, lo = 0x90;  // excludes overlong forms
  } else if (c >= 0xF1 && c <= 0xF3) {
    continuation = 3;
  } else if (c == 0xF4) {
    continuation = 3, hi = 0x8F;  // excludes > U+10FFFF
  } else {
    return {1, false};  // continuation byte, C0, C1, F5..FF
  }
  std::size_t j = i + 1;
  for (int k = 0; k < continuation; ++k, ++j) {
    if (j >= in.size()) return {j - i, false};
    const auto d = static_cast<unsigned char>(in[j]);
    if (d < lo || d > hi) return {j - i, false};
    lo = 0x80, hi = 0xBF;
  }
  return {j - i, true};
}

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

}  // namespace


std::string sanitize_utf8(const std::string& bytes) {
  const std::string_view in(bytes);
  std::size_t i = 0;
  while (i < in.size()) {  // most text is valid: copy it once
    const Step s = utf8_step(in, i);
    if (!s.ok) break;
    i += s.length;
  }
  if (i == in.size()) return bytes;
  std::string out(in.substr(0, i));
  out.reserve(bytes.size() + 8);
  while (i < in.size()) {
    const Step s = utf8_step(in, i);
    if (s.ok)
      out.append(in, i, s.length);
    else
      out += kReplacement;
    i += s.length;
  }
  return out;
}

bool valid_utf8(std::string_view in) {
  for (std::size_t i = 0; i < in.size();) {
    const Step s = utf8_step(in, i);
    if (!s.ok) return false;
    i += s.length;
  }
  return true;
}

}  // namespace xmatters

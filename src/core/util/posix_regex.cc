#include "util/posix_regex.h"

#include <regex.h>

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <vector>

namespace xmatters {
namespace {

// glibc compiles a repetition by copying what it repeats ("a+" as "aa*",
// "a{3}" as "aaa"), so repetitions of repetitions ("a++++...", "((a+)+)+")
// take memory exponential in their number: 200 bytes of pattern took 2 GB
// (fuzz_config). The copies are counted before regcomp and a pattern that
// would need more than kMaxCopies is refused.
constexpr double kMaxCopies = 2000;

void refuse_explosive_repetitions(const std::string& p) {
  struct Group {
    double total = 0;  // copies of atoms in the group so far
    double last = 0;   // those of its last atom, which a repetition repeats
  };
  std::vector<Group> groups(1);
  bool after_repetition = false;  // POSIX leaves "a++", "a*{2}" undefined; glibc's matcher slows down on them
  const auto atom = [&](double copies) {
    groups.back().total += copies;
    groups.back().last = copies;
  };
  const auto repeat = [&](double times) {
    Group& g = groups.back();
    g.total += g.last * (times - 1);
    g.last *= times;
  };
  for (std::size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\') {
      ++i;
      atom(1);
    } else if (c == '[') {  // a bracket expression is one atom; "]" first is literal
      std::size_t j = i + 1;
      if (j < p.size() && p[j] == '^') ++j;
      if (j < p.size() && p[j] == ']') ++j;
      while (j < p.size() && p[j] != ']') ++j;
      i = j;
      atom(1);
    } else if (c == '(') {
      groups.emplace_back();
    } else if (c == ')' && groups.size() > 1) {
      const double copies = groups.back().total;
      groups.pop_back();
      atom(copies);
    } else if (c == '|') {
      groups.back().last = 0;
    } else if (c == '+') {
      repeat(2);
    } else if (c == '{') {
      const std::size_t end = p.find('}', i);
      if (end == std::string::npos) {
        atom(1);
        continue;
      }
      const std::string bounds = p.substr(i + 1, end - i - 1);
      const std::size_t comma = bounds.find(',');
      const double low = std::atof(bounds.substr(0, comma).c_str());
      const double high = comma == std::string::npos ? low : comma + 1 < bounds.size() ? std::atof(bounds.c_str() + comma + 1) : low + 1;
      repeat(std::max(1.0, std::max(low, high)));
      i = end;
    } else if (c != '*' && c != '?') {
      atom(1);
    }
    const bool repetition = c == '*' || c == '?' || c == '+' || (c == '{' && p[i] == '}');
    if (repetition && after_repetition)
      throw std::invalid_argument("a repetition directly after a repetition (undefined in POSIX extended regexes)");
    after_repetition = repetition;
    if (groups.back().total > kMaxCopies)
      throw std::invalid_argument("its repetitions of repetitions would compile to more than " +
                                  std::to_string(static_cast<long>(kMaxCopies)) + " copies");
  }
}

}  // namespace

// Owns the compiled pattern; regfree runs exactly once, when the last Regex
// sharing it goes. glibc's regexec locks internally, so one compiled pattern
// may be used from every collectd thread at once.
struct Regex::Compiled {
  regex_t re;

  explicit Compiled(const std::string& pattern) {
    refuse_explosive_repetitions(pattern);
    const int rc = regcomp(&re, pattern.c_str(), REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
      std::string message(regerror(rc, &re, nullptr, 0), '\0');
      regerror(rc, &re, message.data(), message.size());
      message.resize(message.size() - 1);  // regerror counts the terminating NUL
      throw std::invalid_argument(message);
    }
  }
  ~Compiled() { regfree(&re); }
  Compiled(const Compiled&) = delete;
  Compiled& operator=(const Compiled&) = delete;
};

Regex::Regex(const std::string& pattern) : pattern_(pattern), compiled_(std::make_shared<const Compiled>(pattern)) {}

bool Regex::matches(const std::string& text) const {
  return regexec(&compiled_->re, text.c_str(), 0, nullptr, 0) == 0;
}

}  // namespace xmatters

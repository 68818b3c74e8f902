// A POSIX extended regular expression, compiled once and shared: the
// Host / Plugin / Type filters of integrations, maintenance windows and
// silences (collectd-xmatters(5), OPTIONS).
#pragma once

#include <memory>
#include <string>

namespace xmatters {

// A compiled POSIX ERE; matching is thread-safe.
class Regex {
 public:
  // Throws std::invalid_argument with regerror's text, or when the pattern's
  // repetitions of repetitions would compile to too much memory.
  explicit Regex(const std::string& pattern);
  bool matches(const std::string& text) const;
  const std::string& pattern() const { return pattern_; }

 private:
  struct Compiled;
  std::string pattern_;
  std::shared_ptr<const Compiled> compiled_;
};

}  // namespace xmatters

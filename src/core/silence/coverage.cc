#include "silence/coverage.h"

#include <algorithm>
#include <utility>

namespace xmatters {

namespace {

// What the operator typed, on one log line: control characters as \xNN.
std::string one_line(const std::string& s) {
  std::string out;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string matchers_text(const Silence& s) {
  std::string out;
  for (const auto& m : s.matchers) out += (out.empty() ? "" : " ") + m.text();
  return out;
}

Coverage::Coverage(const std::vector<MaintenanceConfig>& windows, Logger& log) : log_(log) {
  for (const auto& w : windows) windows_.push_back(Window{w, w.schedule()});
}

std::optional<std::string> Coverage::covering(std::string_view integration, const OutageKey& key,
                                              TimePoint now) const {
  {
    MutexLock lock(mutex_);
    for (const auto& h : silences_)
      if (h.silence.active(now) && h.silence.matches(integration, key)) return "silence " + h.silence.id;
  }
  for (const auto& w : windows_)
    if (w.config.matches(std::string(integration), key) && w.schedule.covers(now)) return "maintenance " + w.config.name;
  return std::nullopt;
}

std::optional<TimePoint> Coverage::next_change(TimePoint now) const {
  std::optional<TimePoint> next;
  const auto consider = [&](TimePoint t) {
    if (t > now && (!next || t < *next)) next = t;
  };
  {
    MutexLock lock(mutex_);
    for (const auto& h : silences_) {
      consider(h.silence.start);
      consider(h.silence.end);
      consider(h.silence.end + kSilenceKept);  // forgotten
    }
  }
  for (const auto& w : windows_)
    if (const auto t = w.schedule.next_change(now)) consider(*t);
  return next;
}

bool Coverage::tick(TimePoint now) {
  std::vector<std::string> lines;
  bool ended = false;
  {
    MutexLock lock(mutex_);
    for (auto& w : windows_) {
      const bool active = w.schedule.covers(now);
      if (active == w.was_active && ticked_) continue;
      if (active) {
        const auto until = w.schedule.next_change(now);
        lines.push_back("maintenance window \"" + w.config.name + "\" begins" +
                        (until ? ", until " + format_utc_seconds(*until) : std::string()));
      } else if (w.was_active) {
        lines.push_back("maintenance window \"" + w.config.name + "\" ends");
        ended = true;
      }
      w.was_active = active;
    }
    for (auto& h : silences_) {
      const bool active = h.silence.active(now);
      if (active == h.was_active) continue;
      if (active) {
        lines.push_back(one_line("silence " + h.silence.id + " begins, until " + format_utc_seconds(h.silence.end) +
                                 ": " + matchers_text(h.silence) +
                                 (h.silence.integration.empty() ? "" : " (integration " + h.silence.integration + ")") +
                                 ", by " + h.silence.author + ": " + h.silence.comment));
      } else {
        lines.push_back("silence " + h.silence.id + " ends");
        ended = true;
      }
      h.was_active = active;
    }
    silences_.erase(std::remove_if(silences_.begin(), silences_.end(),
                                   [&](const Held& h) { return h.silence.forgotten(now); }),
                    silences_.end());
    ticked_ = true;
  }
  for (const auto& line : lines) log_.info(line);
  return ended;
}

void Coverage::add(Silence s) {
  MutexLock lock(mutex_);
  for (auto& h : silences_)
    if (h.silence.id == s.id) {
      h.silence = std::move(s);
      return;
    }
  silences_.push_back(Held{std::move(s)});
}

bool Coverage::expire(const std::string& id, TimePoint now, Silence* expired) {
  MutexLock lock(mutex_);
  for (auto& h : silences_) {
    if (h.silence.id != id || h.silence.end <= now) continue;
    h.silence.end = now;
    if (h.silence.start > now) h.silence.start = now;  // a pending one never begins
    if (expired) *expired = h.silence;
    return true;
  }
  return false;
}

std::vector<Silence> Coverage::silences(TimePoint now, bool expired) const {
  MutexLock lock(mutex_);
  std::vector<Silence> out;
  for (const auto& h : silences_)
    if (expired ? !h.silence.forgotten(now) : h.silence.end > now) out.push_back(h.silence);
  std::sort(out.begin(), out.end(), [](const Silence& a, const Silence& b) { return a.start < b.start; });
  return out;
}

}  // namespace xmatters

#include "delivery/dead_letter.h"

#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <ctime>
#include <map>
#include <system_error>

#include "util/redact.h"
#include "util/resources.h"
#include "util/time_format.h"

namespace xmatters {

namespace {

// A JSON string from any bytes: invalid UTF-8 must not make jansson refuse
// the whole line.
json_t* json_text(const std::string& s) {
  if (json_t* j = json_stringn(s.data(), s.size())) return j;
  std::string ascii = s;
  for (char& c : ascii)
    if (static_cast<unsigned char>(c) > 0x7e) c = '?';
  return json_stringn(ascii.data(), ascii.size());
}

// A body as the line keeps it: parsed when it is JSON, so that the file
// reads as JSON all through, else as a string.
json_t* json_body(const std::string& body) {
  json_t* parsed = json_loadb(body.data(), body.size(), 0, nullptr);
  return parsed != nullptr ? parsed : json_text(body);
}

std::string text_member(const json_t* o, const char* key) {
  const json_t* v = json_object_get(o, key);
  return json_is_string(v) ? std::string(json_string_value(v), json_string_length(v)) : std::string();
}

std::string body_text(const json_t* body) {
  if (json_is_string(body)) return std::string(json_string_value(body), json_string_length(body));
  if (body == nullptr) return {};
  DumpedJson text(json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY));
  return text ? std::string(text.get()) : std::string();
}

// "2026-11-28T11:47:45Z", with or without a fraction, as format_rfc3339
// writes it; nullopt otherwise.
std::optional<TimePoint> parse_rfc3339(const std::string& s) {
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &consumed) != 6)
    return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  std::size_t i = static_cast<std::size_t>(consumed);
  long long micros = 0;
  if (i < s.size() && s[i] == '.') {
    long long scale = 100000;
    for (++i; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i, scale /= 10) micros += (s[i] - '0') * scale;
  }
  if (i + 1 != s.size() || s[i] != 'Z') return std::nullopt;
  const time_t t = timegm(&tm);
  return Clock::from_time_t(t) + std::chrono::microseconds(micros);
}

std::string outage_key(const std::string& integration, const std::string& outage_id) {
  return integration + "\n" + outage_id;
}

// The event of a letter (or of a mark's clear): its members at top level of o.
std::optional<Event> event_of(const json_t* o, const std::string& integration, const std::string& outage_id) {
  Event e;
  e.event_id = text_member(o, "event_id");
  e.integration = integration;
  e.outage_id = outage_id;
  const std::string type = text_member(o, "event_type");
  if (type == "outage")
    e.type = EventType::Outage;
  else if (type == "clear")
    e.type = EventType::Clear;
  else
    return std::nullopt;
  if (e.event_id.empty() || e.integration.empty() || e.outage_id.empty()) return std::nullopt;
  e.created = parse_rfc3339(text_member(o, "created")).value_or(TimePoint{});
  e.body = body_text(json_object_get(o, "body"));
  if (e.body.empty()) return std::nullopt;
  return e;
}

// Calls f(line without its newline, whether it had one) with each line of
// the file at fd, from its start. False on a read error.
template <typename F>
bool for_each_line(int fd, F&& f) {
  std::string pending;
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) break;
    pending.append(buf, static_cast<std::size_t>(n));
    std::size_t start = 0;
    for (std::size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1)
      f(std::string_view(pending).substr(start, nl - start), true);
    pending.erase(0, start);
  }
  if (!pending.empty()) f(std::string_view(pending), false);  // a torn last line
  return true;
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

UniqueFd open_for_reading(const std::string& path) {
  return UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
}

}  // namespace

DeadLetters read_dead_letters(const std::string& path) {
  DeadLetters out;
  UniqueFd fd = open_for_reading(path);
  if (fd.get() < 0) {
    if (errno == ENOENT) return out;
    throw std::system_error(errno, std::generic_category(), "cannot read " + path);
  }
  // Outage events' letters not marked yet, by outage.
  std::map<std::string, std::vector<std::size_t>> unmarked;
  const bool read = for_each_line(fd.get(), [&](std::string_view line, bool whole) {
    if (line.empty()) return;
    Json j(json_loadb(line.data(), line.size(), 0, nullptr));
    const std::string integration = j ? text_member(j.get(), "integration") : "";
    const std::string outage_id = j ? text_member(j.get(), "outage_id") : "";
    if (!whole || !json_is_object(j.get()) || integration.empty() || outage_id.empty()) {
      ++out.damaged;
      return;
    }
    if (const json_t* clear = json_object_get(j.get(), "cleared_by")) {
      std::optional<Event> e = event_of(clear, integration, outage_id);
      if (!e) {
        ++out.damaged;
        return;
      }
      auto found = unmarked.find(outage_key(integration, outage_id));
      if (found == unmarked.end()) return;
      for (std::size_t i : found->second) out.letters[i].cleared_by = *e;
      unmarked.erase(found);
      return;
    }
    std::optional<Event> e = event_of(j.get(), integration, outage_id);
    if (!e) {
      ++out.damaged;
      return;
    }
    DeadLetter d;
    d.event = std::move(*e);
    d.time = parse_rfc3339(text_member(j.get(), "time")).value_or(TimePoint{});
    d.attempts = static_cast<int>(json_integer_value(json_object_get(j.get(), "attempts")));
    d.status = static_cast<long>(json_integer_value(json_object_get(j.get(), "status")));
    d.reason = text_member(j.get(), "reason");
    d.url = text_member(j.get(), "url");
    d.reply = text_member(j.get(), "reply");
    if (d.event.type == EventType::Outage) unmarked[outage_key(integration, outage_id)].push_back(out.letters.size());
    out.letters.push_back(std::move(d));
  });
  if (!read) throw std::system_error(errno, std::generic_category(), "cannot read " + path);
  return out;
}

ResendPlan plan_resend(const std::vector<DeadLetter>& chosen, bool include_cleared) {
  ResendPlan plan;
  std::vector<Event> clears;  // each cleared outage's clear, once, after its letters
  std::set<std::string> clears_taken;
  for (const DeadLetter& d : chosen) {
    if (plan.letters.count(d.event.event_id) > 0) continue;  // a letter written twice goes once
    if (d.event.type == EventType::Outage && d.cleared_by) {
      if (!include_cleared) {
        plan.skipped.push_back(d);
        continue;
      }
      if (clears_taken.insert(d.cleared_by->event_id).second) clears.push_back(*d.cleared_by);
    }
    plan.events.push_back(d.event);
    plan.letters.insert(d.event.event_id);
  }
  for (Event& clear : clears) plan.events.push_back(std::move(clear));
  return plan;
}

std::set<std::string> skipped_resends(const std::vector<Event>& recovered, const DeadLetters& file) {
  std::map<std::string, const DeadLetter*> letters;  // outage events' letters, by event_id
  for (const DeadLetter& l : file.letters)
    if (l.event.type == EventType::Outage) letters.emplace(l.event.event_id, &l);
  std::set<std::string> queued;
  for (const Event& e : recovered) queued.insert(e.event_id);
  std::set<std::string> clearing;  // "integration\noutage_id" of the clears met so far
  std::set<std::string> out;
  for (const Event& e : recovered) {
    std::string outage = e.integration + '\n' + e.outage_id;
    if (e.type == EventType::Clear) {
      clearing.insert(std::move(outage));
      continue;
    }
    const auto found = letters.find(e.event_id);
    if (found == letters.end()) continue;
    const std::optional<Event>& cleared_by = found->second->cleared_by;
    if ((cleared_by && queued.count(cleared_by->event_id) == 0) || clearing.count(outage) > 0) out.insert(e.event_id);
  }
  return out;
}

std::set<std::string> DeadLetterFile::load() {
  std::set<std::string> ids;
  DeadLetters read;
  try {
    read = read_dead_letters(path_);
  } catch (const std::system_error&) {
    return ids;
  }
  MutexLock lock(mutex_);
  for (const DeadLetter& d : read.letters) {
    ids.insert(d.event.event_id);
    if (d.event.type == EventType::Outage && !d.cleared_by)
      waiting_clear_.insert(outage_key(d.event.integration, d.event.outage_id));
  }
  return ids;
}

DeadLetterFile::Written DeadLetterFile::write(const DeadLetterEntry& d) {
  const Event& event = d.event;
  Json line(json_object());
  json_object_set_new(line.get(), "time", json_text(format_rfc3339(Clock::now())));
  json_object_set_new(line.get(), "integration", json_text(event.integration));
  json_object_set_new(line.get(), "event_id", json_text(event.event_id));
  json_object_set_new(line.get(), "outage_id", json_text(event.outage_id));
  json_object_set_new(line.get(), "event_type", json_text(event_type_name(event.type)));
  json_object_set_new(line.get(), "created", json_text(format_rfc3339(event.created)));
  json_object_set_new(line.get(), "attempts", json_integer(d.attempts));
  json_object_set_new(line.get(), "status", json_integer(d.status));
  json_object_set_new(line.get(), "reason", json_text(d.reason));
  json_object_set_new(line.get(), "url", d.url.empty() ? json_null() : json_text(redact_url(d.url)));
  json_object_set_new(line.get(), "reply", json_text(d.reply));
  json_object_set_new(line.get(), "body", json_body(d.body));
  DumpedJson text(json_dumps(line.get(), JSON_COMPACT | JSON_PRESERVE_ORDER));
  if (!text) return {};
  MutexLock lock(mutex_);
  // Synced: the event leaves the spool after this, and the spool's next
  // sync makes that durable; a letter lost to a power loss would leave no
  // record of a page xMatters refused.
  Written w = append_locked(std::string(text.get()) + "\n", true);
  if (w.ok && event.type == EventType::Outage) waiting_clear_.insert(outage_key(event.integration, event.outage_id));
  return w;
}

bool DeadLetterFile::mark_cleared(const Event& clear, const std::string& body) {
  MutexLock lock(mutex_);
  const auto found = waiting_clear_.find(outage_key(clear.integration, clear.outage_id));
  if (found == waiting_clear_.end()) return true;
  Json line(json_object());
  json_object_set_new(line.get(), "time", json_text(format_rfc3339(Clock::now())));
  json_object_set_new(line.get(), "integration", json_text(clear.integration));
  json_object_set_new(line.get(), "outage_id", json_text(clear.outage_id));
  json_t* by = json_object();
  json_object_set_new(by, "event_id", json_text(clear.event_id));
  json_object_set_new(by, "event_type", json_text(event_type_name(clear.type)));
  json_object_set_new(by, "created", json_text(format_rfc3339(clear.created)));
  json_object_set_new(by, "body", json_body(body));
  json_object_set_new(line.get(), "cleared_by", by);
  DumpedJson text(json_dumps(line.get(), JSON_COMPACT | JSON_PRESERVE_ORDER));
  // Synced: the clear leaves the spool after this, and the spool's next
  // sync makes that durable (doc/storage.md, Ordering rule).
  if (!text || !append_locked(std::string(text.get()) + "\n", true).ok) return false;
  if (cleared_.insert(*found).second) {
    cleared_order_.push_back(*found);
    if (cleared_order_.size() > kRecentClears) {
      cleared_.erase(cleared_order_.front());
      cleared_order_.pop_front();
    }
  }
  waiting_clear_.erase(found);
  return true;
}

bool DeadLetterFile::marked_cleared(const Event& e) const {
  return cleared_.count(outage_key(e.integration, e.outage_id)) > 0;
}

DeadLetterFile::Written DeadLetterFile::append_locked(const std::string& data, bool durable) {
  Written w;
  // O_NOFOLLOW, as every file of the spool: a symbolic link planted here
  // would have the plugin (often root) append to any file. Opened for each
  // line, so that a rotation (rename or truncation) is simply followed.
  UniqueFd fd(::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (fd.get() < 0) return w;
  struct stat st {};
  if (::fstat(fd.get(), &st) == 0 && static_cast<std::uint64_t>(st.st_size) + data.size() > limit_) {
    // Down to three quarters, so that the file is not copied for every
    // letter once full. A line longer than that is kept alone.
    const std::uint64_t keep = limit_ / 4 * 3 > data.size() ? limit_ / 4 * 3 - data.size() : 0;
    const std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
    if (rewrite_locked(size > keep ? size - keep : 0, nullptr, &w.dropped)) {
      fd = UniqueFd(::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600));
      if (fd.get() < 0) return w;
    }
  }
  // One write, so that a crash leaves at worst a torn last line.
  w.ok = write_all(fd.get(), data) && (!durable || ::fdatasync(fd.get()) == 0);
  return w;
}

bool DeadLetterFile::rewrite_locked(std::uint64_t from, const std::set<std::string>* drop,
                                    std::size_t* lines_skipped) {
  UniqueFd in = open_for_reading(path_);
  if (in.get() < 0) return errno == ENOENT;  // rotated away: nothing to keep or drop
  const std::string tmp = path_ + ".tmp";
  ::unlink(tmp.c_str());  // one left by a crash
  UniqueFd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (out.get() < 0) return false;
  std::uint64_t offset = 0;
  bool ok = true;
  std::string kept;
  const bool read = for_each_line(in.get(), [&](std::string_view line, bool whole) {
    const std::uint64_t start = offset;
    offset += line.size() + (whole ? 1 : 0);
    bool keep = start >= from && whole;
    if (keep && drop != nullptr) {
      Json j(json_loadb(line.data(), line.size(), 0, nullptr));
      keep = !(j && json_object_get(j.get(), "cleared_by") == nullptr &&
               drop->count(text_member(j.get(), "event_id")) > 0);
    }
    if (!keep) {
      if (lines_skipped != nullptr && !line.empty()) ++*lines_skipped;
      return;
    }
    kept.append(line.data(), line.size()).push_back('\n');
    if (kept.size() >= (1u << 16)) {
      ok = ok && write_all(out.get(), kept);
      kept.clear();
    }
  });
  ok = read && ok && write_all(out.get(), kept) && ::fsync(out.get()) == 0 && out.close() == 0 &&
       ::rename(tmp.c_str(), path_.c_str()) == 0;
  if (!ok) {
    ::unlink(tmp.c_str());
    if (lines_skipped != nullptr) *lines_skipped = 0;
    return false;
  }
  const std::size_t slash = path_.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path_.substr(0, slash == 0 ? 1 : slash);
  UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d.get() >= 0) ::fsync(d.get());
  return true;
}

bool DeadLetterFile::remove(const std::set<std::string>& event_ids) {
  if (event_ids.empty()) return true;
  MutexLock lock(mutex_);
  return rewrite_locked(0, &event_ids, nullptr);
}

bool DeadLetterFile::remove(const MarksHeld&, const std::set<std::string>& event_ids) {
  return event_ids.empty() || rewrite_locked(0, &event_ids, nullptr);
}

}  // namespace xmatters

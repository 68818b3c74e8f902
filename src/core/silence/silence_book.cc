#include "silence/silence_book.h"

#include <algorithm>
#include <map>
#include <utility>

#include "store/spool_format.h"

namespace xmatters {

std::vector<Silence> silences_of(const std::vector<std::string>& table, TimePoint now) {
  std::map<std::string, Silence> by_id;
  for (const std::string& bytes : table) {
    // An outage change may be two records; a SILENCE is always one.
    spool_format::Record rec{};
    if (spool_format::parse_record(bytes, 0, &rec) == 0 || rec.type != spool_format::RecordType::Silence) continue;
    Silence s;
    if (decode_silence(bytes, &s)) by_id[s.id] = std::move(s);
  }
  std::vector<Silence> out;
  for (auto& [id, s] : by_id)
    if (!s.forgotten(now)) out.push_back(std::move(s));
  std::sort(out.begin(), out.end(), [](const Silence& a, const Silence& b) { return a.start < b.start; });
  return out;
}

SilenceBook::SilenceBook(Coverage& coverage, std::function<void(const std::string&)> write_durably,
                         std::function<void()> changed)
    : coverage_(coverage), write_durably_(std::move(write_durably)), changed_(std::move(changed)) {}

std::size_t SilenceBook::recover(const std::vector<std::string>& table, TimePoint now) {
  std::vector<Silence> found = silences_of(table, now);
  MutexLock lock(mutex_);
  for (Silence& s : found) coverage_.add(std::move(s));
  return found.size();
}

void SilenceBook::add(const Silence& s) {
  {
    MutexLock lock(mutex_);
    write_durably_(encode_silence(s));
    coverage_.add(s);
  }
  changed_();
}

std::optional<Silence> SilenceBook::expire(const std::string& id, TimePoint now) {
  std::optional<Silence> ended;
  {
    MutexLock lock(mutex_);
    for (const Silence& s : coverage_.silences(now, false))
      if (s.id == id) ended = s;
    if (!ended) return std::nullopt;
    ended->end = now;
    ended->start = std::min(ended->start, now);
    write_durably_(encode_silence(*ended));
    coverage_.add(*ended);  // replaces it; its end is logged by the watch
  }
  changed_();
  return ended;
}

void SilenceBook::snapshot(FunctionRef<void(std::string_view)> write, TimePoint now) const {
  MutexLock lock(mutex_);
  for (const Silence& s : coverage_.silences(now, true)) write(encode_silence(s));
}

}  // namespace xmatters

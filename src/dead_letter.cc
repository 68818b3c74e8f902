#include "dead_letter.h"

#include <fcntl.h>
#include <jansson.h>
#include <unistd.h>

#include <cerrno>

#include "payload.h"
#include "redact.h"
#include "resources.h"

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

}  // namespace

bool DeadLetterFile::write(const DeadLetterEntry& d) {
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
  json_t* parsed = json_loadb(d.body.data(), d.body.size(), 0, nullptr);
  json_object_set_new(line.get(), "body", parsed != nullptr ? parsed : json_text(d.body));
  DumpedJson text(json_dumps(line.get(), JSON_COMPACT | JSON_PRESERVE_ORDER));
  if (!text) return false;
  const std::string data = std::string(text.get()) + "\n";

  std::lock_guard<std::mutex> lock(mutex_);
  // O_NOFOLLOW, as every file of the spool: a symbolic link planted here
  // would have the plugin (often root) append to any file.
  UniqueFd fd(::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (fd.get() < 0) return false;
  // One write, so that a crash leaves at worst a torn last line.
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace xmatters

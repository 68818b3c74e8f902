// One HTTP(S) connection to an integration: a libcurl easy handle configured
// from the <Integration> block, kept alive between requests. Not
// thread-safe: each delivery thread owns its own client.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace xmatters {

struct HttpResult {
  long status = 0;             // the HTTP status; 0 when no reply arrived
  std::string error;           // why no reply arrived (curl's text, secrets removed)
  bool timed_out = false;      // no reply within Timeout
  bool cancelled = false;      // aborted through the cancel flag
  std::string retry_after;     // the Retry-After header as sent, "" when absent
  std::chrono::system_clock::time_point received{};  // when the reply came (an HTTP date counts from it)
  std::string reply_start;     // the reply body's first 200 bytes, printable ASCII, secrets removed
  std::string request_id;      // xMatters' requestId from a JSON reply, "" when absent
};

class HttpClient {
 public:
  // cancel, when given, aborts a request in progress as soon as it becomes
  // true (within about a second). Throws std::runtime_error when libcurl
  // cannot make a handle. integration must outlive the client.
  explicit HttpClient(const IntegrationConfig& integration, const std::atomic<bool>* cancel = nullptr);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // POSTs body (JSON) to url with the Idempotency-Key idempotency_key.
  // Never throws but std::bad_alloc.
  HttpResult post(const std::string& url, const std::string& body, const std::string& idempotency_key);

  // text with every secret of the integration replaced by "***" (Scrubber).
  std::string scrub(std::string_view text) const;

 private:
  struct Transfer;
  std::unique_ptr<Transfer> transfer_;
};

}  // namespace xmatters

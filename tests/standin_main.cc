// xmatters-standin: the tests' xMatters stand-in as a program, for the demo
// and for manual tests. Prints `listening on http(s)://127.0.0.1:PORT` first,
// then (with --pretty) each request as it arrives; runs until SIGINT/SIGTERM.

#include <jansson.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>

#include "util/resources.h"
#include "standin.h"

namespace {

using xmatters::DumpedJson;
using xmatters::Json;

void usage(std::FILE* to) {
  std::fprintf(to,
               "usage: xmatters-standin [--port N] [--api-key KEY] [--user U --password P]\n"
               "                        [--tls-cert PEM --tls-key PEM] [--pretty] [--log FILE]\n"
               "                        [--fail-first N [--fail-status STATUS]]\n");
}

std::string event_type_of(const json_t* body) {
  const json_t* t = body != nullptr ? json_object_get(body, "event_type") : nullptr;
  return json_is_string(t) ? json_string_value(t) : "";
}

std::string status_text(int status) { return status == 0 ? "dropped" : std::to_string(status); }

void print_pretty(const xmtest::RecordedRequest& r) {
  Json body(json_loadb(r.body.data(), r.body.size(), 0, nullptr));
  const std::string type = event_type_of(body.get());
  std::string line = "--- " + r.method + " " + r.path + " -> " + status_text(r.status);
  if (!type.empty()) line += " (" + type + " event)";
  std::printf("%s\n", line.c_str());
  if (body) {
    DumpedJson text(json_dumps(body.get(), JSON_INDENT(2) | JSON_PRESERVE_ORDER));
    std::printf("%s\n", text ? text.get() : "");
  } else if (!r.body.empty()) {
    std::printf("%s\n", r.body.c_str());
  }
}

// One JSON line per request. The apiKey and Authorization are left out: the
// log is for looking at payloads, not credentials.
std::string log_line(const xmtest::RecordedRequest& r) {
  Json line(json_object());
  json_object_set_new(line.get(), "function_id", json_string(r.function_id.c_str()));
  json_object_set_new(line.get(), "method", json_string(r.method.c_str()));
  json_object_set_new(line.get(), "status", json_integer(r.status));
  json_t* headers = json_object();
  for (const auto& [name, value] : r.headers)
    if (name != "authorization") json_object_set_new(headers, name.c_str(), json_string(value.c_str()));
  json_object_set_new(line.get(), "headers", headers);
  Json body(json_loadb(r.body.data(), r.body.size(), 0, nullptr));
  json_object_set_new(line.get(), "body", body ? json_incref(body.get()) : json_stringn(r.body.data(), r.body.size()));
  DumpedJson text(json_dumps(line.get(), JSON_COMPACT | JSON_PRESERVE_ORDER));
  return text ? text.get() : "{}";
}

}  // namespace

int main(int argc, char** argv) {
  xmtest::StandinOptions options;
  bool pretty = false;
  std::string log_path;
  unsigned long fail_first = 0;
  int fail_status = 503;  // what the first --fail-first requests are answered
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "xmatters-standin: %s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    try {
      if (arg == "--port") options.port = static_cast<std::uint16_t>(std::stoul(value()));
      else if (arg == "--api-key") options.api_key = value();
      else if (arg == "--user") options.user = value();
      else if (arg == "--password") options.password = value();
      else if (arg == "--tls-cert") options.tls_cert_file = value();
      else if (arg == "--tls-key") options.tls_key_file = value();
      else if (arg == "--pretty") pretty = true;
      else if (arg == "--log") log_path = value();
      else if (arg == "--fail-first") fail_first = std::stoul(value());
      else if (arg == "--fail-status") fail_status = std::stoi(value());
      else if (arg == "--help" || arg == "-h") { usage(stdout); return 0; }
      else { usage(stderr); return 2; }
    } catch (const std::logic_error&) {
      std::fprintf(stderr, "xmatters-standin: bad value for %s\n", arg.c_str());
      return 2;
    }
  }
  if (options.tls_cert_file.has_value() != options.tls_key_file.has_value()) {
    std::fprintf(stderr, "xmatters-standin: --tls-cert and --tls-key go together\n");
    return 2;
  }

  // Blocked before the server's threads start, so that they inherit the mask
  // and only sigwait below sees the signals.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::ofstream log;
  if (!log_path.empty()) {
    log.open(log_path, std::ios::app);
    if (!log) {
      std::fprintf(stderr, "xmatters-standin: cannot open %s\n", log_path.c_str());
      return 1;
    }
  }

  try {
    xmtest::Standin standin(options);
    if (fail_first > 0) {
      xmtest::Standin::Reply failing;
      failing.status = fail_status;
      standin.script(std::vector<xmtest::Standin::Reply>(fail_first, failing));
    }
    std::mutex output;  // requests arrive on several connection threads
    standin.set_observer([&](const xmtest::RecordedRequest& r) {
      std::lock_guard<std::mutex> lock(output);
      if (pretty) print_pretty(r);
      std::fflush(stdout);
      if (log.is_open()) log << log_line(r) << std::endl;
    });
    std::printf("listening on %s://127.0.0.1:%u\n", options.tls_cert_file ? "https" : "http",
                static_cast<unsigned>(standin.port()));
    std::fflush(stdout);

    int sig = 0;
    sigwait(&stop_signals, &sig);
    standin.set_observer(nullptr);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "xmatters-standin: %s\n", e.what());
    return 1;
  }
  return 0;
}

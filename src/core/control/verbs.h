// The requests the running plugin answers over the control channel
// (collectd-xmatters(1), THE CHANNEL), by verb. Each unit that serves a verb
// adds its handler: the glue adds status, outages, queue, resend and test.
// A verb that changes state answers only once the change is durable.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <utility>

#include "control/channel.h"

namespace xmatters::control {

class Verbs {
 public:
  // args: the request's arguments, a JSON object.
  using Handler = std::function<Answer(const json_t* args)>;

  void add(std::string verb, Handler handler) { handlers_[std::move(verb)] = std::move(handler); }

  Answer operator()(const std::string& verb, const json_t* args) const {
    const auto it = handlers_.find(verb);
    if (it == handlers_.end()) return Answer::error("the running plugin does not know the request \"" + verb + "\"");
    return it->second(args);
  }

 private:
  std::map<std::string, Handler> handlers_;
};

}  // namespace xmatters::control

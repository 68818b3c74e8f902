// The plugin's own threads run in the background of collectd's.
#pragma once

#include <pthread.h>
#include <sched.h>

#include <string>

namespace xmatters {

// The plugin's threads are woken by collectd's, which must not wait for
// them: as SCHED_BATCH threads they do not preempt the thread that woke them
// (a woken thread that did would run its HTTP request inside collectd's
// notification callback, so to speak, on a machine with few cores). Named
// for top -H and gdb ("xm-<integration>", "xm-sync"), cut to the kernel's
// 15 bytes.
inline void run_in_background(const std::string& name) {
  const sched_param param{};
  pthread_setschedparam(pthread_self(), SCHED_BATCH, &param);
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

}  // namespace xmatters

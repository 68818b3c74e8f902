// The delivery engine (delivery.h; how it works: delivery_engine.h): the
// lanes and their workers, what submit takes, start and stop, statistics.
// One attempt: delivery_attempt.cc; what becomes of it:
// delivery_settle.cc; the operator's verbs: delivery_operator.cc.
#include "delivery/delivery.h"

#include <algorithm>
#include <map>
#include <set>
#include <system_error>
#include <utility>

#include "util/background.h"
#include "delivery/delivery_engine.h"

namespace xmatters {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

void Delivery::Engine::write(const LogLines& logs) noexcept {
  try {
    for (const auto& [level, line] : logs) log.log(level, line);
  } catch (const std::exception&) {
    // Out of memory: the lines are lost, the delivery is not.
  }
}

void Delivery::Engine::recover() {
  // Events of an integration that is no longer configured stay in the
  // spool, not queued: its name restored sends them (its open outages are
  // kept likewise, collectd-xmatters(5) OUTAGES).
  std::map<std::string, std::size_t> kept;
  std::size_t recovered = 0;
  // A letter whose event is in the spool was being sent again (resend)
  // when the plugin stopped: it leaves the file now, so that it cannot be
  // sent again twice.
  const std::set<std::string> letters = dead_letters->load();
  std::set<std::string> resent;
  std::vector<Event> events = store->take_recovered();
  // But one that resend skipped (its outage has cleared) and had not taken
  // back out when collectd was killed is not sent, and its letter stays.
  std::set<std::string> skipped;
  if (std::any_of(events.begin(), events.end(), [&](const Event& e) { return letters.count(e.event_id) > 0; })) {
    try {
      skipped = skipped_resends(events, read_dead_letters(dead_letters->path()));
    } catch (const std::system_error& e) {
      log.warning("cannot read " + dead_letters->path() + " (" + e.what() + "): events resent are all sent");
    }
  }
  for (auto& event : events) {
    if (skipped.count(event.event_id) > 0) {
      store->acknowledge(event.event_id);
      continue;
    }
    if (letters.count(event.event_id) > 0) resent.insert(event.event_id);
    auto lane = by_name.find(event.integration);
    if (lane == by_name.end()) {
      ++kept[event.integration];
      continue;
    }
    // An older run may have left two pages of one outage queued.
    DeliveryLane& l = *lane->second;
    std::optional<Event> replaced;
    {
      MutexLock lock(l.mutex);  // no thread yet; for the analysis
      replaced = l.schedule.enqueue(without_body(std::move(event)));
    }
    if (replaced)
      store->acknowledge(replaced->event_id);
    else
      store->add();
    ++recovered;
  }
  for (const auto& [name, count] : kept)
    log.warning("integration " + name + " is not configured: " + std::to_string(count) +
                " undelivered event(s) for it are kept in the spool until it is again");
  if (recovered > 0) log.info(std::to_string(recovered) + " undelivered event(s) recovered from the spool");
  if (!skipped.empty())
    log.info(std::to_string(skipped.size()) + " outage event(s) left by a resend that skipped them (their outage " +
             "has cleared) dropped; their dead letters stay");
  if (!resent.empty() && !dead_letters->remove(resent))
    log.error(std::to_string(resent.size()) + " event(s) queued again are still in " + dead_letters->path() +
              ", which cannot be rewritten: do not resend them");
  // FloodLimit's minute goes on from the requests the last run sent in it
  // (collectd-xmatters(5) OUTAGES), and compaction keeps them.
  for (const auto& lane : lanes) lane->budget->recover(store->recovered_changes(), steady_now(), wall_now());
}

// An idle worker sleeps until its lane's next event is due, or until
// submit() wakes it because a new event is due sooner than that (which, in
// a burst, is only its first event: the others find a worker awake). A
// worker that takes an event and sees another due wakes a peer, so a burst
// spreads over the Connections. An idle plugin does not wake at all; a
// summary of log lines held back, or a paused lane's expired events, wake
// it when due.
void Delivery::Engine::worker(DeliveryLane& lane, HttpClient& client) {
  run_in_background("xm-" + lane.config.name);
  const std::string prefix = "integration " + lane.config.name + ": ";
  try {
    MutexLock lock(lane.mutex);
    while (!stopping) {
      std::string outage_id;  // set while this thread holds an outage in flight
      std::vector<LaneSchedule::Taken> taken;
      std::size_t i = 0;  // taken[i] is in hand, those after it wait
      try {
        const auto now = steady_now();
        if (lane.lines.report_due() <= now) {
          LogLines logs;
          lane.lines.report_held_back(now, lane.schedule, logs);
          lock.unlock();
          write(logs);
          lock.lock();
          continue;
        }
        Mode mode = Mode::Send;
        if (lane.schedule.held() && lane.next_expiry_sweep <= now) {
          lane.next_expiry_sweep = now + options.paused_retry_every;
          taken = lane.schedule.take_expired([&](const Pending& p) { return expired(lane.config, p); });
          mode = Mode::Expire;
        }
        if (taken.empty()) {
          auto due = std::min(lane.schedule.next_due(), lane.lines.report_due());
          if (lane.schedule.held()) due = std::min(due, lane.next_expiry_sweep);
          if (due > now) {
            if (due == Steady::time_point::max())
              lock.wait(lane.wake);
            else if (options.steady_now)
              lock.wait_for(lane.wake, due - now);  // a test's clock: its wake() comes sooner
            else
              lock.wait_until(lane.wake, due);
            continue;
          }
          std::optional<LaneSchedule::Taken> one = lane.schedule.take(now);
          if (!one) continue;
          if (lane.schedule.next_due() <= now) lane.wake.notify_one();
          mode = lane.tests.count(one->head.event.event_id) > 0 ? Mode::Test : Mode::Send;
          taken.push_back(std::move(*one));
        }
        // stop() gives requests in flight time to finish, but not a test's:
        // nobody waits for its answer then, and it is never sent again.
        std::optional<InFlight> counted;
        if (mode != Mode::Test) counted.emplace(*this);
        for (; i < taken.size(); ++i) {
          outage_id = taken[i].outage_id;
          const Pending& p = taken[i].head;
          lock.unlock();
          if (mode != Mode::Expire) note_sent(lane, p.event.type);
          Outcome o = try_attempt(lane, client, p, mode);
          LogLines logs;
          lock.lock();
          settle(lane, outage_id, p, o, logs);
          outage_id.clear();
          lock.unlock();
          write(logs);
          lock.lock();
        }
      } catch (const std::exception& ex) {
        // Out of memory half way through: the outage must not stay in
        // flight, or none of its events would ever go again.
        // (Nothing between an unlock and its lock above throws.)
        if (!outage_id.empty()) lane.schedule.release(outage_id, steady_now() + options.initial_backoff);
        for (std::size_t j = i + 1; j < taken.size(); ++j) lane.schedule.release(taken[j].outage_id, steady_now());
        lock.unlock();
        log.error(prefix + "delivery interrupted (" + ex.what() + "); trying again");
        lock.lock();
      }
    }
  } catch (const std::exception& ex) {
    log.error(prefix + "delivery thread failed: " + ex.what());
  }
}

void Delivery::Engine::count_refusal(DeliveryLane& lane) {
  MutexLock l(lane.mutex);
  ++lane.counts.dropped;
}

Delivery::Delivery(const Config& config, const std::string& spool_dir, Logger& log, DeliveryOptions options)
    : Delivery(config, nullptr, spool_dir, log, options) {}

Delivery::Delivery(const Config& config, Store& store, const std::string& spool_dir, Logger& log,
                   DeliveryOptions options)
    : Delivery(config, &store, spool_dir, log, options) {}

Delivery::Delivery(const Config& config, Store* store, const std::string& spool_dir, Logger& log,
                   DeliveryOptions options)
    : engine_(std::make_unique<Engine>(config, log, options)) {
  Engine& engine = *engine_;
  engine.dead_letters = std::make_unique<DeadLetterFile>(spool_dir + "/dead-letter.jsonl", config.dead_letter_limit);
  for (const auto& integration : config.integrations) {
    engine.lanes.push_back(std::make_unique<DeliveryLane>(integration, options));
    DeliveryLane& lane = *engine.lanes.back();
    engine.by_name[integration.name] = &lane;
    engine.max_timeout = std::max(engine.max_timeout, duration_cast<milliseconds>(integration.timeout));
    // Here, so that a client that cannot be made fails the plugin's init
    // instead of ending its thread while events keep being spooled.
    try {
      for (int i = 0; i < std::max(1, integration.connections); ++i)
        lane.clients.push_back(std::make_unique<HttpClient>(integration, &engine.abort));
    } catch (const std::exception& e) {
      throw std::runtime_error("integration " + integration.name + ": cannot set up its connections: " + e.what());
    }
  }
  // Opened only once the clients are made: a plugin that cannot start
  // leaves no SpoolDir behind.
  if (!store) {
    engine.owned_store =
        std::make_unique<Store>(spool_dir, config.queue_limit, log, StoreOptions{options.sync_interval});
    store = engine.owned_store.get();
  }
  engine.store = store;

  engine.recover();
  set_snapshot_source(nullptr);
}

Delivery::~Delivery() {
  try {
    stop();
  } catch (const std::exception& e) {
    engine_->log.error(std::string("stopping delivery: ") + e.what());
  }
}

std::vector<std::string> Delivery::recovered_changes() const { return engine_->store->recovered_changes(); }

std::shared_ptr<FloodBudget> Delivery::flood_budget(const std::string& integration) const {
  const auto found = engine_->by_name.find(integration);
  return found == engine_->by_name.end() ? nullptr : found->second->budget;
}

void Delivery::record_change(const std::string& record) { engine_->store->record_change(record); }

void Delivery::record_durably(const std::string& record) { engine_->store->record_durably(record); }

void Delivery::set_snapshot_source(SnapshotSource source) {
  Engine& engine = *engine_;
  // The outage table, then FloodLimit's minute: the requests still in it.
  engine.store->set_snapshot_source([&engine, source = std::move(source)](SnapshotWriter write) {
    if (source) source(write);
    const TimePoint now = engine.wall_now();
    for (const auto& lane : engine.lanes) lane->budget->snapshot(now, write);
  });
}

void Delivery::Engine::note_sent(DeliveryLane& lane, EventType type) noexcept {
  if (!lane.budget->limited()) return;
  // Before the request, so that a crash during it still counts it; no
  // sync of its own (the next event's covers it; a crash of collectd
  // keeps what the page cache has).
  try {
    store->record_change(encode_flood_send(FloodSend{lane.config.name, type, wall_now()}));
  } catch (const std::exception&) {
    // A full disk: the request goes anyway; only a restart within the
    // minute could then send more than FloodLimit.
  }
}

bool Delivery::submit(Event event) {
  Engine& engine = *engine_;
  auto found = engine.by_name.find(event.integration);
  if (found == engine.by_name.end()) {
    engine.log.error("event " + event.event_id + " names an unknown integration " + event.integration);
    return false;
  }
  DeliveryLane& lane = *found->second;
  if (!engine.accepting) {
    engine.log.warning("integration " + event.integration + ": delivery has stopped; " + event_type_name(event.type) +
                  " event of outage " + event.outage_id + " refused");
    return false;
  }
  // A page that will replace its outage's queued page takes no new room
  // under QueueLimit (checked again when it is queued: a delivery thread may
  // take the queued one meanwhile).
  bool counted = true;
  if (event.type == EventType::Outage) {
    {
      MutexLock lock(lane.mutex);
      counted = !lane.schedule.has_queued_page(event.outage_id);
    }
    if (counted && !engine.store->take_room(event)) {
      engine.count_refusal(lane);
      return false;
    }
  } else {
    engine.store->add();  // a clear is never refused: its outage was paged
  }
  // A clear the spool cannot take is held in memory by the store.
  Store::Accepted accepted;
  try {
    accepted = engine.store->accept(event);
  } catch (...) {
    if (counted) engine.store->release();
    throw;
  }
  if (accepted == Store::Accepted::NoRoom) {
    if (counted) engine.store->release();
    engine.count_refusal(lane);
    return false;
  }
  bool wake;
  std::optional<Event> replaced;
  {
    MutexLock lock(lane.mutex);
    const auto due_before = lane.schedule.next_due();
    replaced = lane.schedule.enqueue(without_body(std::move(event)));
    wake = lane.schedule.next_due() < due_before;
  }
  if (wake) lane.wake.notify_one();
  if (replaced) {
    // Its change needs no recording first: the new page carries a newer
    // change of the same outage (and collectd's thread is inside the
    // tracker here).
    engine.store->acknowledge(replaced->event_id);
    if (counted) engine.store->release();
  } else if (!counted) {
    engine.store->add();
  }
  return true;
}

void Delivery::start() {
  Engine& engine = *engine_;
  MutexLock lock(engine.control);
  if (engine.started || engine.stopped) return;
  engine.started = true;
  for (auto& lane : engine.lanes)
    for (auto& client : lane->clients)
      lane->threads.emplace_back([&engine, l = lane.get(), c = client.get()] { engine.worker(*l, *c); });
  engine.store->start();
}

void Delivery::wake() {
  // Under each mutex, so that no thread misses it between reading the clock
  // and waiting.
  for (auto& lane : engine_->lanes) {
    MutexLock l(lane->mutex);
    lane->wake.notify_all();
  }
}

void Delivery::stop() {
  Engine& engine = *engine_;
  MutexLock lock(engine.control);
  if (engine.stopped) return;
  engine.stopped = true;
  engine.accepting = false;
  engine.stopping = true;
  // Under each mutex, so that no thread misses the wake-up between its check
  // and its wait.
  for (auto& lane : engine.lanes) {
    MutexLock l(lane->mutex);
    lane->wake.notify_all();
  }
  {
    // Requests in flight get up to Timeout to finish (curl's own time-out
    // ends them by then too); then they are aborted.
    MutexLock f(engine.flight_mutex);
    const auto deadline = Steady::now() + engine.max_timeout;
    while (engine.in_flight > 0 && f.wait_until(engine.flight_done, deadline) != std::cv_status::timeout) {
    }
  }
  engine.abort = true;
  for (auto& lane : engine.lanes)
    for (auto& t : lane->threads)
      if (t.joinable()) t.join();
  // Test events not answered: answered now, and not sent at the next start.
  for (auto& lane : engine.lanes) {
    MutexLock l(lane->mutex);
    for (auto& [event_id, answer] : lane->tests) {
      FirstAnswer stopped;
      stopped.reason = "delivery stopped before it was sent";
      answer.set_value(stopped);
      engine.store->acknowledge(event_id);
    }
    lane->tests.clear();
  }
  // What is held in memory is spooled, the spool synced.
  engine.store->stop();
  for (auto& lane : engine.lanes) {
    MutexLock l(lane->mutex);
    if (lane->schedule.queued() > 0)
      engine.log.info("integration " + lane->config.name + ": " + std::to_string(lane->schedule.queued()) +
                 " undelivered event(s) kept in the spool for the next start");
  }
}

DeliveryStats Delivery::stats(const std::string& integration) const {
  DeliveryStats out;
  auto found = engine_->by_name.find(integration);
  if (found == engine_->by_name.end()) return out;
  DeliveryLane& lane = *found->second;
  MutexLock lock(lane.mutex);
  out.queue_length = lane.schedule.queued();
  out.delivered = lane.counts.delivered;
  out.retried = lane.counts.retried;
  out.dead_lettered = lane.counts.dead_lettered;
  out.dropped = lane.counts.dropped;
  return out;
}

double Delivery::take_mean_latency(const std::string& integration) {
  auto found = engine_->by_name.find(integration);
  if (found == engine_->by_name.end()) return 0;
  DeliveryLane& lane = *found->second;
  MutexLock lock(lane.mutex);
  const double mean =
      lane.counts.latency_count > 0 ? lane.counts.latency_sum / static_cast<double>(lane.counts.latency_count) : 0;
  lane.counts.latency_sum = 0;
  lane.counts.latency_count = 0;
  return mean;
}

}  // namespace xmatters

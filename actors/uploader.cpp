#include "actors/uploader.hpp"

#include <algorithm>
#include <cmath>

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>
#include <caf/spawn_options.hpp>
#include <spdlog/spdlog.h>

#include "config/checks.hpp"
#include "config/version.hpp"
#include "runtime/backoff.hpp"
#include "runtime/error.hpp"
#include "runtime/host_info.hpp"
#include "runtime/log.hpp"
#include "upload/format.hpp"

namespace gpa {

namespace {

double seconds(caf::timespan d) {
  return std::chrono::duration<double>(d).count();
}

} // namespace

// -- back-off
// --------------------------------------------------------------------

caf::timespan uploader_state::nominal_delay(uint32_t n) const {
  return rt::doubled_delay(cfg.backoff_initial, cfg.backoff_max,
                           n > 0 ? n - 1 : 0);
}

caf::timespan uploader_state::jittered_delay(uint32_t n) {
  auto nominal = nominal_delay(n);
  auto j = std::clamp(cfg.backoff_jitter, 0.0, 1.0);
  std::uniform_real_distribution<double> dist{1.0 - j, 1.0 + j};
  auto factor = dist(rng);
  return caf::timespan{static_cast<caf::timespan::rep>(
      std::llround(static_cast<double>(nominal.count()) * factor))};
}

void uploader_state::schedule_retry(upload_lane& l) {
  ++l.attempt;
  auto delay = jittered_delay(l.attempt);
  l.pending = upload_lane::step::retry;
  ++l.counts.retries;
  if (fx.metrics)
    rt::metric::add(*fx.metrics, *l.retries_metric, 1);
  log->warn("retrying the upload to {} in {:.1f} s (failure {} in a row); {} "
            "profile(s) wait in the spool",
            l.backend, seconds(delay), l.attempt, l.waiting());
  self->delayed_send(self, delay, upload_atom_v, uint64_t{l.id});
}

void uploader_state::schedule_drain(upload_lane& l) {
  l.pending = upload_lane::step::drain;
  // A message to ourselves, not a loop: new profiles and stats requests are
  // served between two uploads.
  self->send(self, upload_atom_v, uint64_t{l.id});
}

void uploader_state::count(upload_lane& l, rt::metric::upload_result result,
                           uint64_t n) {
  using rt::metric::upload_result;
  switch (result) {
    case upload_result::sent: l.counts.sent += n; break;
    case upload_result::failed: l.counts.failed += n; break;
    case upload_result::spooled: l.counts.spooled += n; break;
    case upload_result::dropped: l.counts.dropped += n; break;
  }
  if (fx.metrics)
    rt::metric::add(*fx.metrics, *l.uploads_metric, static_cast<double>(n),
                    {{"result", rt::metric::to_string(result)}});
}

void uploader_state::update_spool_gauge(upload_lane& l) {
  if (fx.metrics)
    rt::metric::set(*fx.metrics, *l.spool_metric,
                    static_cast<double>(l.waiting()));
}

void uploader_state::count_waiting(upload_lane& l) {
  uint64_t n = 0;
  for (auto& e : l.spool->list())
    if (e.seq > l.counted_waiting) {
      ++n;
      l.counted_waiting = e.seq;
    }
  if (n > 0)
    count(l, rt::metric::upload_result::spooled, n);
}

// -- handlers
// --------------------------------------------------------------------

void uploader_state::on_start() {
  if (studio.enabled && cfg.health_check) {
    auto c = client;
    auto lg = log;
    auto host = cfg.studio.identity.server_host;
    auto service = cfg.studio.identity.service_name;
    auto info = session;
    fx.sender->post([c, lg, host, service, info] {
      if (auto err = c->health_check())
        lg->warn("{} (uploads will be retried)", describe(err));
      else
        lg->info("Performance Studio at {} is reachable (service '{}')",
                 config::redact_url(host), service);
      info->connections_opened = c->http_stats().connections_opened;
      info->recycles = c->recycles();
    });
  }
  for (auto* l : {&studio, &pyroscope}) {
    if (l->enabled && l->waiting() > 0) {
      log->info("{} profile(s) for {} left in {} by a previous run; sending "
                "them first",
                l->waiting(), l->backend, l->spool->path());
      update_spool_gauge(*l);
      schedule_drain(*l);
    }
  }
}

bool uploader_state::store(upload_lane& l, const profile& p) {
  using rt::metric::upload_result;
  auto pushed = l.spool->push(upload::to_spool_record(p));
  if (!pushed) {
    count(l, upload_result::dropped);
    log->error("cannot store profile {} for {}: {}; it is lost", p.snapshot_id,
               l.backend, describe(pushed.error()));
    return false;
  }
  if (pushed->dropped > 0) {
    count(l, upload_result::dropped, pushed->dropped);
    log->warn("spool {} is full ({} files, {} bytes max): dropped the {} "
              "oldest profile(s) to keep profile {}",
              l.spool->path(), l.spool->limits().max_files,
              l.spool->limits().max_bytes, pushed->dropped, p.snapshot_id);
  }
  if (!pushed->durable && l.spool->on_disk())
    log->warn("profile {} for {} is kept in memory only (lost if the agent "
              "dies before it is sent): {}",
              p.snapshot_id, l.backend, pushed->not_durable_because);
  log->debug("profile {} stored for {} as {} ({} waiting)", p.snapshot_id,
             l.backend, pushed->entry.name(), l.waiting());
  // While the lane backs off, a new profile waits for the retry.
  if (l.pending == upload_lane::step::retry)
    count_waiting(l);
  update_spool_gauge(l);
  return pushed->durable;
}

bool uploader_state::on_profile(profile& p) {
  // Write-ahead: stored for every backend before anything else, so that a
  // crash from here on loses nothing the output writer will have written.
  bool durable = true;
  for (auto* l : {&studio, &pyroscope})
    if (l->enabled)
      durable = store(*l, p) && durable;
  auto id = p.snapshot_id;
  if (cfg.next)
    self->send(cfg.next, write_atom_v, std::move(p));
  for (auto* l : {&studio, &pyroscope})
    if (l->enabled && l->pending == upload_lane::step::none)
      drain_one(*l);
  log->debug("profile {} handed on", id);
  return durable;
}

void uploader_state::on_step(uint64_t id) {
  auto& l = lane(id);
  if (l.pending == upload_lane::step::sending)
    return; // a stale timer; the answer in flight decides what comes next
  l.pending = upload_lane::step::none;
  drain_one(l);
}

void uploader_state::give_up(upload_lane& l, uint64_t seq,
                             const std::string& what) {
  count(l, rt::metric::upload_result::dropped);
  log->error("dropping {} for {}: {}", rt::spool_entry{seq, 0}.name(),
             l.backend, what);
  l.spool->remove(rt::spool_entry{seq, 0});
  update_spool_gauge(l);
}

void uploader_state::drain_one(upload_lane& l) {
  if (stopping || l.pending != upload_lane::step::none)
    return;
  // Entries that cannot be read or parsed are dropped one after the other.
  for (;;) {
    auto entry = l.spool->oldest();
    if (!entry) {
      l.attempt = 0;
      return;
    }
    auto data = l.spool->read(*entry);
    if (!data) {
      give_up(l, entry->seq, describe(data.error()));
      continue;
    }
    auto p = upload::from_spool_record(std::move(*data));
    if (!p) {
      give_up(l, entry->seq, describe(p.error()));
      continue;
    }
    l.pending = upload_lane::step::sending;
    auto c = client;
    auto info = session;
    auto weak = caf::actor_cast<caf::weak_actor_ptr>(self);
    auto lane_id = l.id;
    auto seq = entry->seq;
    fx.sender->post([c, info, weak, lane_id, seq, p = std::move(*p)] {
      auto out = lane_id == upload_lane::studio ? c->submit(p)
                                                : c->send_pyroscope(p);
      info->connections_opened = c->http_stats().connections_opened;
      info->recycles = c->recycles();
      if (lane_id == upload_lane::studio) {
        std::lock_guard<std::mutex> guard{info->mtx};
        info->gpid = c->gpid();
      }
      upload_result r;
      r.lane = lane_id;
      r.seq = seq;
      r.snapshot_id = p.snapshot_id;
      r.status = static_cast<uint8_t>(out.status);
      r.reason = std::move(out.reason);
      r.failed_requests = out.failed_requests;
      r.folded = out.folded;
      r.body_bytes = out.body_bytes;
      if (auto strong = weak.lock())
        caf::anon_send(caf::actor_cast<uploader_impl>(strong), done_atom_v,
                       std::move(r));
    });
    return;
  }
}

void uploader_state::on_sent(const upload_result& r) {
  using rt::metric::upload_result;
  auto& l = lane(r.lane);
  l.pending = upload_lane::step::none;
  if (r.failed_requests > 0)
    count(l, upload_result::failed, r.failed_requests);
  if (r.folded)
    ++folded;
  auto status = static_cast<submit_status>(r.status);
  auto name = rt::spool_entry{r.seq, 0}.name();
  switch (status) {
    case submit_status::sent: {
      // Removed as soon as the backend accepted it: a crash from here on
      // does not send it again.
      if (auto err = l.spool->remove(rt::spool_entry{r.seq, 0}))
        log->error("{} (it may be sent again after a restart)", describe(err));
      l.attempt = 0;
      count(l, upload_result::sent);
      std::string gpid;
      if (l.id == upload_lane::studio) {
        std::lock_guard<std::mutex> guard{session->mtx};
        gpid = ", gpid " + session->gpid;
      }
      log->info("uploaded profile {} to {} ({} bytes{}); {} left",
                r.snapshot_id, l.backend, r.body_bytes, gpid, l.waiting());
      update_spool_gauge(l);
      if (l.waiting() > 0)
        schedule_drain(l);
      break;
    }
    case submit_status::retry:
      log->warn("upload of profile {} to {} failed: {}", r.snapshot_id,
                l.backend, r.reason);
      count_waiting(l);
      if (!stopping)
        schedule_retry(l);
      break;
    case submit_status::dropped:
      give_up(l, r.seq,
              "profile " + std::to_string(r.snapshot_id)
                  + " refused for good: " + r.reason);
      if (l.waiting() > 0)
        schedule_drain(l);
      break;
  }
  maybe_stopped();
}

void uploader_state::on_pressure(const pressure_event& ev) {
  if (!ev.action_due(pressure_level::warning))
    return;
  auto c = client;
  auto lg = log;
  auto level = ev.level;
  auto info = session;
  fx.sender->post([c, lg, level, info] {
    c->recycle("on memory pressure");
    c->release_buffers();
    info->recycles = c->recycles();
    lg->info("memory pressure {}: HTTP session recycled, upload buffers freed",
             to_string(level));
  });
}

bool uploader_state::sending() const {
  return studio.pending == upload_lane::step::sending
         || pyroscope.pending == upload_lane::step::sending;
}

void uploader_state::on_shutdown(caf::typed_response_promise<bool> promise) {
  stopping = true;
  stop_waiters.push_back(std::move(promise));
  maybe_stopped();
}

void uploader_state::maybe_stopped() {
  if (!stopping || sending())
    return;
  for (auto& p : stop_waiters)
    p.deliver(true);
  stop_waiters.clear();
}

uploader_stats uploader_state::stats() const {
  uploader_stats result;
  result.sent = studio.counts.sent;
  result.failed = studio.counts.failed;
  result.spooled = studio.counts.spooled;
  result.dropped = studio.counts.dropped;
  result.retries = studio.counts.retries;
  result.folded = folded;
  result.connections_opened = session->connections_opened;
  result.session_recycles = session->recycles;
  result.spool_files = studio.waiting();
  result.spool_bytes = studio.spool ? studio.spool->bytes() : 0;
  result.backing_off = studio.pending == upload_lane::step::retry;
  {
    std::lock_guard<std::mutex> guard{session->mtx};
    result.gpid = session->gpid;
  }
  result.pyroscope_sent = pyroscope.counts.sent;
  result.pyroscope_failed = pyroscope.counts.failed;
  result.pyroscope_spooled = pyroscope.counts.spooled;
  result.pyroscope_dropped = pyroscope.counts.dropped;
  result.pyroscope_spool_files = pyroscope.waiting();
  return result;
}

// -- behaviour
// -------------------------------------------------------------------

uploader_impl::behavior_type
uploader(uploader_impl::stateful_pointer<uploader_state> self,
         uploader_effects fx, uploader_config cfg) {
  auto& st = self->state;
  st.self = self;
  st.fx = std::move(fx);
  st.cfg = std::move(cfg);
  st.log = log::get("uploader");
  st.rng.seed(st.cfg.rng_seed);
  st.client
      = std::make_shared<studio_client>(st.fx.http, st.cfg.studio, st.log);
  // Without a spool directory the write-ahead log is kept in memory,
  // bounded well below the agent's memory thresholds.
  auto memory_spool = [](const char* name) {
    rt::spool_limits lim;
    lim.max_bytes = 32ull << 20;
    lim.max_files = 100;
    return rt::spool::in_memory(lim, std::string{"(memory: "} + name + ")");
  };
  auto& s = st.studio;
  s.id = upload_lane::studio;
  s.backend = "Performance Studio";
  s.enabled = st.cfg.studio_enabled;
  s.spool = st.fx.studio_spool ? st.fx.studio_spool
                               : memory_spool("Performance Studio");
  s.uploads_metric = &rt::metric::uploads;
  s.retries_metric = &rt::metric::upload_retries;
  s.spool_metric = &rt::metric::spool_files;
  auto& py = st.pyroscope;
  py.id = upload_lane::pyroscope;
  py.backend = "Pyroscope";
  py.enabled = st.client->pyroscope_enabled();
  py.spool = st.fx.pyroscope_spool ? st.fx.pyroscope_spool
                                   : memory_spool("Pyroscope");
  py.uploads_metric = &rt::metric::pyroscope_uploads;
  py.retries_metric = &rt::metric::pyroscope_upload_retries;
  py.spool_metric = &rt::metric::pyroscope_spool_files;
  // The behaviour function runs when the actor first runs, before any
  // message: the health check and the previous run's spool come before the
  // first new profile.
  st.on_start();
  return {
      [self](write_atom, profile& p) {
        return self->state.on_profile(p);
      },
      [self](upload_atom, uint64_t lane) {
        self->state.on_step(lane);
      },
      [self](done_atom, const upload_result& r) {
        self->state.on_sent(r);
      },
      [self](pressure_atom, const pressure_event& ev) {
        self->state.on_pressure(ev);
      },
      [self](shutdown_atom) {
        auto promise = self->make_response_promise<bool>();
        self->state.on_shutdown(promise);
        return promise;
      },
      [self](stats_atom) {
        return self->state.stats();
      },
  };
}

uploader_config make_uploader_config(const agent_options& opts,
                                     std::string hostname,
                                     int64_t spawn_time_ms) {
  auto& up = opts.upload;
  uploader_config cfg;
  cfg.studio_enabled = up.enabled;
  auto& s = cfg.studio;
  s.identity.server_host = up.server_host;
  s.identity.token = up.token;
  s.identity.service_name = up.service_name;
  s.identity.hostname = std::move(hostname);
  s.identity.version = agent_version;
  s.identity.spawn_time_ms = spawn_time_ms;
  s.timeout = up.timeout;
  s.session_max_uploads
      = static_cast<uint64_t>(std::max<int64_t>(1, up.session_max_uploads));
  s.pyroscope_url = up.pyroscope_url;
  s.pyroscope_app = up.pyroscope_app;
  s.pyroscope_tags = up.pyroscope_tags;
  s.sample_rate_hz = opts.scheduler.frequency;
  s.now_ms = rt::wall_clock_ms;
  return cfg;
}

rt::spool_limits make_spool_limits(const upload_options& opts) {
  rt::spool_limits result;
  result.max_bytes
      = static_cast<uint64_t>(std::max<int64_t>(0, opts.spool_max_bytes));
  result.max_files
      = static_cast<uint64_t>(std::max<int64_t>(0, opts.spool_max_files));
  return result;
}

rt::http_client_options make_http_options(const upload_options& opts) {
  rt::http_client_options result;
  result.verify = !opts.no_verify;
  result.ca_bundle = opts.ca_bundle;
  if (!opts.token.empty())
    result.secrets.push_back(opts.token);
  result.user_agent = std::string{"gprofiler-agent/"} + agent_version;
  if (opts.no_verify)
    log::get("uploader")
        ->warn(
            "--no-verify: the server's TLS certificate is NOT verified; anyone "
            "on the path can read the profiles and the API token");
  return result;
}

} // namespace gpa

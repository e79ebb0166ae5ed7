#include "actors/uploader.hpp"

#include <algorithm>
#include <cmath>

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>
#include <caf/spawn_options.hpp>
#include <spdlog/spdlog.h>

#include "config/version.hpp"
#include "runtime/backoff.hpp"
#include "runtime/error.hpp"
#include "runtime/host_info.hpp"
#include "runtime/log.hpp"

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
  if (metrics)
    rt::metric::add(*metrics, *l.retries_metric, 1);
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

void uploader_state::log_sent(upload_lane& l, const profile& p,
                              const submit_outcome& out, bool spooled) {
  l.attempt = 0;
  count(l, rt::metric::upload_result::sent);
  auto gpid = l.id == upload_lane::studio ? ", gpid " + client->gpid()
                                          : std::string{};
  if (spooled)
    log->info("uploaded spooled profile {} to {} ({} bytes{}); {} left",
              p.snapshot_id, l.backend, out.body_bytes, gpid, l.waiting());
  else
    log->info("uploaded profile {} to {} ({} bytes{})", p.snapshot_id,
              l.backend, out.body_bytes, gpid);
}

submit_outcome uploader_state::submit(upload_lane& l, const profile& p) {
  auto out = l.id == upload_lane::studio ? client->submit(p)
                                         : client->send_pyroscope(p);
  if (out.failed_requests > 0)
    count(l, rt::metric::upload_result::failed, out.failed_requests);
  if (out.folded)
    ++folded;
  return out;
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
  if (metrics)
    rt::metric::add(*metrics, *l.uploads_metric, static_cast<double>(n),
                    {{"result", rt::metric::to_string(result)}});
}

void uploader_state::update_spool_gauge(upload_lane& l) {
  if (metrics)
    rt::metric::set(*metrics, *l.spool_metric,
                    static_cast<double>(l.waiting()));
}

// -- handlers
// --------------------------------------------------------------------

void uploader_state::on_start() {
  if (studio.enabled && cfg.health_check) {
    if (auto err = client->health_check())
      log->warn("{} (uploads will be retried)", describe(err));
    else
      log->info("Performance Studio at {} is reachable (service '{}')",
                cfg.studio.identity.server_host,
                cfg.studio.identity.service_name);
  }
  for (auto* l : {&studio, &pyroscope}) {
    if (l->enabled && l->waiting() > 0) {
      log->info("{} profile(s) for {} left in {} by a previous run; sending "
                "them first",
                l->waiting(), l->backend, l->spool->path());
      schedule_drain(*l);
    }
  }
}

void uploader_state::store(upload_lane& l, const profile& p) {
  using rt::metric::upload_result;
  if (!l.spool) {
    count(l, upload_result::dropped);
    log->error("profile {} could not be uploaded to {} and there is no "
               "spool: it is lost",
               p.snapshot_id, l.backend);
    return;
  }
  auto pushed = l.spool->push(upload::to_spool_record(p));
  if (!pushed) {
    count(l, upload_result::dropped);
    log->error("cannot spool profile {} for {}: {}; it is lost", p.snapshot_id,
               l.backend, describe(pushed.error()));
    return;
  }
  count(l, upload_result::spooled);
  if (pushed->dropped > 0) {
    count(l, upload_result::dropped, pushed->dropped);
    log->warn("spool {} is full ({} files, {} bytes max): dropped the {} "
              "oldest profile(s) to keep profile {}",
              l.spool->path(), l.spool->limits().max_files,
              l.spool->limits().max_bytes, pushed->dropped, p.snapshot_id);
  }
  log->debug("profile {} spooled for {} as {} ({} waiting)", p.snapshot_id,
             l.backend, pushed->entry.name(), l.waiting());
  update_spool_gauge(l);
}

void uploader_state::on_profile(profile& p) {
  // Each lane on its own: one backend's outage never holds up the other.
  for (auto* l : {&studio, &pyroscope})
    if (l->enabled)
      offer(*l, p);
}

void uploader_state::offer(upload_lane& l, const profile& p) {
  using rt::metric::upload_result;
  if (l.waiting() > 0 || l.pending != upload_lane::step::none) {
    // Older profiles wait: this one goes behind them.
    store(l, p);
    if (l.pending == upload_lane::step::none)
      schedule_drain(l);
    return;
  }
  auto out = submit(l, p);
  switch (out.status) {
    case submit_status::sent: log_sent(l, p, out, false); break;
    case submit_status::retry:
      log->warn("upload of profile {} to {} failed: {}; spooling it",
                p.snapshot_id, l.backend, out.reason);
      store(l, p);
      schedule_retry(l);
      break;
    case submit_status::dropped:
      count(l, upload_result::dropped);
      log->error("upload of profile {} refused for good by {}, dropping it: "
                 "{}",
                 p.snapshot_id, l.backend, out.reason);
      break;
  }
}

void uploader_state::on_step(uint64_t lane) {
  auto& l = lane == upload_lane::pyroscope ? pyroscope : studio;
  l.pending = upload_lane::step::none;
  drain_one(l);
}

void uploader_state::drain_one(upload_lane& l) {
  using rt::metric::upload_result;
  if (!l.spool)
    return;
  auto entry = l.spool->oldest();
  if (!entry) {
    l.attempt = 0;
    return;
  }
  auto give_up = [&](const std::string& why) {
    count(l, upload_result::dropped);
    log->error("dropping spooled {} for {}: {}", entry->name(), l.backend, why);
    l.spool->remove(*entry);
    update_spool_gauge(l);
    schedule_drain(l);
  };
  auto data = l.spool->read(*entry);
  if (!data)
    return give_up(describe(data.error()));
  auto p = upload::from_spool_record(std::move(*data));
  if (!p)
    return give_up(describe(p.error()));
  auto out = submit(l, *p);
  switch (out.status) {
    case submit_status::sent:
      if (auto err = l.spool->remove(*entry))
        log->error("{} (it may be sent again after a restart)", describe(err));
      log_sent(l, *p, out, true);
      schedule_drain(l);
      break;
    case submit_status::retry:
      log->warn("upload of spooled profile {} to {} failed: {}", p->snapshot_id,
                l.backend, out.reason);
      schedule_retry(l);
      break;
    case submit_status::dropped:
      give_up("refused for good: " + out.reason);
      break;
  }
  update_spool_gauge(l);
}

void uploader_state::on_pressure(const pressure_event& ev) {
  if (!ev.action_due(pressure_level::warning))
    return;
  client->recycle("on memory pressure");
  client->release_buffers();
  log->info("memory pressure {}: HTTP session recycled, upload buffers freed",
            to_string(ev.level));
}

uploader_stats uploader_state::stats() const {
  uploader_stats result;
  result.sent = studio.counts.sent;
  result.failed = studio.counts.failed;
  result.spooled = studio.counts.spooled;
  result.dropped = studio.counts.dropped;
  result.retries = studio.counts.retries;
  result.folded = folded;
  result.connections_opened = client->http_stats().connections_opened;
  result.session_recycles = client->recycles();
  result.spool_files = studio.waiting();
  result.spool_bytes = studio.spool ? studio.spool->bytes() : 0;
  result.backing_off = studio.pending == upload_lane::step::retry;
  result.gpid = client->gpid();
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
         std::shared_ptr<rt::http_client> http,
         std::shared_ptr<rt::spool> spool, std::shared_ptr<rt::metrics> metrics,
         uploader_config cfg) {
  auto& st = self->state;
  st.self = self;
  st.metrics = std::move(metrics);
  st.cfg = std::move(cfg);
  st.log = log::get("uploader");
  st.rng.seed(st.cfg.rng_seed);
  st.client
      = std::make_unique<studio_client>(std::move(http), st.cfg.studio, st.log);
  auto& s = st.studio;
  s.id = upload_lane::studio;
  s.backend = "Performance Studio";
  s.enabled = st.cfg.studio_enabled;
  s.spool = std::move(spool);
  s.uploads_metric = &rt::metric::uploads;
  s.retries_metric = &rt::metric::upload_retries;
  s.spool_metric = &rt::metric::spool_files;
  auto& py = st.pyroscope;
  py.id = upload_lane::pyroscope;
  py.backend = "Pyroscope";
  py.enabled = st.client->pyroscope_enabled();
  py.spool = st.cfg.pyroscope_spool;
  py.uploads_metric = &rt::metric::pyroscope_uploads;
  py.retries_metric = &rt::metric::pyroscope_upload_retries;
  py.spool_metric = &rt::metric::pyroscope_spool_files;
  // The behaviour function runs when the actor first runs (on its own thread
  // when detached), before any message: the health check and the previous
  // run's spool come before the first new profile.
  st.on_start();
  return {
      [self](write_atom, profile& p) {
        self->state.on_profile(p);
      },
      [self](upload_atom, uint64_t lane) {
        self->state.on_step(lane);
      },
      [self](pressure_atom, const pressure_event& ev) {
        self->state.on_pressure(ev);
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

uploader_actor spawn_uploader(caf::actor_system& sys,
                              std::shared_ptr<rt::http_client> http,
                              std::shared_ptr<rt::spool> spool,
                              std::shared_ptr<rt::metrics> metrics,
                              uploader_config cfg) {
  auto impl
      = sys.spawn<caf::detached>(uploader, std::move(http), std::move(spool),
                                 std::move(metrics), std::move(cfg));
  return caf::actor_cast<uploader_actor>(impl);
}

} // namespace gpa

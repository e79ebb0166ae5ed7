#include "actors/uploader.hpp"

#include <algorithm>
#include <cmath>

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>
#include <caf/spawn_options.hpp>
#include <spdlog/spdlog.h>

#include "config/version.hpp"
#include "messages/error.hpp"
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
  auto delay = cfg.backoff_initial;
  for (uint32_t i = 1; i < n && delay < cfg.backoff_max; ++i)
    delay *= 2;
  return std::min(delay, cfg.backoff_max);
}

caf::timespan uploader_state::jittered_delay(uint32_t n) {
  auto nominal = nominal_delay(n);
  auto j = std::clamp(cfg.backoff_jitter, 0.0, 1.0);
  std::uniform_real_distribution<double> dist{1.0 - j, 1.0 + j};
  auto factor = dist(rng);
  return caf::timespan{static_cast<caf::timespan::rep>(
      std::llround(static_cast<double>(nominal.count()) * factor))};
}

void uploader_state::schedule_retry() {
  ++attempt;
  auto delay = jittered_delay(attempt);
  backing_off = true;
  draining = false;
  count(rt::metric::upload_retries, {}, totals.retries);
  log->warn("retrying the upload in {:.1f} s (failure {} in a row); {} "
            "profile(s) wait in the spool",
            seconds(delay), attempt, spool ? spool->count() : 0);
  self->delayed_send(self, delay, upload_atom_v, ++generation);
}

void uploader_state::schedule_drain() {
  draining = true;
  backing_off = false;
  // A message to ourselves, not a loop: new profiles and stats requests are
  // served between two uploads.
  self->send(self, upload_atom_v, ++generation);
}

submit_outcome uploader_state::submit(const profile& p) {
  auto out = client->submit(p);
  if (out.failed_requests > 0)
    count(rt::metric::uploads, {{"result", "failed"}}, totals.failed,
          out.failed_requests);
  if (out.folded)
    ++totals.folded;
  return out;
}

void uploader_state::count(const rt::metric::info& m,
                           const rt::metric_labels& labels, uint64_t& field,
                           uint64_t n) {
  field += n;
  if (metrics)
    rt::metric::add(*metrics, m, static_cast<double>(n), labels);
}

// -- handlers
// --------------------------------------------------------------------

void uploader_state::on_start() {
  if (cfg.studio_enabled && cfg.health_check) {
    if (auto err = client->health_check())
      log->warn("{} (uploads will be retried)", describe(err));
    else
      log->info("Performance Studio at {} is reachable (service '{}')",
                cfg.studio.identity.server_host,
                cfg.studio.identity.service_name);
  }
  if (cfg.studio_enabled && spool && spool->count() > 0) {
    log->info("{} profile(s) left in {} by a previous run; sending them first",
              spool->count(), spool->path());
    schedule_drain();
  }
}

void uploader_state::store(const profile& p) {
  if (!spool) {
    count(rt::metric::uploads, {{"result", "dropped"}}, totals.dropped);
    log->error("profile {} could not be uploaded and there is no spool: it "
               "is lost",
               p.snapshot_id);
    return;
  }
  auto pushed = spool->push(upload::to_spool_record(p));
  if (!pushed) {
    count(rt::metric::uploads, {{"result", "dropped"}}, totals.dropped);
    log->error("cannot spool profile {}: {}; it is lost", p.snapshot_id,
               describe(pushed.error()));
    return;
  }
  count(rt::metric::uploads, {{"result", "spooled"}}, totals.spooled);
  if (pushed->dropped > 0) {
    count(rt::metric::uploads, {{"result", "dropped"}}, totals.dropped,
          pushed->dropped);
    log->warn("spool {} is full ({} files, {} bytes max): dropped the {} "
              "oldest profile(s) to keep profile {}",
              spool->path(), spool->limits().max_files,
              spool->limits().max_bytes, pushed->dropped, p.snapshot_id);
  }
  log->debug("profile {} spooled as {} ({} waiting)", p.snapshot_id,
             pushed->entry.name(), spool->count());
  if (metrics)
    rt::metric::set(*metrics, rt::metric::spool_files,
                    static_cast<double>(spool->count()));
}

void uploader_state::on_profile(profile& p) {
  if (client->pyroscope_enabled()) {
    // Best effort: one attempt per profile, never spooled.
    if (auto err = client->send_pyroscope(p)) {
      ++totals.pyroscope_failed;
      log->warn("{}", describe(err));
    } else {
      ++totals.pyroscope_sent;
    }
  }
  if (!cfg.studio_enabled)
    return;
  bool queue_empty = !spool || spool->count() == 0;
  if (!queue_empty || backing_off || draining) {
    // Older profiles wait: this one goes behind them.
    store(p);
    if (!backing_off && !draining)
      schedule_drain();
    return;
  }
  auto out = submit(p);
  switch (out.status) {
    case submit_status::sent:
      attempt = 0;
      count(rt::metric::uploads, {{"result", "sent"}}, totals.sent);
      log->info("uploaded profile {} ({} bytes, gpid {})", p.snapshot_id,
                out.body_bytes, client->gpid());
      break;
    case submit_status::retry:
      log->warn("upload of profile {} failed: {}; spooling it", p.snapshot_id,
                out.reason);
      store(p);
      schedule_retry();
      break;
    case submit_status::dropped:
      count(rt::metric::uploads, {{"result", "dropped"}}, totals.dropped);
      log->error("upload of profile {} refused for good, dropping it: {}",
                 p.snapshot_id, out.reason);
      break;
  }
}

void uploader_state::on_step(uint64_t gen) {
  if (gen != generation)
    return; // superseded
  backing_off = false;
  draining = false;
  drain_one();
}

void uploader_state::drain_one() {
  if (!spool)
    return;
  auto entry = spool->oldest();
  if (!entry) {
    attempt = 0;
    return;
  }
  auto give_up = [&](const std::string& why) {
    count(rt::metric::uploads, {{"result", "dropped"}}, totals.dropped);
    log->error("dropping spooled {}: {}", entry->name(), why);
    spool->remove(*entry);
    schedule_drain();
  };
  auto data = spool->read(*entry);
  if (!data)
    return give_up(describe(data.error()));
  auto p = upload::from_spool_record(std::move(*data));
  if (!p)
    return give_up(describe(p.error()));
  auto out = submit(*p);
  switch (out.status) {
    case submit_status::sent:
      attempt = 0;
      count(rt::metric::uploads, {{"result", "sent"}}, totals.sent);
      if (auto err = spool->remove(*entry))
        log->error("{} (it may be sent again after a restart)", describe(err));
      log->info("uploaded spooled profile {} ({} bytes, gpid {}); {} left",
                p->snapshot_id, out.body_bytes, client->gpid(), spool->count());
      schedule_drain();
      break;
    case submit_status::retry:
      log->warn("upload of spooled profile {} failed: {}", p->snapshot_id,
                out.reason);
      schedule_retry();
      break;
    case submit_status::dropped:
      give_up("refused for good: " + out.reason);
      break;
  }
  if (metrics)
    rt::metric::set(*metrics, rt::metric::spool_files,
                    static_cast<double>(spool->count()));
}

void uploader_state::on_pressure(const pressure_event& ev) {
  if (ev.level < pressure_level::warning)
    return;
  client->recycle("on memory pressure");
  client->release_buffers();
  log->info("memory pressure {}: HTTP session recycled, upload buffers freed",
            to_string(ev.level));
}

uploader_stats uploader_state::stats() const {
  auto result = totals;
  result.connections_opened = client->http_stats().connections_opened;
  result.session_recycles = client->recycles();
  result.spool_files = spool ? spool->count() : 0;
  result.spool_bytes = spool ? spool->bytes() : 0;
  result.backing_off = backing_off;
  result.gpid = client->gpid();
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
  st.http = http;
  st.spool = std::move(spool);
  st.metrics = std::move(metrics);
  st.cfg = std::move(cfg);
  st.log = log::get("uploader");
  st.rng.seed(st.cfg.rng_seed);
  st.client
      = std::make_unique<studio_client>(std::move(http), st.cfg.studio, st.log);
  // The behaviour function runs when the actor first runs (on its own thread
  // when detached), before any message: the health check and the previous
  // run's spool come before the first new profile.
  st.on_start();
  return {
      [self](write_atom, profile& p) {
        self->state.on_profile(p);
      },
      [self](upload_atom, uint64_t gen) {
        self->state.on_step(gen);
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
  s.now_ms = [] {
    return static_cast<int64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::system_clock::now().time_since_epoch())
            .count());
  };
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

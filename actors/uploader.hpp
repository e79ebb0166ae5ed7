#pragma once

// The uploader: sends every finished profile to gProfiler Performance Studio
// and, if configured, to Pyroscope over one reused HTTP session, and loses
// none across backend outages and agent restarts.
//
// Each backend is a lane with its own spool and back-off, so that one being
// down neither blocks nor loses the other's profiles. A profile that cannot
// go now (no connection, timeout, reset, 5xx, 408, 429) is written to the
// lane's durable spool and retried with exponential back-off and jitter;
// once an upload succeeds the spool is drained oldest first, one request at
// a time, so the server sees the profiles in order. At start, profiles left
// in the spools by a previous run go first. A 4xx other than 408/413/429 is
// permanent: the profile is dropped and the log says so. For Performance
// Studio a 413, or a body over the limit, triggers the size rule (see
// docs/upload.md).
//
// HTTP calls block, so the real agent spawns the uploader detached (on its
// own thread) with spawn_uploader(); the deterministic simulation spawns
// `uploader` directly with a scripted http_client. Timers are delayed_send,
// so simulated time drives the back-off.

#include <cstdint>
#include <memory>
#include <random>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/timespan.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "config/options.hpp"
#include "messages/uploader.hpp"
#include "runtime/http_client.hpp"
#include "runtime/metric_names.hpp"
#include "runtime/metrics.hpp"
#include "runtime/spool.hpp"
#include "upload/studio_client.hpp"

namespace spdlog {
class logger;
} // namespace spdlog

namespace gpa {

/// The uploader's full interface: the public one plus its own timers.
using uploader_impl = uploader_actor::extend<
    // A retry timer or the next step of draining a lane's spool; the number
    // is the lane (upload_lane::id). A lane has at most one pending.
    caf::reacts_to<upload_atom, uint64_t>>;

/// Settings of the uploader.
struct uploader_config {
  /// The protocol settings: server, identity, timeouts, limits, Pyroscope.
  studio_settings studio;
  /// Send to Performance Studio (-u); false: Pyroscope only.
  bool studio_enabled = true;
  /// Run the health check when starting.
  bool health_check = true;
  /// First retry delay; it doubles with every failure in a row...
  caf::timespan backoff_initial = std::chrono::seconds{5};
  /// ...up to this.
  caf::timespan backoff_max = std::chrono::minutes{5};
  /// Each delay is multiplied by a uniform factor in [1 - j, 1 + j].
  double backoff_jitter = 0.2;
  /// Seed of the jitter's random generator.
  uint64_t rng_seed = 0x67707261;
  /// The spool of the Pyroscope lane (the agent opens it in the
  /// "pyroscope" directory of --spool-dir); null: a profile Pyroscope
  /// cannot take now is lost.
  std::shared_ptr<rt::spool> pyroscope_spool;
};

/// What happened to the profiles of one lane. Counters only grow.
struct lane_counts {
  uint64_t sent = 0;
  /// Failed requests.
  uint64_t failed = 0;
  uint64_t spooled = 0;
  uint64_t dropped = 0;
  uint64_t retries = 0;
};

/// One backend's queue: its spool, its back-off, its counters and metrics.
struct upload_lane {
  /// Which lane (the first number of the upload_atom timer message).
  enum id_t : uint64_t { studio = 0, pyroscope = 1 };
  id_t id = studio;
  /// The backend's name, for the log.
  const char* backend = "";
  /// Profiles go to this backend.
  bool enabled = false;
  /// Pending profiles; null: none are kept.
  std::shared_ptr<rt::spool> spool;
  /// Its metrics: uploads by result, retries, spool size.
  const rt::metric::info* uploads_metric = nullptr;
  const rt::metric::info* retries_metric = nullptr;
  const rt::metric::info* spool_metric = nullptr;
  /// Failures in a row (sets the back-off).
  uint32_t attempt = 0;
  /// What the lane's pending upload_atom message is for.
  enum class step { none, drain, retry };
  step pending = step::none;
  lane_counts counts;

  /// Profiles waiting in the spool.
  size_t waiting() const {
    return spool ? spool->count() : 0;
  }
};

/// The uploader's state; the handlers of uploader() delegate here.
struct uploader_state {
  static inline const char* name = "uploader";

  uploader_impl::pointer self = nullptr;
  /// Performance Studio's lane and Pyroscope's.
  upload_lane studio;
  upload_lane pyroscope;
  /// Where the upload counters go; may be null.
  std::shared_ptr<rt::metrics> metrics;
  uploader_config cfg;
  std::shared_ptr<spdlog::logger> log;
  /// The protocols over `http`.
  std::unique_ptr<studio_client> client;
  /// The jitter's generator, seeded with cfg.rng_seed.
  std::mt19937_64 rng;

  /// Profiles folded to fit the size limit.
  uint64_t folded = 0;

  /// Health check, then the spools of a previous run.
  void on_start();

  /// A new profile: to each enabled lane, sent now or spooled behind the
  /// older ones.
  void on_profile(profile& p);

  /// A retry timer fired or a drain step is due in lane `lane`.
  void on_step(uint64_t lane);

  /// Memory pressure.
  void on_pressure(const pressure_event& ev);

  /// Current counters.
  uploader_stats stats() const;

  /// The nominal delay before retry number `n` (1-based), without jitter:
  /// backoff_initial * 2^(n-1), capped at backoff_max.
  caf::timespan nominal_delay(uint32_t n) const;

  /// The delay before retry `n` with jitter drawn from the seeded generator.
  caf::timespan jittered_delay(uint32_t n);

private:
  void offer(upload_lane& l, const profile& p);
  void drain_one(upload_lane& l);
  void store(upload_lane& l, const profile& p);
  void schedule_retry(upload_lane& l);
  void schedule_drain(upload_lane& l);
  /// Counts and logs a profile that `l`'s backend accepted (`spooled`: it
  /// came from the spool).
  void log_sent(upload_lane& l, const profile& p, const submit_outcome& out,
                bool spooled);
  /// Sends one profile to the lane's backend; counts failed requests and
  /// folds.
  submit_outcome submit(upload_lane& l, const profile& p);
  /// Counts `n` profiles of lane `l` with upload result `result`.
  void count(upload_lane& l, rt::metric::upload_result result, uint64_t n = 1);
  void update_spool_gauge(upload_lane& l);
};

/// The behaviour. Spawn with spawn_uploader() (detached) in the agent, or
/// `sys.spawn(uploader, ...)` in the simulation. `spool` is Performance
/// Studio's spool (Pyroscope's is cfg.pyroscope_spool); it may be null (no
/// spooling: a profile that cannot go is dropped); `metrics` may be null.
uploader_impl::behavior_type
uploader(uploader_impl::stateful_pointer<uploader_state> self,
         std::shared_ptr<rt::http_client> http,
         std::shared_ptr<rt::spool> spool, std::shared_ptr<rt::metrics> metrics,
         uploader_config cfg);

/// Builds the uploader's settings from the agent's options: server, token,
/// service, timeouts, session schedule, Pyroscope, sampling frequency.
/// `hostname` and `spawn_time_ms` (ms since the epoch) identify this agent;
/// the wall clock for the "timestamp" query is std::chrono::system_clock.
uploader_config make_uploader_config(const agent_options& opts,
                                     std::string hostname,
                                     int64_t spawn_time_ms);

/// The spool's bounds from the upload options (--spool-max-size,
/// --spool-max-files).
rt::spool_limits make_spool_limits(const upload_options& opts);

/// The HTTP client's settings from the upload options (TLS verification,
/// CA bundle, the token as a secret to redact). Logs a warning when
/// --no-verify turns verification off.
rt::http_client_options make_http_options(const upload_options& opts);

/// Spawns the uploader detached (its own thread: HTTP calls block).
/// To stop it quickly while a request may be in flight, call
/// `http->interrupt()` before sending the exit: the request fails at once
/// and its profile goes to the spool.
uploader_actor spawn_uploader(caf::actor_system& sys,
                              std::shared_ptr<rt::http_client> http,
                              std::shared_ptr<rt::spool> spool,
                              std::shared_ptr<rt::metrics> metrics,
                              uploader_config cfg);

} // namespace gpa

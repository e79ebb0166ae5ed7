#pragma once

// The uploader: sends every finished profile to gProfiler Performance Studio
// and, if configured, to Pyroscope over one reused HTTP session, and loses
// none across backend outages, agent restarts and crashes.
//
// Its spools are a write-ahead log: a profile is stored in the spool of
// every backend before anything else happens to it (before the output
// writer, the next sink, gets it, and before its first send), and an entry
// is removed only once its backend accepted it. A kill -9 at any instant
// loses nothing that was stored; after a restart the spools are sent first,
// oldest first.
//
// Each backend is a lane with its own spool and back-off, so that one being
// down neither blocks nor loses the other's profiles. A profile that cannot
// go now (no connection, timeout, reset, 5xx, 408, 429) stays in the spool
// and is retried with exponential back-off and jitter; once an upload
// succeeds the spool is drained oldest first, one request at a time, so the
// server sees the profiles in order. A 4xx other than 408/413/429 is
// permanent: the entry is dropped and the log says so. For Performance
// Studio a 413, or a body over the limit, triggers the size rule (see
// docs/upload.md).
//
// HTTP calls block, so they run on the uploader's own sender (a work queue
// with one thread): the actor itself never blocks on the network, stores
// new profiles at once and answers at once, even while a request hangs. The
// deterministic simulation gives it an inline queue and a scripted
// http_client; timers are delayed_send, so simulated time drives the
// back-off.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/timespan.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "config/intervals.hpp"
#include "config/options.hpp"
#include "messages/profile.hpp"
#include "messages/uploader.hpp"
#include "runtime/http_client.hpp"
#include "runtime/metric_names.hpp"
#include "runtime/metrics.hpp"
#include "runtime/spool.hpp"
#include "runtime/work_queue.hpp"
#include "upload/studio_client.hpp"

namespace spdlog {
class logger;
} // namespace spdlog

namespace gpa {

/// The uploader's full interface: the public one plus its own messages.
using uploader_impl = uploader_actor::extend<
    // A retry timer or the next step of draining a lane's spool; the number
    // is the lane (upload_lane::id). A lane has at most one pending.
    caf::reacts_to<upload_atom, uint64_t>,
    // The sender finished an attempt.
    caf::reacts_to<done_atom, upload_result>>;

/// Settings of the uploader.
struct uploader_config {
  /// The protocol settings: server, identity, timeouts, limits, Pyroscope.
  studio_settings studio;
  /// Send to Performance Studio (-u); false: Pyroscope only.
  bool studio_enabled = true;
  /// Run the health check when starting.
  bool health_check = true;
  /// First retry delay; it doubles with every failure in a row...
  caf::timespan backoff_initial{intervals::upload_retry_initial};
  /// ...up to this.
  caf::timespan backoff_max{intervals::upload_retry_max};
  /// Each delay is multiplied by a uniform factor in [1 - j, 1 + j].
  double backoff_jitter = 0.2;
  /// Seed of the jitter's random generator.
  uint64_t rng_seed = 0x67707261;
  /// Where each profile goes once it is stored (the output writer); null:
  /// nowhere.
  profile_sink_actor next;
};

/// The OS effects of the uploader.
struct uploader_effects {
  /// The HTTP session (shared, so that its owner can interrupt it).
  std::shared_ptr<rt::http_client> http;
  /// The spools of Performance Studio and Pyroscope; null: an in-memory
  /// spool (nothing survives the agent).
  std::shared_ptr<rt::spool> studio_spool;
  std::shared_ptr<rt::spool> pyroscope_spool;
  /// Runs the blocking HTTP calls, one at a time, in order.
  std::shared_ptr<rt::work_queue> sender;
  /// Where the upload counters go; may be null.
  std::shared_ptr<rt::metrics> metrics;
};

/// What happened to the profiles of one lane. Counters only grow.
struct lane_counts {
  uint64_t sent = 0;
  /// Failed requests.
  uint64_t failed = 0;
  /// Profiles that could not go at once and waited in the spool for a retry.
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
  /// Pending profiles, oldest first.
  std::shared_ptr<rt::spool> spool;
  /// Its metrics: uploads by result, retries, spool size.
  const rt::metric::info* uploads_metric = nullptr;
  const rt::metric::info* retries_metric = nullptr;
  const rt::metric::info* spool_metric = nullptr;
  /// Failures in a row (sets the back-off).
  uint32_t attempt = 0;
  /// What the lane waits for: nothing, its drain step message, its retry
  /// timer, or the sender's answer.
  enum class step { none, drain, retry, sending };
  step pending = step::none;
  /// Entries up to this sequence number were counted as spooled (waiting).
  uint64_t counted_waiting = 0;
  lane_counts counts;

  /// Profiles waiting in the spool.
  size_t waiting() const {
    return spool ? spool->count() : 0;
  }
};

/// What the sender thread knows of the HTTP session, read by stats().
struct session_info {
  std::atomic<uint64_t> connections_opened{0};
  std::atomic<uint64_t> recycles{0};
  std::mutex mtx;
  /// The gpid Performance Studio gave last.
  std::string gpid;
};

/// The uploader's state; the handlers of uploader() delegate here.
struct uploader_state {
  static inline const char* name = "uploader";

  uploader_impl::pointer self = nullptr;
  /// Performance Studio's lane and Pyroscope's.
  upload_lane studio;
  upload_lane pyroscope;
  uploader_config cfg;
  uploader_effects fx;
  std::shared_ptr<spdlog::logger> log;
  /// The protocols over fx.http; used on the sender only.
  std::shared_ptr<studio_client> client;
  std::shared_ptr<session_info> session = std::make_shared<session_info>();
  /// The jitter's generator, seeded with cfg.rng_seed.
  std::mt19937_64 rng;
  /// Profiles folded to fit the size limit.
  uint64_t folded = 0;
  /// Shutting down: no new sends; these wait for the one in flight.
  bool stopping = false;
  std::vector<caf::typed_response_promise<bool>> stop_waiters;

  /// Health check, then the spools of a previous run.
  void on_start();

  /// A new profile: stored in each enabled lane's spool, handed on to the
  /// next sink, then sent by the lanes that are idle. Returns whether it is
  /// on disk in every lane.
  bool on_profile(profile& p);

  /// A retry timer fired or a drain step is due in lane `lane`.
  void on_step(uint64_t lane);

  /// The sender finished an attempt.
  void on_sent(const upload_result& r);

  /// Memory pressure.
  void on_pressure(const pressure_event& ev);

  /// Shutting down: `promise` is delivered once no upload is in flight.
  void on_shutdown(caf::typed_response_promise<bool> promise);

  /// Current counters.
  uploader_stats stats() const;

  /// The nominal delay before retry number `n` (1-based), without jitter:
  /// backoff_initial * 2^(n-1), capped at backoff_max.
  caf::timespan nominal_delay(uint32_t n) const;

  /// The delay before retry `n` with jitter drawn from the seeded generator.
  caf::timespan jittered_delay(uint32_t n);

private:
  upload_lane& lane(uint64_t id) {
    return id == upload_lane::pyroscope ? pyroscope : studio;
  }
  /// Stores `p` in `l`'s spool; returns whether it is on disk.
  bool store(upload_lane& l, const profile& p);
  /// Sends the oldest entry of `l`, if any and if `l` is idle.
  void drain_one(upload_lane& l);
  void schedule_retry(upload_lane& l);
  void schedule_drain(upload_lane& l);
  /// Counts the entries of `l` not counted yet as waiting (spooled).
  void count_waiting(upload_lane& l);
  /// Drops entry `seq` of `l` for good, saying why.
  void give_up(upload_lane& l, uint64_t seq, const std::string& what);
  /// Counts `n` profiles of lane `l` with upload result `result`.
  void count(upload_lane& l, rt::metric::upload_result result, uint64_t n = 1);
  void update_spool_gauge(upload_lane& l);
  /// Whether an attempt is in flight in either lane.
  bool sending() const;
  /// Answers the shutdown waiters if nothing is in flight.
  void maybe_stopped();
};

/// The behaviour. Spawn detached in the agent (the spool's writes are file
/// I/O), or `sys.spawn(uploader, ...)` in the simulation.
uploader_impl::behavior_type
uploader(uploader_impl::stateful_pointer<uploader_state> self,
         uploader_effects fx, uploader_config cfg);

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

} // namespace gpa

#pragma once

// The uploader's protocol: it takes finished profiles (like the output
// writer), acts on memory pressure, and reports what it did. See
// actors/uploader.hpp for the behaviour.

#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "messages/fwd.hpp"
#include "messages/monitor.hpp"
#include "messages/profile.hpp"

namespace gpa {

/// What the uploader did since it started. Counters only grow.
struct uploader_stats {
  /// Profiles Performance Studio accepted.
  uint64_t sent = 0;
  /// Upload attempts that failed (transport error or HTTP error status).
  uint64_t failed = 0;
  /// Profiles written to the spool to be sent later.
  uint64_t spooled = 0;
  /// Profiles given up: refused for good by the server (4xx), too large
  /// even after folding, unreadable in the spool, or pushed out of a full
  /// spool.
  uint64_t dropped = 0;
  /// Retries scheduled after a failure.
  uint64_t retries = 0;
  /// TCP connections the HTTP session opened (1 while one is reused).
  uint64_t connections_opened = 0;
  /// Times the HTTP session was recycled (schedule, error, pressure).
  uint64_t session_recycles = 0;
  /// Profiles whose smallest stacks were folded to fit the size limit.
  uint64_t folded = 0;
  /// The same for Pyroscope: profiles accepted, failed requests, profiles
  /// spooled and dropped, and the entries in its spool now.
  uint64_t pyroscope_sent = 0;
  uint64_t pyroscope_failed = 0;
  uint64_t pyroscope_spooled = 0;
  uint64_t pyroscope_dropped = 0;
  uint64_t pyroscope_spool_files = 0;
  /// Entries in the spool now, and their bytes.
  uint64_t spool_files = 0;
  uint64_t spool_bytes = 0;
  /// Whether a retry is scheduled (back-off active).
  bool backing_off = false;
  /// The gpid Performance Studio gave us last; empty before the first.
  std::string gpid;
};

/// @relates uploader_stats
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, uploader_stats& x) {
  return f(caf::meta::type_name("uploader_stats"), x.sent, x.failed, x.spooled,
           x.dropped, x.retries, x.connections_opened, x.session_recycles,
           x.folded, x.pyroscope_sent, x.pyroscope_failed, x.pyroscope_spooled,
           x.pyroscope_dropped, x.pyroscope_spool_files, x.spool_files,
           x.spool_bytes, x.backing_off, x.gpid);
}

/// How one upload attempt of a spooled profile ended: what the uploader's
/// sender thread reports back to the uploader.
struct upload_result {
  /// The lane (Performance Studio or Pyroscope) and its spool entry.
  uint64_t lane = 0;
  uint64_t seq = 0;
  uint64_t snapshot_id = 0;
  /// 0 sent, 1 try again later, 2 refused for good (upload::submit_status).
  uint8_t status = 1;
  /// Why it failed (no secrets).
  std::string reason;
  /// Requests that failed during the attempt.
  uint32_t failed_requests = 0;
  /// Whether the size rule folded stacks; the gzip body's size.
  bool folded = false;
  uint64_t body_bytes = 0;
};

/// @relates upload_result
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, upload_result& x) {
  return f(caf::meta::type_name("upload_result"), x.lane, x.seq, x.snapshot_id,
           x.status, x.reason, x.failed_requests, x.folded, x.body_bytes);
}

/// The uploader's public interface. It is a pressure_listener_actor (which
/// converts implicitly from this handle).
using uploader_actor = caf::typed_actor<
    // A finished profile: stored in the spool of every backend first (the
    // write-ahead log), then handed on to the next sink (the output writer),
    // then sent. The reply says whether it is on disk for every backend
    // (false: kept in memory only, or lost; the log says why).
    caf::replies_to<write_atom, profile>::with<bool>,
    // Memory pressure: at warning or above, recycle the HTTP session and drop
    // reusable buffers.
    caf::reacts_to<pressure_atom, pressure_event>,
    // Shutting down: start no new upload; the reply comes once none is in
    // flight (every profile not yet accepted stays in the spool).
    caf::replies_to<shutdown_atom>::with<bool>,
    // Introspection.
    caf::replies_to<stats_atom>::with<uploader_stats>>;

} // namespace gpa

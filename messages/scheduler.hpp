#pragma once

// The snapshot protocol between the scheduler, the profilers and the merger.
//
// Windows follow each other without gaps. At each tick the scheduler closes
// the window that just ended (snapshot_atom: "give me your part of window k")
// and opens the next one (start_atom: "window k+1 begins now"). A profiler
// answers every snapshot request exactly once, with its part or an error.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/timespan.hpp>
#include <caf/typed_actor.hpp>

#include "messages/fwd.hpp"
#include "messages/monitor.hpp"
#include "messages/profile.hpp"

namespace gpa {

/// A window opens: profilers that record over a window start recording.
struct window_info {
  uint64_t snapshot_id = 0;
  /// Wall-clock start, milliseconds since the Unix epoch.
  int64_t start_ms = 0;
  /// Planned length of the window.
  caf::timespan duration{0};
  /// Runtime profilers sit this window out (memory pressure).
  bool skip_runtime = false;
};

/// @relates window_info
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, window_info& x) {
  return f(caf::meta::type_name("window_info"), x.snapshot_id, x.start_ms,
           x.duration, x.skip_runtime);
}

/// A window closed: the profiler answers with its part of it.
struct snapshot_request {
  uint64_t snapshot_id = 0;
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  /// Tag for the reaper: the scheduler cancels children with this tag when
  /// the profiler misses its deadline ("snap-<id>/<profiler>").
  std::string tag;
  /// Time the profiler has left to answer.
  caf::timespan budget{0};
};

/// @relates snapshot_request
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, snapshot_request& x) {
  return f(caf::meta::type_name("snapshot_request"), x.snapshot_id, x.start_ms,
           x.end_ms, x.tag, x.budget);
}

/// What the merger gets for one snapshot: the parts that arrived in time and
/// error entries for the ones that did not.
struct merge_job {
  uint64_t snapshot_id = 0;
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  std::vector<profile_part> parts;
};

/// @relates merge_job
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, merge_job& x) {
  return f(caf::meta::type_name("merge_job"), x.snapshot_id, x.start_ms,
           x.end_ms, x.parts);
}

/// What the merger made of a snapshot.
struct merge_summary {
  uint64_t snapshot_id = 0;
  uint64_t total_samples = 0;
  uint64_t stacks = 0;
  uint64_t bytes = 0;
};

/// @relates merge_summary
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, merge_summary& x) {
  return f(caf::meta::type_name("merge_summary"), x.snapshot_id,
           x.total_samples, x.stacks, x.bytes);
}

/// The scheduler's counters.
struct scheduler_stats {
  uint64_t snapshots_done = 0;
  uint64_t ticks_skipped = 0;
  uint64_t late_parts = 0;
  uint64_t timeouts = 0;
  /// Snapshots merged without exactly one entry (part, timeout or skip) per
  /// profiler. Always 0; the simulation holds it to that.
  uint64_t incomplete = 0;
  /// Snapshots in the recording and collecting states (each 0 or 1).
  uint32_t recording = 0;
  uint32_t collecting = 0;
  uint32_t merging = 0;
};

/// @relates scheduler_stats
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, scheduler_stats& x) {
  return f(caf::meta::type_name("scheduler_stats"), x.snapshots_done,
           x.ticks_skipped, x.late_parts, x.timeouts, x.incomplete, x.recording,
           x.collecting, x.merging);
}

/// Every profiler (perf, java, python, ...).
using profiler_actor = caf::typed_actor<
    // Gets ready (finds a working event, starts recording tools). Replies
    // with an empty string when ready, else with why it cannot profile; it
    // then answers every snapshot with that error.
    caf::replies_to<prepare_atom>::with<std::string>,
    // A window begins now.
    caf::reacts_to<start_atom, window_info>,
    // A window ended: reply with the part for it.
    caf::replies_to<snapshot_atom, snapshot_request>::with<profile_part>>;

/// The merger.
using merger_actor = caf::typed_actor<
    // Builds the profile of a snapshot, hands it to the sinks, replies when
    // the sinks have it.
    caf::replies_to<merge_atom, merge_job>::with<merge_summary>,
    // Memory pressure: drop caches.
    caf::reacts_to<pressure_atom, pressure_event>>;

/// The scheduler.
using scheduler_actor = caf::typed_actor<
    // Starts ticking (the first window opens now).
    caf::reacts_to<start_atom>,
    // Introspection.
    caf::replies_to<stats_atom>::with<scheduler_stats>,
    // Memory pressure: skip runtime profilers, cancel the slowest profiler.
    caf::reacts_to<pressure_atom, pressure_event>,
    // Ends the session: no window opens any more. `true` closes the window
    // in progress now, `false` lets it run to its planned end. Replies once
    // the last window's profile is merged (at once if none is in flight).
    caf::replies_to<finish_atom, bool>::with<bool>>;

} // namespace gpa

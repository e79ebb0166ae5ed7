#pragma once

// The scheduler: owns the snapshot state machine.
//
// Windows follow each other on a fixed cadence (ticks at T0 + n * duration on
// the monotonic clock, so there is no drift). A snapshot goes
//   recording (its window is open) -> collecting (window closed, waiting for
//   the profilers' parts until its deadline) -> merging -> done.
// At most one snapshot records and at most one collects at any time. A tick
// that finds the previous snapshot still collecting applies the overlap
// policy: `cut` ends that snapshot now (its laggards get a timeout error
// stack and their children are cancelled through the reaper), `skip` lets it
// keep its deadline and extends the current window to the next tick.
// A part that arrives after its snapshot is done is dropped and counted. A
// profiler that fails several snapshots in a row backs off exponentially.

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <caf/actor_clock.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "config/options.hpp"
#include "messages/reaper.hpp"
#include "messages/scheduler.hpp"
#include "runtime/metrics.hpp"

namespace spdlog {
class logger;
} // namespace spdlog

namespace gpa {

/// The scheduler's full interface: the public one plus its own timers.
using scheduler_impl = scheduler_actor::extend<
    // The n-th tick since start.
    caf::reacts_to<tick_atom, uint64_t>,
    // The collection deadline of a snapshot.
    caf::reacts_to<deadline_atom, uint64_t>>;

/// A profiler as the scheduler sees it.
struct profiler_slot {
  std::string name;
  profiler_actor handle;
  /// Runtime profilers are skipped under critical memory pressure.
  bool runtime = false;
  /// Failures in a row, and the snapshot ID before which it rests.
  uint32_t failures = 0;
  uint64_t backoff_until = 0;
  /// What the last failure was ("timed out", "failed", ...).
  std::string last_failure;
  /// Snapshots the profiler has outstanding requests for.
  std::set<uint64_t> outstanding;
};

/// Settings of the scheduler: the user's options as parsed (each default is
/// written once, in config/options.hpp) plus the scheduler's effects.
struct scheduler_config {
  /// -d, -c, the grace, the overlap policy and the back-off (--pids and -f
  /// are the profilers').
  scheduler_options opts;
  /// Wall-clock time (ms since the epoch) at the moment of start_atom; wall
  /// times of windows derive from it and the actor clock.
  std::function<int64_t()> wall_clock_ms;
  /// Called once, after the last snapshot of a one-shot run was merged.
  std::function<void()> on_done;
  /// Called when each window starts (--heartbeat-file); must not block.
  std::function<void(uint64_t)> on_window;
};

/// A profiler that sits a window out, and the error entry it gets.
struct skipped_profiler {
  std::string profiler;
  std::string what;
  std::string reason;
};

/// One snapshot in flight.
struct snapshot_rec {
  uint64_t id = 0;
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  caf::actor_clock::time_point opened;
  /// When the window closed (start of collecting).
  caf::actor_clock::time_point closed;
  /// Profilers asked to record this window.
  std::vector<std::string> participants;
  /// Profilers that sit this window out, with why (their error stack).
  std::vector<skipped_profiler> skipped;
  /// Profilers whose part is still missing (collecting only).
  std::set<std::string> waiting;
  std::vector<profile_part> parts;
};

/// The scheduler's state; the handlers delegate here.
struct scheduler_state {
  static inline const char* name = "scheduler";

  scheduler_impl::pointer self = nullptr;
  scheduler_config cfg;
  std::vector<profiler_slot> profilers;
  merger_actor merger;
  reaper_actor reaper;
  std::shared_ptr<rt::metrics> metrics;
  std::shared_ptr<spdlog::logger> log;

  caf::actor_clock::time_point t0;
  int64_t wall0_ms = 0;
  uint64_t next_id = 1;
  std::optional<snapshot_rec> recording;
  std::optional<snapshot_rec> collecting;
  uint32_t merging = 0;
  bool started = false;
  bool done = false;
  /// Memory pressure at or above critical: runtime profilers sit out.
  bool skip_runtime = false;
  /// finish_atom arrived: no window opens any more; the promises are kept
  /// once nothing is in flight.
  bool closing = false;
  std::vector<caf::typed_response_promise<bool>> finish_promises;
  scheduler_stats stats;

  /// Starts the cadence; the first window opens now.
  void start();

  /// The n-th tick: close the recording window, open the next one.
  void on_tick(uint64_t n);

  /// A profiler answered (or its request failed).
  void on_part(const std::string& profiler, uint64_t id, profile_part part);

  /// A snapshot's collection deadline.
  void on_deadline(uint64_t id);

  /// Memory pressure changed.
  void on_pressure(const pressure_event& ev);

  /// Ends the session (see finish_atom); `now` closes the open window now.
  void on_finish(bool now, caf::typed_response_promise<bool> promise);

  /// Current counters.
  scheduler_stats current_stats() const;

private:
  int64_t wall_now() const;
  void open_window();
  void close_window();
  void cut(const char* why);
  /// A merge request was answered (either way).
  void merged();
  /// Keeps the finish promises once nothing is in flight.
  void check_finished();
  void finish_collecting();
  profiler_slot* find(const std::string& name);
  bool resting(const profiler_slot& p, uint64_t id) const;

  /// Failures in a row after which a profiler rests (at least 1).
  uint32_t backoff_after() const {
    return static_cast<uint32_t>(
        std::clamp<int64_t>(cfg.opts.backoff_after_failures, 1, 1 << 30));
  }

  /// Longest rest, in windows (at least 1).
  uint64_t backoff_max() const {
    return static_cast<uint64_t>(
        std::max<int64_t>(cfg.opts.backoff_max_snapshots, 1));
  }
  void count_failure(profiler_slot& p, uint64_t id, bool failed,
                     const std::string& what);
};

/// Spawns as `sys.spawn(scheduler, cfg, profilers, merger, reaper, metrics)`.
scheduler_impl::behavior_type
scheduler(scheduler_impl::stateful_pointer<scheduler_state> self,
          scheduler_config cfg, std::vector<profiler_slot> profilers,
          merger_actor merger, reaper_actor reaper,
          std::shared_ptr<rt::metrics> metrics);

} // namespace gpa

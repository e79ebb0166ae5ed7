#pragma once

// The memory monitor's protocol: footprint samples, per-window statistics,
// pressure levels, and the events that tell other actors to shed load. See
// actors/memory_monitor.hpp for the behaviour and the hysteresis rule.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "messages/fwd.hpp"

namespace gpa {

/// How much memory pressure the agent is under, from its own thresholds.
/// Each level's actions include those of the levels below it.
enum class pressure_level : uint8_t {
  normal = 0,
  /// Drop caches, recycle the HTTP session.
  warning = 1,
  /// Also skip the runtime profilers for the next snapshot.
  critical = 2,
  /// Also kill the slowest profiler's children; restart perf if bloated.
  emergency = 3,
};

/// Returns "normal", "warning", "critical" or "emergency".
std::string to_string(pressure_level x);

/// Which measure put the agent at its pressure level.
enum class pressure_cause : uint8_t {
  /// No pressure.
  none = 0,
  /// The RSS of the agent's main process.
  agent = 1,
  /// The RSS of the agent's whole process tree.
  tree = 2,
  /// Both measures are at this level.
  both = 3,
};

/// Returns "none", "agent", "tree" or "both".
std::string to_string(pressure_cause x);

/// One process of the agent's tree (a child, grandchild, ...).
struct child_usage {
  /// Process ID.
  int32_t pid = 0;
  /// Parent process ID.
  int32_t ppid = 0;
  /// Resident set size in KiB.
  uint64_t rss_kb = 0;
  /// The command name from /proc/<pid>/stat (may hold any character).
  std::string comm;
};

/// @relates child_usage
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, child_usage& x) {
  return f(caf::meta::type_name("child_usage"), x.pid, x.ppid, x.rss_kb,
           x.comm);
}

/// Published whenever the pressure level changes (after hysteresis), and
/// sent once to a new subscriber if the level is not normal.
///
/// Listeners follow `level` for what holds while pressure lasts (e.g. skip
/// runtime profilers while level >= critical) and do a level's one-shot
/// actions (drop caches, recycle the HTTP session, kill the slowest
/// profiler's children, restart a bloated perf) only when
/// `action_due(that level)` is true. An episode runs from leaving `normal`
/// to returning to it; each level's actions are due once per episode, on the
/// first rise to that level or above (a jump from normal to emergency makes
/// warning, critical and emergency due at once).
struct pressure_event {
  /// The new level.
  pressure_level level = pressure_level::normal;
  /// The level before this change.
  pressure_level previous = pressure_level::normal;
  /// RSS of the agent process and of its whole process tree, in KiB.
  uint64_t agent_rss_kb = 0;
  uint64_t tree_rss_kb = 0;
  /// RSS of the largest child, and its PID (0 if none).
  uint64_t largest_child_rss_kb = 0;
  int32_t largest_child_pid = 0;
  /// Which measure is at `level`.
  pressure_cause cause = pressure_cause::none;
  /// The threshold of `level` that `cause` passed, in KiB (0 at normal; for
  /// `both`, the agent's).
  uint64_t threshold_kb = 0;
  /// Episode number, counting from 1; 0 before the first episode.
  uint64_t episode = 0;
  /// Bit L set: the actions of level L became due with this event (bit 0 is
  /// never set). Use action_due().
  uint8_t actions_due = 0;
  /// The largest descendants by RSS, largest first (perf's PID and RSS are
  /// here when perf is among them).
  std::vector<child_usage> largest_children;

  /// Returns whether the listener should do the actions of `x` now.
  bool action_due(pressure_level x) const {
    return ((actions_due >> static_cast<unsigned>(x)) & 1u) != 0;
  }
};

/// @relates pressure_event
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pressure_event& x) {
  return f(caf::meta::type_name("pressure_event"), x.level, x.previous,
           x.agent_rss_kb, x.tree_rss_kb, x.largest_child_rss_kb,
           x.largest_child_pid, x.cause, x.threshold_kb, x.episode,
           x.actions_due, x.largest_children);
}

// pressure_listener_actor (anything that acts on memory pressure: merger,
// uploader, scheduler) is defined in messages/fwd.hpp, next to its type ID:
//   caf::typed_actor<caf::reacts_to<pressure_atom, pressure_event>>

/// One reading of the agent's footprint, taken every monitor interval.
struct resource_sample {
  /// Sample number, from 1.
  uint64_t seq = 0;
  /// Actor-clock time of the sample, nanoseconds since the clock's epoch.
  int64_t time_ns = 0;
  /// The agent process.
  int32_t pid = 0;
  /// RSS of the agent process, in KiB.
  uint64_t agent_rss_kb = 0;
  /// Open descriptors (-1 if /proc/<pid>/fd could not be read).
  int64_t fds = 0;
  /// Threads of the agent process.
  int64_t threads = 0;
  /// RSS of the agent plus every descendant, in KiB.
  uint64_t tree_rss_kb = 0;
  /// Live descendants (children, grandchildren, ...), zombies included.
  uint32_t children = 0;
  /// Direct children only.
  uint32_t direct_children = 0;
  /// The largest descendant (PID 0 if none) and its RSS in KiB.
  int32_t largest_child_pid = 0;
  uint64_t largest_child_rss_kb = 0;
  /// Host CPU busy percent since the previous sample, -1 if unknown.
  double host_cpu_percent = -1;
  /// Host memory used percent, -1 if unknown.
  double host_mem_percent = -1;
  /// The pressure level after this sample.
  pressure_level level = pressure_level::normal;
};

/// @relates resource_sample
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, resource_sample& x) {
  return f(caf::meta::type_name("resource_sample"), x.seq, x.time_ns, x.pid,
           x.agent_rss_kb, x.fds, x.threads, x.tree_rss_kb, x.children,
           x.direct_children, x.largest_child_pid, x.largest_child_rss_kb,
           x.host_cpu_percent, x.host_mem_percent, x.level);
}

/// Minimum, mean and maximum of one measure over a window.
struct usage_range {
  /// Smallest value.
  double min = 0;
  /// Mean of the samples.
  double avg = 0;
  /// Largest value.
  double max = 0;
};

/// @relates usage_range
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, usage_range& x) {
  return f(caf::meta::type_name("usage_range"), x.min, x.avg, x.max);
}

/// What the monitor saw in one snapshot window (since the previous
/// window_atom request, or since it started).
struct window_stats {
  /// Samples in the window (all ranges are zero if none).
  uint32_t samples = 0;
  /// Window start and end on the actor clock, nanoseconds since its epoch.
  int64_t start_ns = 0;
  int64_t end_ns = 0;
  /// RSS of the agent and of its tree, in KiB.
  usage_range agent_rss_kb;
  usage_range tree_rss_kb;
  /// Descriptors, threads and live descendants of the agent.
  usage_range fds;
  usage_range threads;
  usage_range children;
  /// Host CPU busy percent over the whole window (the .col header's
  /// `cpu_avg`); -1 if unknown.
  double cpu_avg = -1;
  /// Mean host memory-used percent over the window (`mem_avg`); -1 if
  /// unknown.
  double mem_avg = -1;
  /// The highest pressure level seen in the window.
  pressure_level max_level = pressure_level::normal;
};

/// @relates window_stats
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, window_stats& x) {
  return f(caf::meta::type_name("window_stats"), x.samples, x.start_ns,
           x.end_ns, x.agent_rss_kb, x.tree_rss_kb, x.fds, x.threads,
           x.children, x.cpu_avg, x.mem_avg, x.max_level);
}

// sample_listener_actor (anything that wants every footprint sample: tests, a
// status page) is defined in messages/fwd.hpp, next to its type ID:
//   caf::typed_actor<caf::reacts_to<sample_atom, resource_sample>>

/// The memory monitor's public interface.
using memory_monitor_actor = caf::typed_actor<
    // Subscribes to pressure events until the listener terminates. A
    // listener that subscribes while the level is not normal gets the
    // current state at once.
    caf::reacts_to<subscribe_atom, pressure_listener_actor>,
    // Subscribes to every sample until the listener terminates.
    caf::reacts_to<subscribe_atom, sample_listener_actor>,
    // Takes a sample now (outside the timer) and replies with it.
    caf::replies_to<sample_atom>::with<resource_sample>,
    // Closes the current window: replies with its statistics (with a host
    // CPU/memory reading taken now, so cpu_avg covers the window up to this
    // instant) and starts the next one.
    caf::replies_to<window_atom>::with<window_stats>>;

} // namespace gpa

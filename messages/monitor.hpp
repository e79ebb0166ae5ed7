#pragma once

// The memory monitor's protocol: pressure levels and the events that tell
// other actors to shed load.

#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "messages/fwd.hpp"

namespace gpa {

/// How much memory pressure the agent is under, from its own thresholds.
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

/// Published whenever the pressure level changes (after hysteresis).
struct pressure_event {
  pressure_level level = pressure_level::normal;
  pressure_level previous = pressure_level::normal;
  /// RSS of the agent process and of its whole process tree, in KiB.
  uint64_t agent_rss_kb = 0;
  uint64_t tree_rss_kb = 0;
  /// RSS of the largest child, and its PID (0 if none).
  uint64_t largest_child_rss_kb = 0;
  int32_t largest_child_pid = 0;
};

/// @relates pressure_event
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, pressure_event& x) {
  return f(caf::meta::type_name("pressure_event"), x.level, x.previous,
           x.agent_rss_kb, x.tree_rss_kb, x.largest_child_rss_kb,
           x.largest_child_pid);
}

/// Anything that acts on memory pressure (merger, uploader, scheduler).
using pressure_listener_actor
    = caf::typed_actor<caf::reacts_to<pressure_atom, pressure_event>>;

} // namespace gpa

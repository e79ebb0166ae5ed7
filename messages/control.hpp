#pragma once

// The control protocol: what starts, pauses and stops profiling sessions.
//
// A session is one scheduler with its profilers and merger, built from the
// agent's options plus, for a command of Performance Studio, the command's
// duration, frequency and pids. The controller runs at most one session at
// a time; it changes sessions only at a window boundary (a reload) or after
// closing the current window early (a stop, or an ad-hoc command that
// pauses a continuous run): the window in progress is always merged first.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "messages/fwd.hpp"

namespace gpa {

/// A command of Performance Studio's control plane (gProfiler's
/// dynamic_profiling_management), as the heartbeat client parsed it.
struct control_command {
  std::string id;
  /// "start" or "stop".
  std::string type;
  /// A start command that runs until stopped (else one window: ad-hoc).
  bool continuous = false;
  /// Window length and sampling frequency; 0: the agent's own options.
  int64_t duration_s = 0;
  int64_t frequency = 0;
  /// Processes to profile (start) or to stop profiling (a process-level
  /// stop); empty: the whole host.
  std::vector<int64_t> pids;
  /// "host" or "process" (stop commands).
  std::string stop_level = "host";
};

/// @relates control_command
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, control_command& x) {
  return f(caf::meta::type_name("control_command"), x.id, x.type, x.continuous,
           x.duration_s, x.frequency, x.pids, x.stop_level);
}

/// The controller's counters and state, for tests and the log.
struct controller_stats {
  /// Sessions started and ended so far.
  uint64_t sessions_started = 0;
  uint64_t sessions_ended = 0;
  /// The running session's number (0: none) and the command it runs (""
  /// for the agent's own options).
  uint64_t running = 0;
  std::string running_command;
  /// Whether the running session is being closed (a reload, a stop, a
  /// pause).
  bool closing = false;
  /// Commands received, run, skipped as repeats, refused.
  uint64_t commands = 0;
  uint64_t executed = 0;
  uint64_t repeats = 0;
  uint64_t refused = 0;
  /// Commands waiting (stop, ad-hoc, continuous) and whether the queued
  /// continuous command is paused for an ad-hoc one.
  uint32_t queued_stop = 0;
  uint32_t queued_adhoc = 0;
  uint32_t queued_continuous = 0;
  bool continuous_paused = false;
  /// Configuration reloads applied.
  uint64_t reloads = 0;
};

/// @relates controller_stats
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, controller_stats& x) {
  return f(caf::meta::type_name("controller_stats"), x.sessions_started,
           x.sessions_ended, x.running, x.running_command, x.closing,
           x.commands, x.executed, x.repeats, x.refused, x.queued_stop,
           x.queued_adhoc, x.queued_continuous, x.continuous_paused, x.reloads);
}

/// The controller.
using controller_actor = caf::typed_actor<
    // A command from Performance Studio.
    caf::reacts_to<command_atom, control_command>,
    // The agent's options changed (SIGHUP): the running session is rebuilt
    // with them at its next window boundary.
    caf::reacts_to<reload_atom>,
    // Session N ended by itself (a one-window session was merged).
    caf::reacts_to<done_atom, uint64_t>,
    // Introspection.
    caf::replies_to<stats_atom>::with<controller_stats>>;

} // namespace gpa

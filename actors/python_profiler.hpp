#pragma once

// The Python profiler: the built-in CPython reader (runtime/python_reader.hpp)
// behind the profilers' protocol. Its work is done by an rt::python_collector
// on a thread of its own (sampling every Python process at the frequency,
// reading package files at the window's end); the actor only starts and ends
// the collector's windows and answers the scheduler, never blocking.
//
// A snapshot is answered with the collector's stacks of that window, or,
// if the collector has not answered a little before the snapshot's budget
// runs out, with an error of the profiler as a whole (the window's Python
// processes keep their perf stacks).

#include <cstdint>
#include <map>
#include <memory>

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "messages/profile.hpp"
#include "messages/scheduler.hpp"
#include "runtime/python_collector.hpp"

namespace gpa {

/// The Python profiler's interface: a profiler, plus the collector's
/// answers and its own deadlines.
using python_profiler_impl
    = profiler_actor::extend<caf::reacts_to<done_atom, profile_part>,
                             caf::reacts_to<deadline_atom, uint64_t>>;

struct python_actor_state {
  static inline const char* name = "python_profiler";
  std::unique_ptr<rt::python_collector> collector;
  /// Snapshots asked for and not answered yet.
  std::map<uint64_t, caf::typed_response_promise<profile_part>> waiting;
};

/// What the Python profiler is made of.
struct python_profiler_config {
  rt::python_collector_config collector;
  /// Finds the Python processes of a window (gProfiler's rules and limits).
  rt::python_collector::target_source find;
  /// Where the processes' application metadata goes (may be null).
  std::shared_ptr<rt::app_metadata_extras> extras;
  /// Said at start, after what the profiler does (e.g. why pyperf mode is
  /// the built-in reader).
  std::string note;
};

/// Spawns as `sys.spawn(python_profiler, cfg)`.
python_profiler_impl::behavior_type
python_profiler(python_profiler_impl::stateful_pointer<python_actor_state> self,
                python_profiler_config cfg);

} // namespace gpa

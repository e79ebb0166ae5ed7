#pragma once

// Profiles and their parts: what profilers produce, what the merger builds,
// and what the output writer and the uploader consume.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "messages/fwd.hpp"

namespace gpa {

/// One collapsed stack and how many samples hit it. `stack` is
/// "comm;frame;...;frame", root frame first, as in gProfiler's .col lines
/// (without the application-metadata index and container prefix).
struct stack_count {
  std::string stack;
  uint64_t count = 0;
};

/// @relates stack_count
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stack_count& x) {
  return f(caf::meta::type_name("stack_count"), x.stack, x.count);
}

/// The stacks of one process, as one profiler saw them.
struct process_stacks {
  int32_t pid = 0;
  std::string comm;
  /// Container name, empty if none.
  std::string container;
  std::vector<stack_count> stacks;
};

/// @relates process_stacks
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, process_stacks& x) {
  return f(caf::meta::type_name("process_stacks"), x.pid, x.comm, x.container,
           x.stacks);
}

/// A profiler could not profile one process, or at all. Rendered in the
/// profile as the stack "<comm>;[Profiling <what>: <reason>] 1".
struct profiler_error {
  /// 0 if the error concerns the profiler as a whole.
  int32_t pid = 0;
  /// The process name, or the profiler name for whole-profiler errors.
  std::string comm;
  /// "timed out", "failed", ...
  std::string what;
  std::string reason;
};

/// @relates profiler_error
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, profiler_error& x) {
  return f(caf::meta::type_name("profiler_error"), x.pid, x.comm, x.what,
           x.reason);
}

/// A profiler's contribution to one snapshot.
struct profile_part {
  uint64_t snapshot_id = 0;
  /// "perf", "java", "python", ...
  std::string profiler;
  std::vector<process_stacks> processes;
  std::vector<profiler_error> errors;
};

/// @relates profile_part
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, profile_part& x) {
  return f(caf::meta::type_name("profile_part"), x.snapshot_id, x.profiler,
           x.processes, x.errors);
}

/// A finished host profile: one window, all profilers merged.
struct profile {
  uint64_t snapshot_id = 0;
  /// Window start and end, wall clock, milliseconds since the Unix epoch.
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  /// The complete .col text: "# {json header}\n" then one stack per line.
  std::string col;
  /// Samples in the profile (sum of the stack counts).
  uint64_t total_samples = 0;
  /// Host CPU and memory use over the window, in percent (header metrics).
  double cpu_avg = 0;
  double mem_avg = 0;
};

/// @relates profile
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, profile& x) {
  return f(caf::meta::type_name("profile"), x.snapshot_id, x.start_ms, x.end_ms,
           x.col, x.total_samples, x.cpu_avg, x.mem_avg);
}

/// What the output writer did with a profile.
struct write_report {
  uint64_t snapshot_id = 0;
  /// Paths written; empty if not written.
  std::string col_path;
  std::string html_path;
  /// Empty on success, else what went wrong and where.
  std::string error;
};

/// @relates write_report
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, write_report& x) {
  return f(caf::meta::type_name("write_report"), x.snapshot_id, x.col_path,
           x.html_path, x.error);
}

/// Anything that takes finished profiles: the output writer, the uploader.
using profile_sink_actor
    = caf::typed_actor<caf::reacts_to<write_atom, profile>>;

} // namespace gpa

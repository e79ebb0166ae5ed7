#pragma once

// The data a profile is made of: stacks with counts per process, the errors
// that stand for a process or profiler that could not be profiled, a
// profiler's part of a snapshot, and the finished profile. Plain structs:
// messages/profile.hpp makes them CAF messages.

#include <cstdint>
#include <string>
#include <vector>

namespace gpa {

/// One collapsed stack and how many samples hit it. `stack` is
/// "comm;frame;...;frame", root frame first, as in gProfiler's .col lines
/// (without the application-metadata index and container prefix).
struct stack_count {
  std::string stack;
  uint64_t count = 0;
};

/// The stacks of one process, as one profiler saw them.
struct process_stacks {
  int32_t pid = 0;
  std::string comm;
  /// Container name, empty if none.
  std::string container;
  std::vector<stack_count> stacks;
};

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

/// A profiler's contribution to one snapshot.
struct profile_part {
  uint64_t snapshot_id = 0;
  /// "perf", "java", "python", ...
  std::string profiler;
  std::vector<process_stacks> processes;
  std::vector<profiler_error> errors;
};

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

} // namespace gpa

#pragma once

// The merger: combines the parts of one snapshot by gProfiler's rule
// (format/col.hpp), adds the header, hands the profile to the sinks
// (output writer, uploader) and keeps nothing of it afterwards.

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "format/col.hpp"
#include "messages/monitor.hpp"
#include "messages/scheduler.hpp"

namespace spdlog {
class logger;
} // namespace spdlog

namespace gpa {

/// Settings of the merger.
struct merger_config {
  /// The header fields that do not change between snapshots.
  format::col_header header;
  /// Where cpu_avg and mem_avg come from (its window statistics, reset at
  /// each snapshot); none: the header says null.
  memory_monitor_actor monitor;
  /// Gives free heap memory back to the OS (under memory pressure); none:
  /// nothing.
  std::function<void()> release_memory;
};

/// The merger's state.
struct merger_state {
  static inline const char* name = "merger";

  merger_actor::pointer self = nullptr;
  merger_config cfg;
  std::vector<profile_sink_actor> sinks;
  std::shared_ptr<spdlog::logger> log;

  /// Builds the profile of `job` with the host's CPU and memory use over
  /// its window (negative: unknown), hands it to the sinks and returns what
  /// it made.
  merge_summary merge(merge_job& job, double cpu_avg, double mem_avg);
};

/// Spawns as `sys.spawn(merger, cfg, sinks)`.
merger_actor::behavior_type
merger(merger_actor::stateful_pointer<merger_state> self, merger_config cfg,
       std::vector<profile_sink_actor> sinks);

} // namespace gpa

#pragma once

// The merger: combines the parts of one snapshot by gProfiler's rule
// (actors/format/col.hpp), adds the header, hands the profile to the sinks
// (output writer, uploader) and keeps nothing of it afterwards.

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/format/col.hpp"
#include "messages/scheduler.hpp"

namespace spdlog {
class logger;
} // namespace spdlog

namespace gpa {

/// Host CPU and memory use, in percent, averaged over [start_ms, end_ms].
using load_source = std::function<std::pair<double, double>(int64_t start_ms,
                                                            int64_t end_ms)>;

/// Settings of the merger.
struct merger_config {
  /// The header fields that do not change between snapshots.
  format::col_header header;
  /// Where cpu_avg and mem_avg come from; none: zeros.
  load_source load;
};

/// The merger's state.
struct merger_state {
  static inline const char* name = "merger";

  merger_config cfg;
  std::vector<profile_sink_actor> sinks;
  std::shared_ptr<spdlog::logger> log;

  /// Builds the profile of `job`; `stacks` receives the number of lines.
  profile build(merge_job& job, uint64_t& stacks);
};

/// Spawns as `sys.spawn(merger, cfg, sinks)`.
merger_actor::behavior_type
merger(merger_actor::stateful_pointer<merger_state> self, merger_config cfg,
       std::vector<profile_sink_actor> sinks);

} // namespace gpa

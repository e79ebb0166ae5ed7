#pragma once

// The merger: combines the parts of one snapshot by gProfiler's rule
// (format/col.hpp), adds the header, hands the profile on (to the uploader,
// which stores it and passes it to the output writer, or to the writer
// alone) and keeps nothing of it afterwards.

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
#include "messages/uploader.hpp"

namespace gpa::rt {
class process_enricher;
} // namespace gpa::rt

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
  /// false (--disable-metrics-collection): the monitor is not asked and
  /// cpu_avg and mem_avg are null, in the header and the upload.
  bool collect_metrics = true;
  /// The header's cloud metadata when the profile is made (the background
  /// lookup's answer, "unknown" until it has one); none: `header.cloud`.
  std::function<format::cloud_metadata()> cloud;
  /// Gives free heap memory back to the OS (under memory pressure); none:
  /// nothing.
  std::function<void()> release_memory;
  /// Where each profile goes: the uploader, which stores it in its
  /// write-ahead spool and then hands it on to the output writer; or, with
  /// no uploads, the writer directly. Either may be null.
  uploader_actor uploader;
  profile_sink_actor writer;
  /// Adds each process's container, app id and application metadata to its
  /// stacks and the header; none: no enrichment (empty container fields,
  /// no app ids, application metadata [null]).
  std::shared_ptr<rt::process_enricher> enricher;
};

/// The merger's state.
struct merger_state {
  static inline const char* name = "merger";

  merger_actor::pointer self = nullptr;
  merger_config cfg;
  std::shared_ptr<spdlog::logger> log;

  /// Builds the profile of `job` with the host's CPU and memory use over
  /// its window (negative: unknown), hands it on and returns what it made.
  merge_summary merge(merge_job& job, double cpu_avg, double mem_avg);
};

/// Spawns as `sys.spawn(merger, cfg)`.
merger_actor::behavior_type
merger(merger_actor::stateful_pointer<merger_state> self, merger_config cfg);

} // namespace gpa

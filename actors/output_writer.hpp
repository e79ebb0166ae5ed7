#pragma once

// The output writer: puts each profile into the output directory as
// profile_<ISO 8601 end time>.col (and .html unless --no-flamegraph),
// replaces last_profile.col / last_flamegraph.html atomically, and with
// --rotating-output keeps only the newest files. A missing, unwritable or
// full directory is logged and the agent goes on. File writes block, so the
// real system spawns it detached.

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "config/options.hpp"
#include "messages/profile.hpp"
#include "runtime/files.hpp"

namespace spdlog {
class logger;
} // namespace spdlog

namespace gpa {

/// Renders the flame-graph page of a .col text.
using page_renderer = std::function<std::string(std::string_view col)>;

/// Counters of the output writer.
struct writer_counts {
  uint64_t written = 0;
  uint64_t failed = 0;
};

/// The output writer's interface: a profile sink plus a request that, being
/// answered in mailbox order, tells that everything before it is written.
using output_writer_actor = profile_sink_actor::extend<
    caf::replies_to<stats_atom>::with<uint64_t, uint64_t>>;

/// Settings of the output writer.
struct writer_config {
  /// The user's options: the directory, rotation and how many profiles it
  /// keeps (--no-flamegraph is render_page left empty).
  output_options opts;
  /// None: no .html files.
  page_renderer render_page;
  /// Called after each profile is written, when the snapshot's burst of
  /// allocations is over (malloc_trim in the agent); none: nothing.
  std::function<void()> release_memory;
};

/// What the output writer did with a profile (its own bookkeeping, not a
/// message).
struct write_report {
  uint64_t snapshot_id = 0;
  /// Paths written; empty if not written.
  std::string col_path;
  std::string html_path;
  /// Empty on success, else what went wrong and where.
  std::string error;
};

/// The writer's state.
struct writer_state {
  static inline const char* name = "output_writer";

  writer_config cfg;
  std::shared_ptr<rt::file_system> fs;
  std::shared_ptr<spdlog::logger> log;
  writer_counts counts;
  /// The cause of the last error, logged once until a write succeeds again
  /// or the cause changes; and the failures since the last success.
  std::string last_error;
  uint64_t failed_in_episode = 0;

  /// Writes one profile; returns what was written or the error.
  write_report write(const profile& p);

private:
  caf::error write_one(const std::string& name, std::string_view content,
                       const std::string& link);
  void rotate();
};

/// Spawns as `sys.spawn<caf::detached>(output_writer, cfg, fs)`.
output_writer_actor::behavior_type
output_writer(output_writer_actor::stateful_pointer<writer_state> self,
              writer_config cfg, std::shared_ptr<rt::file_system> fs);

} // namespace gpa

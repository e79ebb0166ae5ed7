#pragma once

// gProfiler's .col format: merging the parts of a snapshot by gProfiler's
// rule and writing the "# {json}" header and the stack lines.
//
// Merge rule (gProfiler's): for a process that a runtime profiler (Java,
// Python, ...) profiled, its runtime stacks replace perf's native stacks,
// scaled so that they add up to the number of samples perf took of that
// process (largest-remainder rounding, so the totals match exactly). If perf
// saw no samples of it, the runtime stacks are kept as they are. Processes
// only perf saw keep perf's stacks. Every error becomes one stack
// "<comm>;[Profiling <what>: <reason>]" with count 1.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "format/collapse.hpp"
#include "format/host.hpp"
#include "format/profile.hpp"

namespace gpa::format {

/// One line of a profile before the prefix: application-metadata index,
/// container and "comm;frames".
struct merged_stack {
  std::string container;
  std::string stack;
  uint64_t count = 0;
  /// Index in the header's "application_metadata" list (0: null).
  uint32_t app_metadata = 0;
};

/// What gProfiler's merge adds to the stacks of one process (its
/// "enrichment"): the container's name, the application id, rendered as the
/// frame "appid: <id>" right after the comm, and the index of the process's
/// application metadata in the header's list. Empty strings: none.
struct process_enrichment {
  std::string container;
  std::string appid;
  uint32_t app_metadata = 0;
};

/// Looks up the enrichment of a process by pid and comm; called once per
/// process of a snapshot.
using enrich_function
    = std::function<process_enrichment(int32_t pid, const std::string& comm)>;

/// The part of the DWARF recording of `--perf-mode smart` (the
/// frame-pointer one is the system profiler's, "perf").
inline constexpr const char* smart_dwarf_profiler = "perf-dwarf";

/// gProfiler's rule for `--perf-mode smart`, which records the host twice,
/// with frame pointers and with DWARF: per process, the recording whose
/// distinct stacks are deeper on average wins (on a tie DWARF, as in
/// gProfiler); DWARF stacks are scaled by the ratio
/// of the two recordings' total samples (largest remainder per process). A
/// process only the DWARF recording saw is left out. If one recording has
/// no stacks at all (it failed), the other is used as it is. The result is
/// named like `fp`; the errors of both are kept.
profile_part combine_smart(const profile_part& fp, const profile_part& dwarf);

/// Merges the parts of one snapshot. `system_profiler` names the part whose
/// stacks other parts replace ("perf"); a part named smart_dwarf_profiler is
/// first combined with it by combine_smart(). With `enrich`, every process's
/// stacks, and the error stacks of a process (pid != 0), carry its
/// enrichment; a process's own `container` stays when the enrichment names
/// none. The result is sorted by metadata index, container and stack.
std::vector<merged_stack> merge_parts(const std::vector<profile_part>& parts,
                                      const std::string& system_profiler
                                      = "perf",
                                      const enrich_function& enrich = {});

/// Everything in the header besides the stacks.
struct col_header {
  host_info host;
  std::string agent_version;
  /// Agent start, milliseconds since the Unix epoch ("spawn_time", written
  /// as gProfiler does: "YYYY-MM-DDTHH:MM:SS", UTC).
  int64_t spawn_ms = 0;
  int32_t pid = 0;
  /// The effective options as a JSON object (secrets redacted).
  std::string run_arguments_json = "{}";
  /// false (--disable-metadata-collection): "metadata" holds only the
  /// hostname, the profiling mode and the sampling keys, as gProfiler's.
  bool metadata_enabled = true;
  /// "cloud_provider" and "cloud_info".
  cloud_metadata cloud;
  /// The "static" object of the --external-metadata file, as JSON text.
  std::string external_metadata_json = "{}";
  /// perf's sampling frequency, Hz ("sampling_frequency"; gProfiler writes
  /// 11 when no system profiler runs).
  int64_t sampling_frequency = 11;
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  /// Host CPU and memory use over the window, in percent; negative when
  /// unknown (rendered as null).
  double cpu_avg = -1;
  double mem_avg = -1;
  /// The header's "containers": names of the containers whose processes the
  /// window saw, and whether names are looked up at all.
  std::vector<std::string> containers;
  bool container_names_enabled = false;
  /// The header's "application_metadata" after its leading null: JSON
  /// objects, merged_stack::app_metadata - 1 indexes them. Without
  /// `application_metadata_enabled` the lines carry no index field.
  std::vector<std::string> application_metadata;
  bool application_metadata_enabled = true;
};

/// Renders the header line, including "# " and the newline.
std::string render_header(const col_header& header);

/// Renders the whole .col text: header, then one
/// "<metadata index>;<container>;<stack> <count>" line per merged stack
/// ("<container>;<stack> <count>" without application metadata).
std::string render_col(const col_header& header,
                       const std::vector<merged_stack>& stacks);

} // namespace gpa::format

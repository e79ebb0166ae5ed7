#pragma once

// Every self-metric of the agent, named once with its help text and kind, and
// the helpers that update them. The memory monitor sets the footprint gauges;
// the scheduler counts snapshots; the uploader counts uploads. declare_all()
// puts every series in the registry at 0 at start, so the metrics endpoint
// shows them before the first increment (a counter that appears only later
// breaks Prometheus' rate()).
//
// Names follow Prometheus conventions (promtool check metrics is clean):
// "gpa_" prefix, base units (bytes, seconds), counters end in "_total".

#include <chrono>
#include <string>
#include <vector>

#include "runtime/metrics.hpp"

namespace gpa::rt::metric {

/// A metric's name, help text and kind.
struct info {
  /// Prometheus metric name.
  const char* name;
  /// One line for "# HELP".
  const char* help;
  /// True for a counter (only goes up), false for a gauge.
  bool counter;
};

// -- the agent's footprint (set by the memory monitor every sample)
// ------------

/// RSS of the agent's main process.
inline constexpr info agent_rss{
    "gpa_agent_resident_memory_bytes",
    "Resident set size of the agent's main process, in bytes.", false};

/// RSS of the agent and every descendant (the pstree | ps -o rss total).
inline constexpr info tree_rss{
    "gpa_agent_tree_resident_memory_bytes",
    "Resident set size of the agent and all its descendant processes, in "
    "bytes.",
    false};

/// Open descriptors of the agent's main process.
inline constexpr info open_fds{
    "gpa_agent_open_fds", "Open file descriptors of the agent's main process.",
    false};

/// Threads of the agent's main process.
inline constexpr info threads{"gpa_agent_threads",
                              "Threads of the agent's main process.", false};

/// Live descendants of the agent (children, grandchildren, ...).
inline constexpr info children{
    "gpa_agent_child_processes",
    "Live descendant processes of the agent (children, grandchildren, ...).",
    false};

/// The memory monitor's pressure level.
inline constexpr info pressure_level{
    "gpa_memory_pressure_level",
    "Memory pressure level: 0 normal, 1 warning, 2 critical, 3 emergency.",
    false};

/// Samples the memory monitor took.
inline constexpr info monitor_samples{
    "gpa_monitor_samples_total",
    "Footprint samples taken by the memory monitor.", true};

// -- snapshots (counted by the scheduler)
// ----------------------------------------

/// Snapshot parts per profiler and result; labels `profiler` and `result`
/// (done, skipped, timed_out).
inline constexpr info snapshots{
    "gpa_profiler_snapshots_total",
    "Snapshots per profiler by result: done, skipped or timed_out.", true};

/// Wall time of the last snapshot, from its start to the merged profile.
inline constexpr info last_snapshot_duration{
    "gpa_last_snapshot_duration_seconds",
    "Wall time of the last snapshot, from its start to the merged profile, in "
    "seconds.",
    false};

// -- uploads (counted by the uploader)
// ---------------------------------------------

/// Profiles by upload result; label `result` (sent, failed, spooled,
/// dropped).
inline constexpr info uploads{
    "gpa_uploads_total",
    "Profile uploads by result: sent, failed, spooled for a later retry, or "
    "dropped for good.",
    true};

/// Upload retries scheduled by the back-off.
inline constexpr info upload_retries{"gpa_upload_retries_total",
                                     "Upload retries scheduled.", true};

/// Profiles waiting in the spool.
inline constexpr info spool_files{
    "gpa_upload_spool_files", "Profiles waiting in the upload spool.", false};

/// The same three for the Pyroscope backend.
inline constexpr info pyroscope_uploads{
    "gpa_pyroscope_uploads_total",
    "Profile uploads to Pyroscope by result: sent, failed, spooled for a "
    "later retry, or dropped for good.",
    true};
inline constexpr info pyroscope_upload_retries{
    "gpa_pyroscope_upload_retries_total", "Pyroscope upload retries scheduled.",
    true};
inline constexpr info pyroscope_spool_files{
    "gpa_pyroscope_spool_files", "Profiles waiting in the Pyroscope spool.",
    false};

/// Parts that arrived after their snapshot was done, per profiler.
inline constexpr info late_parts{
    "gpa_late_parts_total",
    "Profiler parts that arrived after their snapshot was done.", true};

/// Ticks skipped by the overlap policy `skip`.
inline constexpr info ticks_skipped{
    "gpa_ticks_skipped_total",
    "Windows extended because the previous snapshot was still collecting.",
    true};

/// Samples perf recorded, over all windows.
inline constexpr info perf_samples{"gpa_perf_samples_total",
                                   "Samples perf recorded.", true};

/// Times perf record was restarted (died, hung, or too big).
inline constexpr info perf_restarts{"gpa_perf_restarts_total",
                                    "Times perf record was restarted.", true};

// -- helpers
// ------------------------------------------------------------------------

/// What became of one profiler's part of a snapshot.
enum class snapshot_result { done, skipped, timed_out };

/// Returns "done", "skipped" or "timed_out".
const char* to_string(snapshot_result x);

/// What became of one upload attempt of a profile.
enum class upload_result { sent, failed, spooled, dropped };

/// Returns "sent", "failed", "spooled" or "dropped".
const char* to_string(upload_result x);

/// The profilers the agent knows, as they appear in the `profiler` label.
const std::vector<std::string>& known_profilers();

/// Sets gauge `m` to `value`.
void set(metrics& reg, const info& m, double value,
         const metric_labels& labels = {});

/// Adds `delta` to counter `m`.
void add(metrics& reg, const info& m, double delta,
         const metric_labels& labels = {});

/// Counts one snapshot part of `profiler`.
void count_snapshot(metrics& reg, const std::string& profiler,
                    snapshot_result result);

/// Counts one upload.
void count_upload(metrics& reg, upload_result result);

/// Sets the duration of the last snapshot.
void set_last_snapshot_duration(metrics& reg, std::chrono::duration<double> d);

/// Puts every metric above in `reg` at 0, with one series per profiler in
/// `profilers` and per result. Call once at start, before the endpoint opens.
void declare_all(metrics& reg,
                 const std::vector<std::string>& profilers = known_profilers());

} // namespace gpa::rt::metric

#pragma once

// The agent's fixed intervals and timeouts, in one place: the times a user
// does not set (those are in options.hpp, with their flags). Each says what it
// paces and why it has its value.

#include <chrono>

namespace gpa::intervals {

using namespace std::chrono_literals;

// -- perf profiler
// ----------------------------------------------------------------

/// Polling for perf's rotation files and for perf getting ready.
constexpr std::chrono::milliseconds perf_poll = 100ms;
/// A perf that has written data but not answered the first SIGUSR2 (still
/// synthesizing the host's mmap events) is asked again after this.
constexpr std::chrono::seconds perf_signal_retry = 1s;
/// First delay before restarting a perf record that exited before it got
/// ready; it doubles with each such exit in a row...
constexpr std::chrono::seconds perf_restart_delay = 1s;
/// ...up to this.
constexpr std::chrono::seconds perf_restart_delay_max = 60s;

// -- merger
// -----------------------------------------------------------------------

/// The merger's wait for the memory monitor's window averages; past it the
/// profile gets null metrics rather than waiting.
constexpr std::chrono::seconds merger_metrics_wait = 2s;

// -- uploader
// ---------------------------------------------------------------------

/// First retry delay after a failed upload; doubles with each failure...
constexpr std::chrono::seconds upload_retry_initial = 5s;
/// ...up to this.
constexpr std::chrono::minutes upload_retry_max = 5min;
/// Longest time connecting (TCP and TLS handshake) may take.
constexpr std::chrono::seconds http_connect_timeout = 10s;

// -- cloud metadata
// ---------------------------------------------------------------

/// Longest time one request to a cloud's instance metadata service may
/// take (gProfiler's METADATA_REQUEST_TIMEOUT). The lookup runs in the
/// background: start-up never waits for it.
constexpr std::chrono::seconds cloud_metadata_timeout = 5s;
/// Longest time connecting to it may take: the service is on the link.
constexpr std::chrono::seconds cloud_metadata_connect_timeout = 1s;

// -- shutdown and signals
// ---------------------------------------------------------

/// How long the ordered shutdown of the actors may take in all.
constexpr std::chrono::seconds shutdown_budget = 4s;
/// The main thread's wait for a signal between checks of "done".
constexpr std::chrono::milliseconds signal_wait = 200ms;

// -- process launcher
// -------------------------------------------------------------

/// How long output pipes may stay open after the child was reaped (a
/// grandchild that escaped the process group may still hold them).
constexpr std::chrono::milliseconds pipe_linger = 500ms;
/// How long the launcher keeps reaping adopted members of a finished
/// child's process group.
constexpr std::chrono::seconds orphan_watch = 10s;
/// Interval of the sweep for adopted zombies outside any known group.
constexpr std::chrono::seconds zombie_sweep = 5s;
/// The launcher's wait for its children after SIGKILL when it shuts down.
constexpr std::chrono::seconds kill_all_wait = 5s;

// -- metrics endpoint
// -------------------------------------------------------------

/// A scraper's connection is closed if its request takes longer.
constexpr std::chrono::milliseconds metrics_connection_timeout = 2000ms;

} // namespace gpa::intervals

#pragma once

// The system profiler: whole-host native and kernel stacks with perf.
//
// At prepare it finds an event that yields samples (perf's default, then
// cpu-clock, then task-clock) with a short test recording, and starts one
// long-running `perf record --switch-output=signal`. Windows are cut from
// that one recording with SIGUSR2, so they follow each other without gaps:
// each rotation leaves a perf.data.<time> file, which `perf script` turns
// into text and the converter (format/collapse.hpp), run on the work
// queue, into stacks per process. perf that dies is restarted; perf whose
// RSS passes the limit is restarted between windows. Every perf process goes
// through the reaper.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "messages/reaper.hpp"
#include "messages/scheduler.hpp"
#include "runtime/files.hpp"
#include "runtime/metrics.hpp"
#include "runtime/work_queue.hpp"

namespace spdlog {
class logger;
} // namespace spdlog

namespace gpa {

/// The perf profiler's interface: a profiler plus what only it sends itself.
using perf_profiler_impl = profiler_actor::extend<
    // Memory pressure (restart perf if it is the bloated child).
    caf::reacts_to<pressure_atom, pressure_event>,
    // Look for new rotation files / perf readiness.
    caf::reacts_to<poll_atom>,
    // Start (or restart) perf record.
    caf::reacts_to<restart_atom>,
    // A collapse job on the work queue finished.
    caf::reacts_to<done_atom, profile_part>>;

/// Settings of the perf profiler.
struct perf_config {
  std::string perf_path = "perf";
  /// "fp" or "dwarf" (the agent runs one of each for --perf-mode smart).
  std::string mode = "fp";
  /// The profiler's name: its parts, error stacks, logger, and the names of
  /// its files and process tags ("perf"; "perf-dwarf" for the DWARF half of
  /// --perf-mode smart).
  std::string name = "perf";
  int64_t frequency = 11;
  int64_t dwarf_stack_size = 8192;
  /// Only these processes; empty: the whole host.
  std::vector<int64_t> pids;
  int64_t mmap_pages = 129;
  /// perf is restarted between windows once its RSS passes this.
  int64_t rss_limit_kb = 512 * 1024;
  /// The agent's private temporary directory.
  std::string temp_dir;
  caf::timespan kill_grace{std::chrono::seconds(2)};
  /// Time allowed for each probe step and for perf to get ready.
  caf::timespan probe_timeout{std::chrono::seconds(30)};
  /// Interval of polling for rotation files.
  caf::timespan poll_interval{std::chrono::milliseconds(100)};
  /// Reads the RSS (KiB) of a process; 0 if unknown.
  std::function<int64_t(int32_t pid)> rss_kb;
  /// Whether a process exists; unset: every --pids process is taken to.
  std::function<bool(int64_t pid)> alive;
  /// First delay before restarting a perf record that exited; it doubles
  /// with every exit in a row before perf got ready, up to the maximum.
  caf::timespan restart_delay{std::chrono::seconds(1)};
  caf::timespan restart_delay_max{std::chrono::seconds(60)};
};

/// A window whose part was asked for.
struct perf_window {
  uint64_t id = 0;
  caf::typed_response_promise<profile_part> promise;
  std::string tag;
  caf::timespan budget{0};
  /// The rotation file, once perf wrote it.
  std::string data_file;
};

/// The perf profiler's state.
struct perf_state {
  static inline const char* name = "perf";

  perf_profiler_impl::pointer self = nullptr;
  perf_config cfg;
  reaper_actor reaper;
  std::shared_ptr<rt::file_system> fs;
  std::shared_ptr<rt::work_queue> work;
  std::shared_ptr<rt::metrics> metrics;
  std::shared_ptr<spdlog::logger> log;

  /// Probing: started (once), and which candidate event is being tried.
  bool probing = false;
  size_t probe_index = 0;
  std::vector<std::string> probe_failures;
  /// The chosen event ("" = perf's default), once probing succeeded.
  std::optional<std::string> event;
  /// Why perf cannot profile, if it cannot.
  std::string fatal;
  std::vector<caf::typed_response_promise<std::string>> prepare_waiters;

  /// perf record: running, and ready (its output file exists).
  bool recording = false;
  bool ready = false;
  /// A first rotation was signalled to see perf reach its main loop.
  bool warming = false;
  caf::actor_clock::time_point warm_signalled;
  bool stopping = false;
  uint64_t restarts = 0;
  caf::actor_clock::time_point launched;

  /// The window that owns what perf records now (0: nobody).
  uint64_t segment_window = 0;
  /// The window whose close was the last rotation (start of the next one).
  uint64_t last_closed = 0;
  /// Rotations asked for and not yet seen as files, oldest first: the window
  /// each file belongs to (0: discard).
  std::deque<uint64_t> rotations;
  /// Rotation files already matched.
  std::set<std::string> seen_files;
  std::map<uint64_t, perf_window> windows;
  /// Launches of perf record in a row that did not get ready in time.
  uint64_t start_timeouts = 0;
  /// Exits of perf record in a row before it got ready (sets the delay of
  /// the next restart).
  uint32_t early_exits = 0;
  /// The --pids processes perf records now (empty: the whole host).
  std::vector<int64_t> targets;
  /// Why perf is not recording because no --pids process is left; empty
  /// when there are targets or no --pids.
  std::string no_targets;
  bool polling = false;
  bool restart_after_rotation = false;

  void prepare(caf::typed_response_promise<std::string> promise);
  void on_start(const window_info& info);
  void on_snapshot(const snapshot_request& req,
                   caf::typed_response_promise<profile_part> promise);
  void on_poll();
  void on_pressure(const pressure_event& ev);
  void on_collapsed(profile_part& part);
  void launch_record();

  /// The reaper tag of this profiler's perf record, and its output file.
  std::string record_tag() const {
    return cfg.name + "-record";
  }
  std::string data_name() const {
    return cfg.name + ".data";
  }

  /// The --pids processes that still exist.
  std::vector<int64_t> live_pids() const;

  /// The perf record command line.
  std::vector<std::string> record_argv(const std::string& output,
                                       const std::optional<std::string>& ev,
                                       bool probe) const;

private:
  void probe_next();
  void probe_failed(std::string why);
  void set_fatal(std::string why);
  void rotate(uint64_t owner);
  void schedule_poll();
  void run_script(perf_window& w);
  void fail_window(uint64_t id, const std::string& what,
                   const std::string& reason);
  void check_rss();
  void restart_perf(const std::string& why);
  /// Asks the reaper for this profiler's perf record processes and, if
  /// `why` gives a reason for one of them, restarts perf after the current
  /// window (once), logging the reason.
  void
  restart_after_window_if(std::function<std::string(const child_info&)> why);
  /// "perf record did not get ready within N s".
  std::string not_ready() const;
  /// Counts a restart of perf (state and metric).
  void count_restart();
  /// Removes a rotation file and forgets that it was seen.
  void forget(const std::string& data_file);
};

/// Spawns as `sys.spawn(perf_profiler, cfg, reaper, fs, work, metrics)`.
perf_profiler_impl::behavior_type perf_profiler(
    perf_profiler_impl::stateful_pointer<perf_state> self, perf_config cfg,
    reaper_actor reaper, std::shared_ptr<rt::file_system> fs,
    std::shared_ptr<rt::work_queue> work, std::shared_ptr<rt::metrics> metrics);

} // namespace gpa

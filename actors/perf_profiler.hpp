#pragma once

// The system profiler: whole-host native and kernel stacks with perf.
//
// At prepare it finds an event that yields samples (perf's default, then
// cpu-clock, then task-clock) with a short test recording, and starts one
// long-running `perf record --switch-output=signal`. Windows are cut from
// that one recording with SIGUSR2, so they follow each other without gaps:
// each rotation leaves a perf.data.<time> file, which `perf script` turns
// into text and the converter (format/collapse.hpp), run on the work queue,
// into stacks per process. perf that dies is restarted; perf whose RSS
// passes the limit is restarted between windows. Every perf process goes
// through the reaper.
//
// The shape to copy for a profiler actor:
// - one phase enum (perf_phase) and one transition function
//   (perf_state::enter) that owns every transition, checks it is allowed,
//   logs it and runs its entry actions;
// - the bookkeeping as plain classes (event_probe, rotation_book) with unit
//   tests of their own;
// - every effect (the reaper, timers, the clock, the work queue) behind an
//   interface (perf_effects), so that perf_state is tested without an actor
//   system (test/actors/perf_profiler_test.cpp) and the actor is a thin
//   adapter (perf_profiler()).

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <caf/actor_clock.hpp>
#include <caf/expected.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "config/intervals.hpp"
#include "config/options.hpp"
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

/// How a perf record unwinds stacks.
enum class perf_unwind : uint8_t {
  /// Frame pointers (-g): cheap; broken stacks where code omits them.
  frame_pointer,
  /// A copy of the user stack per sample (--call-graph=dwarf).
  dwarf,
};

/// Settings of the perf profiler.
class perf_event_memo;

struct perf_config {
  /// The user's --perf-* options: the binary, the DWARF stack copy, the ring
  /// buffer, the RSS limit and the start-up timeout. (Its `mode` is the
  /// agent's choice of perf profilers; `unwind` is this one's.)
  perf_options opts;
  /// frame_pointer or dwarf (the agent runs one of each for --perf-mode
  /// smart).
  perf_unwind unwind = perf_unwind::frame_pointer;
  /// The profiler's name: its parts, error stacks, logger, and the names of
  /// its files and process tags ("perf"; "perf-dwarf" for the DWARF half of
  /// --perf-mode smart).
  std::string name = "perf";
  /// Sampling frequency in Hz (-f).
  int64_t frequency = scheduler_options{}.frequency;
  /// --nodejs-mode perf: record with CLOCK_MONOTONIC (-k 1) and run
  /// `perf inject --jit` on each window's data before perf script, so that
  /// the code of processes writing jitdump files (node --perf-prof) is
  /// named.
  bool inject_jit = false;
  /// Only these processes (--pids); empty: the whole host.
  std::vector<int64_t> pids;
  /// The agent's private temporary directory.
  std::string temp_dir;
  /// Time between SIGTERM and SIGKILL when perf is stopped.
  caf::timespan kill_grace = reaper_options{}.kill_grace;
  /// Interval of polling for rotation files.
  caf::timespan poll_interval{intervals::perf_poll};
  /// Reads the RSS (KiB) of a process; 0 if unknown.
  std::function<int64_t(int32_t pid)> rss_kb;
  /// Whether a process exists; unset: every --pids process is taken to.
  std::function<bool(int64_t pid)> alive;
  /// Whether a process is a JVM, whose Java frames from its perf map get
  /// `_[j]` (format/collapse.hpp; asked from the work queue's thread, only
  /// for processes with such frames); unset: no frame is marked.
  std::function<bool(int32_t pid)> java_process;
  /// First delay before restarting a perf record that exited; it doubles
  /// with every exit in a row before perf got ready, up to the maximum.
  caf::timespan restart_delay{intervals::perf_restart_delay};
  caf::timespan restart_delay_max{intervals::perf_restart_delay_max};
  /// The events earlier perf profilers of the agent found (by profiler
  /// name and perf binary): a later session's profiler starts with it
  /// instead of probing again (null: always probe).
  std::shared_ptr<perf_event_memo> events;
};

// -- phases
// ----------------------------------------------------------------------

/// What the perf profiler is doing. Exactly one at a time; only
/// perf_state::enter() changes it.
enum class perf_phase : uint8_t {
  /// Nothing asked yet.
  idle,
  /// Test recordings look for an event that yields samples.
  probing,
  /// perf record was started; waiting for it to write its output file.
  launching,
  /// A first SIGUSR2 was sent; waiting for perf to answer it. perf ignores
  /// SIGUSR2 while it synthesizes the existing processes, so an answered
  /// rotation is what "ready" means.
  warming,
  /// Ready: windows are cut from the recording with SIGUSR2.
  recording,
  /// perf record was asked to stop (a restart); it is started again once
  /// the reaper reports it gone.
  stopping,
  /// perf record exited by itself; a restart is scheduled.
  backing_off,
  /// Every --pids process is gone: nothing to record. Final.
  no_targets,
  /// perf cannot profile this host (no event works, perf cannot run).
  /// Final.
  failed,
};

/// "idle", "probing", ...
const char* to_string(perf_phase x);

/// Whether perf_state::enter() may go from `from` to `to`.
bool perf_transition_allowed(perf_phase from, perf_phase to);

// -- bookkeeping
// -----------------------------------------------------------------

/// The event each perf profiler found, kept across sessions.
class perf_event_memo {
public:
  std::optional<std::string> find(const std::string& key) const {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = events_.find(key);
    if (i == events_.end())
      return std::nullopt;
    return i->second;
  }

  void remember(const std::string& key, const std::string& event) {
    std::lock_guard<std::mutex> guard{mtx_};
    events_[key] = event;
  }

private:
  mutable std::mutex mtx_;
  std::map<std::string, std::string> events_;
};

/// The search for an event that yields samples: the candidates in order,
/// and why each one that was tried failed.
class event_probe {
public:
  /// perf's default event (""), then cpu-clock, then task-clock.
  event_probe();
  explicit event_probe(std::vector<std::string> candidates);

  /// Whether every candidate failed.
  bool exhausted() const {
    return index_ >= candidates_.size();
  }

  /// The candidate to try now ("" is perf's default event).
  const std::string& current() const {
    return candidates_.at(index_);
  }

  /// The first candidate (what the search starts from).
  const std::string& first() const {
    return candidates_.at(0);
  }

  /// The current candidate failed for `why`; moves on to the next one.
  void failed(const std::string& why);

  /// "no event yields samples (perf's default event: ...; 'cpu-clock': ...)".
  std::string summary() const;

  /// The failures so far, as "; <event>: <why>" each (appended to the log
  /// line that names the event that worked).
  std::string notes() const;

  /// How an event is named in messages: "perf's default event" or "'name'".
  static std::string event_name(const std::string& ev);

private:
  std::vector<std::string> candidates_;
  size_t index_ = 0;
  std::vector<std::string> failures_;
};

/// Which window each rotation file of perf record belongs to. Rotations
/// are asked for in order and perf writes their files in the same order
/// (their names, perf.data.<timestamp>, sort the same way).
class rotation_book {
public:
  /// What a rotation file is for.
  struct match {
    /// The file name (in the temp directory).
    std::string file;
    /// The window it belongs to; 0: nobody's (remove it).
    uint64_t owner = 0;
  };

  /// A rotation was signalled; its file belongs to window `owner` (0: the
  /// data before a window starts, to be discarded).
  void asked(uint64_t owner) {
    pending_.push_back(owner);
  }

  /// Matches the new regular files of a listing (sorted by name) to the
  /// rotations asked for, oldest first; `data_name` is perf's own output
  /// file, never a rotation. A file with no rotation waiting for it is a
  /// late answer to a start-up signal: nobody's. Files already matched are
  /// skipped.
  std::vector<match> take(const std::vector<rt::dir_entry>& listing,
                          const std::string& data_name);

  /// perf record stopped: the rotations asked for will never produce
  /// files. Returns their owners (0s excluded) and forgets them.
  std::vector<uint64_t> abandon();

  /// A matched file was processed and removed.
  void forget(const std::string& file) {
    seen_.erase(file);
  }

  /// A new perf record starts: no file is matched any more.
  void reset_seen() {
    seen_.clear();
  }

  /// Rotations asked for and not matched yet.
  size_t pending() const {
    return pending_.size();
  }

  /// Files matched and not processed yet.
  size_t seen() const {
    return seen_.size();
  }

private:
  std::deque<uint64_t> pending_;
  std::set<std::string> seen_;
};

// -- effects
// ---------------------------------------------------------------------

/// Everything the perf profiler does to the world besides files: the
/// reaper, its own timers, the clock and the work queue. Each callback runs
/// later, in the profiler's own context (never inside the call).
class perf_effects {
public:
  virtual ~perf_effects() = default;

  /// Runs a child through the reaper; `done` gets its result or why it
  /// could not run.
  virtual void run(run_request req,
                   std::function<void(caf::expected<run_result>)> done)
      = 0;

  /// Signals the children with `tag`; `done` gets how many.
  virtual void signal(const std::string& tag, int sig,
                      std::function<void(caf::expected<uint32_t>)> done)
      = 0;

  /// Stops the children with `tag` (SIGTERM, grace, SIGKILL).
  virtual void cancel(const std::string& tag) = 0;

  /// The live children with `tag`.
  virtual void list(const std::string& tag,
                    std::function<void(child_list)> done)
      = 0;

  /// on_poll() is called after `delay`.
  virtual void poll_in(caf::timespan delay) = 0;

  /// launch() is called after `delay`.
  virtual void restart_in(caf::timespan delay) = 0;

  /// The actor clock's now.
  virtual caf::actor_clock::time_point now() = 0;

  /// Collapses the perf script text at `path` into window `window`'s part
  /// off the profiler's thread (the work queue); the part comes back
  /// through on_collapsed(). The file is removed afterwards.
  virtual void collapse(std::string path, uint64_t window) = 0;
};

// -- state
// -----------------------------------------------------------------------

/// A window whose part was asked for.
struct perf_window {
  uint64_t id = 0;
  /// Delivers the part (once).
  std::function<void(profile_part)> reply;
  std::string tag;
  caf::timespan budget{0};
  /// The rotation file, once perf wrote it.
  std::string data_file;
};

/// The perf profiler's state and logic; perf_profiler() is a thin adapter.
struct perf_state {
  static inline const char* name = "perf";

  perf_config cfg;
  std::shared_ptr<perf_effects> fx;
  std::shared_ptr<rt::file_system> fs;
  std::shared_ptr<rt::metrics> metrics;
  std::shared_ptr<spdlog::logger> log;

  /// Restarts of perf record so far.
  uint64_t restarts = 0;
  /// The windows asked for and not answered yet.
  std::map<uint64_t, perf_window> windows;
  /// Which window each rotation file belongs to.
  rotation_book rotations;

  /// Sets up the state; call once before anything else.
  void init(perf_config config, std::shared_ptr<perf_effects> effects,
            std::shared_ptr<rt::file_system> files,
            std::shared_ptr<rt::metrics> registry);

  /// The phase now.
  perf_phase phase() const {
    return phase_;
  }

  /// Why perf is in a final phase (failed, no_targets); empty otherwise.
  const std::string& final_reason() const {
    return final_reason_;
  }

  /// The event perf samples, once the probe found it.
  const std::optional<std::string>& event() const {
    return event_;
  }

  // -- what the actor delivers

  /// The scheduler asks perf to get ready; `reply` gets "" when perf
  /// records, or why it cannot.
  void prepare(std::function<void(std::string)> reply);
  void on_start(const window_info& info);
  void on_snapshot(const snapshot_request& req,
                   std::function<void(profile_part)> reply);
  void on_poll();
  void on_pressure(const pressure_event& ev);
  void on_collapsed(profile_part& part);
  /// Starts perf record (or says why there is nothing to record).
  void launch();

  // -- helpers, public for tests

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
  /// The one transition function: checks that `from -> to` is allowed,
  /// logs the transition (with `why`), runs the entry actions of `to`.
  void enter(perf_phase to, const std::string& why = {});

  void probe_next();
  void probe_failed(const std::string& why);
  void rotate(uint64_t owner);
  void schedule_poll();
  void run_script(perf_window& w);
  void run_inject(perf_window& w);
  void script_file(uint64_t id, const std::string& data_file,
                   const std::string& input);
  void fail_window(uint64_t id, const std::string& what,
                   const std::string& reason);
  void check_rss();

  /// perf is restarted between windows once its RSS passes this.
  int64_t rss_limit_kb() const {
    return cfg.opts.rss_limit_mb * 1024;
  }
  /// Stops perf record to start it again (`why` is logged).
  void restart_perf(const std::string& why);
  /// Asks the reaper for this profiler's perf record processes and, if
  /// `why` gives a reason for one of them, restarts perf after the current
  /// window (once), logging the reason.
  void
  restart_after_window_if(std::function<std::string(const child_info&)> why);
  /// perf record was reaped (`r`: how it ended).
  void on_record_exit(const caf::expected<run_result>& r);
  /// "perf record did not get ready within N s".
  std::string not_ready() const;
  /// Counts a restart of perf (state and metric).
  void count_restart();
  /// Removes a rotation file and forgets that it was seen.
  void forget(const std::string& data_file);
  /// Answers every prepare request with `status`.
  void answer_prepare(const std::string& status);

  perf_phase phase_ = perf_phase::idle;
  std::string final_reason_;
  event_probe probe_;
  std::optional<std::string> event_;
  std::vector<std::function<void(std::string)>> prepare_waiters_;
  /// When the current perf record was started, and when the last warming
  /// signal went out.
  caf::actor_clock::time_point launched_;
  caf::actor_clock::time_point warm_signalled_;
  /// A poll is scheduled.
  bool poll_pending_ = false;
  /// A restart is due once the rotation in flight is matched (its reason).
  std::string restart_after_rotation_;
  /// The window that owns what perf records now (0: nobody).
  uint64_t segment_window_ = 0;
  /// The window whose close was the last rotation (start of the next one).
  uint64_t last_closed_ = 0;
  /// Launches of perf record in a row that did not get ready in time.
  uint64_t start_timeouts_ = 0;
  /// Exits of perf record in a row before it got ready (sets the delay of
  /// the next restart).
  uint32_t early_exits_ = 0;
  /// The --pids processes perf records now (empty: the whole host).
  std::vector<int64_t> targets_;
};

/// Spawns as `sys.spawn(perf_profiler, cfg, reaper, fs, work, metrics)`.
perf_profiler_impl::behavior_type perf_profiler(
    perf_profiler_impl::stateful_pointer<perf_state> self, perf_config cfg,
    reaper_actor reaper, std::shared_ptr<rt::file_system> fs,
    std::shared_ptr<rt::work_queue> work, std::shared_ptr<rt::metrics> metrics);

} // namespace gpa

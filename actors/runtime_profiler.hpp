#pragma once

// A runtime profiler: the per-process profilers of one runtime (Java,
// Ruby, ...), behind the same protocol as perf, so that the scheduler's
// windows, deadlines and overlap rules cover them unchanged.
//
// Each window it finds its targets (runtime/runtime_targets.hpp, gProfiler's
// rules, --pids, --min-duration, --max-processes-runtime-profiler) at a
// point of the window its tool chooses (at the start for tools that record
// over the window, late in it for tools that refresh symbol maps), and runs
// the tool once per target (or once for all of them: phpspy) through the
// reaper, at most `concurrency` at a time whatever the number of targets,
// each child bounded by the tool's timeout. What a tool gives for a target is
// data, never a crash: stacks, nothing (perf's stacks stand), or an error
// stack. At the snapshot it answers when every target is done, or just before
// its budget runs out: then the children still running are stopped and their
// targets get timeout errors, so one hung tool never delays the snapshot.
//
// The logic is runtime_state, over an effects interface (runtime_effects)
// so that it is tested without an actor system; runtime_profiler() is the
// thin actor around it. A runtime's specifics are a runtime_tool.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/expected.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "config/options.hpp"
#include "messages/reaper.hpp"
#include "messages/scheduler.hpp"
#include "runtime/runtime_targets.hpp"

namespace spdlog {
class logger;
} // namespace spdlog

namespace gpa {

/// The runtime-specific part of a runtime profiler.
class runtime_tool {
public:
  virtual ~runtime_tool() = default;

  /// The profiler's name ("java", ...): its part, logger, tags, errors.
  virtual std::string name() const = 0;

  /// The runtime whose processes it profiles.
  virtual rt::runtime_kind kind() const = 0;

  /// Checked once, at prepare: "" if the tool can run, else why not (the
  /// runtime is then off for the agent's life, said in one line).
  virtual std::string check() = 0;

  /// How far into the window (0 to 1) the per-process work starts.
  virtual double start_at() const {
    return 0;
  }

  /// Whether the target needs the tool this window (a tool that acts once
  /// per process says no to those it did).
  virtual bool wants(const rt::runtime_target&) {
    return true;
  }

  /// Whether to leave `target` out this window: "" (the default) profiles
  /// it, else why not (its entry is gProfiler's `[Profiling skipped:
  /// <why>]`; parse() says the same with an ec::skipped error).
  virtual std::string refuse(const rt::runtime_target& target) {
    (void)target;
    return {};
  }

  /// The tool's command for one target in a window of `window` length
  /// (argv, timeout, output mode; the tag is set by the caller).
  virtual run_request command(const rt::runtime_target& target,
                              caf::timespan window)
      = 0;

  /// A target's work in a window may take several children in a row (a
  /// JVM's version and flags once, then the window's command): after each
  /// child, next() gives the one to run after it, or nullopt (the default)
  /// when `result` is the last, which parse() then reads. `step` counts the
  /// children of the target finished in this window (1 after command()'s).
  /// A child stopped at the deadline is not seen here.
  virtual std::optional<run_request>
  next(const rt::runtime_target& target, size_t step,
       const caf::expected<run_result>& result) {
    (void)target;
    (void)step;
    (void)result;
    return std::nullopt;
  }

  /// What the finished child means for the target: its stacks (empty:
  /// nothing replaces perf's stacks), or an error reason. Not called for a
  /// tool that overrides read().
  virtual caf::expected<process_stacks> parse(const rt::runtime_target& target,
                                              run_result&) {
    process_stacks none;
    none.pid = target.pid;
    none.comm = target.comm;
    return none;
  }

  /// One line for the log at start: what the tool does ("" for none).
  virtual std::string describe() const {
    return {};
  }

  // -- tools that write files, and tools with one child for all targets --

  /// Whether one child covers all of the window's targets (phpspy, which
  /// finds the processes itself) instead of one child per target. Such a
  /// tool's child is made by command_for_all().
  virtual bool one_child_for_all() const {
    return false;
  }

  /// The command of a one_child_for_all() tool for all `targets` (at least
  /// one) of a window of `window` length. By default command() of the first.
  virtual run_request
  command_for_all(const std::vector<rt::runtime_target>& targets,
                  caf::timespan window) {
    return command(targets.front(), window);
  }

  /// What the finished child of `req` (as command() or command_for_all()
  /// made it, tag set) means for its `targets`: the stacks of those that
  /// have some, or one error reason for all of them. By default parse() of
  /// the single target; tools whose output is a file named in `req`
  /// override this instead.
  virtual caf::expected<std::vector<process_stacks>>
  read(const std::vector<rt::runtime_target>& targets, const run_request&,
       run_result& result) {
    auto one = parse(targets.front(), result);
    if (!one)
      return std::move(one.error());
    return std::vector<process_stacks>{std::move(*one)};
  }

  /// Called once for every child of the tool when it has ended, however it
  /// ended (after read() if that ran; also for children stopped at a
  /// deadline or that could not start): removes what it left behind.
  virtual void ended(const run_request&) {}

  /// Undoes what the tool left in its targets, when the agent stops (after
  /// the actors did: called from the agent's main thread alone).
  virtual void at_exit() {}
};

/// Looks a program up: `name` itself if it holds a '/', else on PATH;
/// returns its path, or "" if there is no such executable.
using program_finder = std::function<std::string(const std::string& name)>;

/// The real program_finder (access(X_OK) on `name` or each PATH entry).
std::string find_program(const std::string& name);

/// Makes the Node.js tool of `opts` for attach-maps: once per Node process,
/// `agent_exe node-attach` loads the perf-map addon found in `addon_dir`
/// into it; null unless `nodejs_mode` is attach-maps.
std::unique_ptr<runtime_tool> make_nodejs_tool(const runtime_options& opts,
                                               std::string agent_exe,
                                               std::string addon_dir);

/// Where the Node.js addons of an agent at `agent_exe` are: node/ next to
/// it (the build tree), else ../lib/gprofiler-agent/node (installed); ""
/// if neither has one.
std::string find_node_addon_dir(const std::string& agent_exe);

/// Everything a runtime_state does to the world.
class runtime_effects {
public:
  virtual ~runtime_effects() = default;
  /// Runs a child through the reaper.
  virtual void run(run_request req,
                   std::function<void(caf::expected<run_result>)> done)
      = 0;
  /// Stops every child with this tag.
  virtual void cancel(const std::string& tag) = 0;
  /// Calls on_work(window) after `delay`.
  virtual void work_in(caf::timespan delay, uint64_t window) = 0;
  /// Calls on_deadline(window) after `delay`.
  virtual void deadline_in(caf::timespan delay, uint64_t window) = 0;
  /// Calls on_spawn_poll(window) after `delay` (--profile-spawned-processes).
  virtual void spawn_poll_in(caf::timespan, uint64_t) {}
  /// A monotonic clock (for the time left in a window).
  virtual caf::timespan now() {
    return caf::timespan{0};
  }
  /// The targets of this window (scan and limits).
  virtual std::vector<rt::runtime_target> targets() = 0;
  /// Whether a process still exists.
  virtual bool alive(int32_t pid) = 0;
};

/// Settings of a runtime profiler.
struct runtime_config {
  /// Children running at once.
  int64_t concurrency = runtime_options{}.concurrency;
  /// --profile-spawned-processes: a tool that records over the window
  /// (start_at() 0) also gets the processes that start during it, for the
  /// time left, found by a scan every `spawn_poll`.
  bool profile_spawned = false;
  caf::timespan spawn_poll{std::chrono::seconds(1)};
};

/// The logic of a runtime profiler.
class runtime_state {
public:
  static inline const char* name = "runtime_profiler";

  void init(runtime_config cfg, std::shared_ptr<runtime_tool> tool,
            std::shared_ptr<runtime_effects> fx,
            std::shared_ptr<spdlog::logger> log);

  void prepare(std::function<void(std::string)> done);
  void on_start(const window_info& info);
  void on_work(uint64_t window);
  void on_snapshot(const snapshot_request& req,
                   std::function<void(profile_part)> reply);
  void on_deadline(uint64_t window);
  void on_spawn_poll(uint64_t window);

  /// Children running now (for tests).
  size_t running() const {
    return running_;
  }

  /// Whether the tool's check failed (the runtime is off).
  bool disabled() const {
    return !disabled_why_.empty();
  }

private:
  /// One child: one target, or all of the window's for a
  /// one_child_for_all() tool.
  struct job {
    std::vector<rt::runtime_target> targets;
    run_request req;
    bool started = false;
    bool done = false;
    /// What the tool records for: the window's length, or for a process
    /// that started during the window, the time left.
    caf::timespan duration{0};
    /// Children of this job finished so far (runtime_tool::next).
    size_t steps = 0;
  };

  struct window {
    caf::timespan duration{0};
    /// When the window started (fx_->now()).
    caf::timespan started{0};
    bool worked = false;
    std::vector<job> jobs;
    profile_part part;
    std::function<void(profile_part)> reply;
  };

  void add_job(uint64_t id, std::vector<rt::runtime_target> targets,
               caf::timespan duration);
  void pump();
  void launch(uint64_t id, size_t index, run_request req);
  void finished(uint64_t id, size_t index, caf::expected<run_result> result);
  void complete_if_done(uint64_t id);
  std::string tag(uint64_t id) const;

  runtime_config cfg_;
  std::shared_ptr<runtime_tool> tool_;
  std::shared_ptr<runtime_effects> fx_;
  std::shared_ptr<spdlog::logger> log_;
  std::string name_;
  std::string disabled_why_;
  bool prepared_ = false;
  std::map<uint64_t, window> windows_;
  std::deque<std::pair<uint64_t, size_t>> queue_;
  size_t running_ = 0;
};

/// The runtime profiler's interface: a profiler plus its own timers.
using runtime_profiler_impl
    = profiler_actor::extend<caf::reacts_to<poll_atom, uint64_t>,
                             caf::reacts_to<poll_atom, uint64_t, bool>,
                             caf::reacts_to<deadline_atom, uint64_t>>;

/// Where a runtime profiler finds its targets: the processes of its runtime
/// now, after the limits; and whether a process still exists.
struct runtime_target_source {
  std::function<std::vector<rt::runtime_target>()> find;
  std::function<bool(int64_t pid)> alive;
};

/// The actor state: runtime_state plus the actor's name.
struct runtime_actor_state : runtime_state {
  static inline const char* name = "runtime_profiler";
};

/// Spawns as `sys.spawn(runtime_profiler, cfg, tool, source, reaper)`.
runtime_profiler_impl::behavior_type runtime_profiler(
    runtime_profiler_impl::stateful_pointer<runtime_actor_state> self,
    runtime_config cfg, std::shared_ptr<runtime_tool> tool,
    runtime_target_source source, reaper_actor reaper);

} // namespace gpa

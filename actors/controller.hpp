#pragma once

// The controller: decides which profiling session runs.
//
// Without Performance Studio's control plane the agent runs one session, on
// its own options, from start to exit (one window, or windows until stopped
// with -c); a reload (SIGHUP) rebuilds it at its next window boundary. With
// --enable-heartbeat-server the agent profiles only on command, as
// gProfiler's dynamic_profiling_management does: commands wait in three
// queues, served by priority (stop, then ad-hoc, then continuous; first in,
// first out within each). A continuous run pauses for an ad-hoc command
// (its window in progress is closed early and merged), and resumes once no
// ad-hoc command is left; a newer continuous command replaces an older one;
// a stop closes the running session now and drops what waits. Sessions never
// overlap: the next one starts only once the previous one's last window is
// merged. Command ids run once: a repeat (Studio repeats a command in every
// heartbeat answer until a newer one replaces it) is skipped, and so is an
// id executed before a restart (the ledger behind `executed_before`).

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <caf/actor_clock.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "messages/control.hpp"
#include "messages/scheduler.hpp"

namespace spdlog {
class logger;
} // namespace spdlog

namespace gpa {

/// What a session is asked to run.
struct session_spec {
  /// 1, 2, ...: the session's number.
  uint64_t number = 0;
  /// The command it runs; none: the agent's own options.
  std::optional<control_command> command;
  /// To be called once the session ended by itself (a one-window session
  /// merged its window); it must not block.
  std::function<void()> on_done;
};

/// A session the effects started, or why it could not start.
struct session_start {
  scheduler_actor scheduler;
  std::string error;
};

/// What a command's execution gave, for Studio's command_completion.
struct command_outcome {
  std::string command_id;
  /// "completed" or "failed".
  std::string status;
  /// Seconds the command ran.
  int64_t execution_time_s = 0;
  /// Why it failed, or a note ("" for none).
  std::string error;
};

/// The controller's effects: the app spawns real sessions, the simulation
/// scripted ones.
struct controller_config {
  /// Run a session on the agent's own options from the start (false with
  /// --enable-heartbeat-server: profiling waits for a command).
  bool base_run = true;
  /// Spawns a session (its profilers get ready, then its scheduler starts).
  std::function<session_start(const session_spec&)> start_session;
  /// Stops the actors of an ended session (must not block).
  std::function<void(uint64_t number)> end_session;
  /// Reports a command's outcome to Studio (must not block).
  std::function<void(const command_outcome&)> report;
  /// Whether a command id was executed before (also by an earlier run of
  /// the agent), and remembering one; unset: no memory across restarts.
  std::function<bool(const std::string&)> executed_before;
  std::function<void(const std::string&)> remember_executed;
  /// Called once when the agent's own one-window session is done (the
  /// agent exits then).
  std::function<void()> on_finished;
  /// Seconds since the epoch, for execution times (unset: the actor clock).
  std::function<int64_t()> now_s;
  /// Session 1 on the agent's own options, started by the caller already
  /// (base_run); none: the controller starts the first session itself.
  session_start first;
};

/// gProfiler's queue limits: more than this many ad-hoc commands waiting
/// is logged (they still queue, as in gProfiler).
inline constexpr size_t adhoc_queue_warn = 10;

/// Ids of received commands remembered (gProfiler's max_command_history).
inline constexpr size_t command_history = 1000;

/// Why the running session is being closed.
enum class close_reason {
  none,
  /// A reload: rebuild it with the new options at the window's end.
  reload,
  /// A stop command (host-level, or of all of its processes).
  stop,
  /// A process-level stop of some of its processes: restart without them.
  narrow,
  /// An ad-hoc command pauses the continuous run.
  pause,
  /// A newer continuous command replaces it.
  replace,
};

/// The controller's state; the handlers delegate here.
struct controller_state {
  static inline const char* name = "controller";

  enum class kind { base, adhoc, continuous };

  struct queued {
    control_command cmd;
    /// A continuous command paused for an ad-hoc one.
    bool paused = false;
    /// Whether it ran already (a paused continuous command resumes; a
    /// process-level stop closed its session).
    bool started = false;
  };

  struct run {
    uint64_t number = 0;
    scheduler_actor scheduler;
    kind what = kind::base;
    /// The command it runs (empty for the agent's own options).
    std::optional<control_command> command;
    caf::actor_clock::time_point since;
    int64_t since_s = 0;
    close_reason closing = close_reason::none;
  };

  controller_actor::pointer self = nullptr;
  controller_config cfg;
  std::shared_ptr<spdlog::logger> log;

  std::deque<queued> stop_q;
  std::deque<queued> adhoc_q;
  std::deque<queued> continuous_q;
  /// Received ids, oldest first (at most command_history), and as a set.
  std::deque<std::string> received_order;
  std::set<std::string> received;
  std::optional<run> running;
  uint64_t next_number = 1;
  /// A reload waits for the running session's window boundary.
  bool reload_pending = false;
  /// The agent's own one-window session ended.
  bool base_finished = false;
  controller_stats stats;

  /// A command arrived.
  void on_command(control_command cmd);

  /// The agent's options changed.
  void on_reload();

  /// Session `number` ended by itself.
  void on_done(uint64_t number);

  /// Starts what should run (called after every event).
  void step();

  controller_stats current_stats() const;

  /// Seconds since the epoch (cfg.now_s, else the actor clock).
  int64_t now_s() const;

private:
  void start(kind what, std::optional<control_command> cmd);
  void close(close_reason why, bool now);
  void ended(uint64_t number);
  void remember_received(const std::string& id);
  void executed(const std::string& id);
  void report(const control_command& cmd, const std::string& status,
              int64_t secs, const std::string& error);
  /// Handles the stop command at the head of its queue; true if it is done
  /// (else it waits for the running session to close).
  bool serve_stop();
  queued* head_of_running();
};

/// Spawns as `sys.spawn(controller, cfg)`; the first session starts at
/// once (base_run) or with the first command.
controller_actor::behavior_type
controller(controller_actor::stateful_pointer<controller_state> self,
           controller_config cfg);

} // namespace gpa

#pragma once

// The process reaper: the only actor that creates child processes. It starts
// them through a process_launcher, enforces their timeouts (SIGTERM to the
// group, a grace, SIGKILL), caps how many run at once, queues the rest in a
// bounded queue, kills the children of requesters that died, and replies to
// every request exactly once. Nothing in it grows with the number of requests
// served over time: a child is forgotten as soon as it is reported.

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>

#include <caf/actor_addr.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "config/options.hpp"
#include "messages/reaper.hpp"
#include "runtime/process_launcher.hpp"

namespace spdlog {
class logger;
} // namespace spdlog

namespace gpa {

/// The reaper's full interface: the public one plus what only the reaper
/// sends itself (timers) and what its launcher reports.
using reaper_impl = reaper_actor::extend<
    // The launcher reaped a child.
    caf::reacts_to<child_exit>,
    // A child's timeout expired.
    caf::reacts_to<deadline_atom, uint64_t>,
    // A stopped child's grace expired.
    caf::reacts_to<kill_atom, uint64_t>>;

/// Settings of the reaper.
struct reaper_config {
  /// The user's options: children alive at once, requests that may wait.
  reaper_options opts;
  /// The agent's private temporary directory (for stdout_mode::file).
  std::string temp_dir;
};

/// A request waiting for, or holding, a slot.
struct reaper_job {
  uint64_t id = 0;
  run_request req;
  caf::typed_response_promise<run_result> promise;
  caf::actor_addr requester;
};

/// A child that was started and is not reported yet.
struct reaper_child {
  reaper_job job;
  int32_t pid = 0;
  caf::actor_clock::time_point started;
  /// running -> terminating (SIGTERM sent) -> killing (SIGKILL sent).
  enum class phase { running, terminating, killing } state = phase::running;
  bool timed_out = false;
  bool cancelled = false;
  bool killed = false;
};

/// The reaper's state; the handlers of process_reaper() delegate here.
struct reaper_state {
  static inline const char* name = "reaper";

  reaper_impl::pointer self = nullptr;
  std::shared_ptr<rt::process_launcher> launcher;
  reaper_config cfg;
  std::shared_ptr<spdlog::logger> log;

  std::unordered_map<uint64_t, reaper_child> live;
  std::deque<reaper_job> queue;
  /// Requesters monitored, with the number of their jobs (live or queued).
  std::unordered_map<caf::actor_addr, uint32_t> monitored;
  uint64_t next_id = 1;
  reaper_stats totals;

  /// Takes a request: starts it, queues it, or refuses it.
  caf::result<run_result> on_run(run_request& req);

  /// Reports a reaped child to its requester and frees its slot.
  void on_exit(child_exit& report);

  /// The child ran out of time.
  void on_deadline(uint64_t id);

  /// The grace of a stopped child ran out.
  void on_kill(uint64_t id);

  /// Signals every live child with `tag`.
  uint32_t on_signal(const std::string& tag, int32_t sig);

  /// Stops children and drops queued requests with `tag`.
  uint32_t on_cancel(const std::string& tag);

  /// Stops the children of a requester that is gone; `reason` is its exit
  /// reason (a planned stop is logged as such, a crash as a warning).
  void on_requester_down(const caf::actor_addr& who,
                         const caf::error& reason = caf::error{});

  /// Current counts.
  reaper_stats stats() const;

  /// The live children with `tag` ("" for all).
  child_list children(const std::string& tag) const;

private:
  void launch(reaper_job job);
  void start_queued();
  void stop(uint64_t id, reaper_child& child);
  void track(const caf::actor_addr& who);
  void untrack(const caf::actor_addr& who);
};

/// Spawns as `sys.spawn(process_reaper, launcher, cfg)`. At termination every
/// child is killed and reaped.
reaper_impl::behavior_type
process_reaper(reaper_impl::stateful_pointer<reaper_state> self,
               std::shared_ptr<rt::process_launcher> launcher,
               reaper_config cfg);

} // namespace gpa

#pragma once

// The one place where the agent's actors are spawned, wired and shut down.
// spawn_agent() is used by the real agent and by the deterministic
// simulation alike; only the runtime (the OS effects) differs.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include <cstdint>
#include <map>
#include <mutex>

#include "actors/controller.hpp"
#include "actors/output_writer.hpp"
#include "actors/perf_profiler.hpp"
#include "actors/scheduler.hpp"
#include "actors/uploader.hpp"
#include "config/options.hpp"
#include "messages/monitor.hpp"
#include "messages/reaper.hpp"
#include "messages/scheduler.hpp"
#include "runtime/files.hpp"
#include "runtime/host_info.hpp"
#include "runtime/http_client.hpp"
#include "runtime/metrics.hpp"
#include "runtime/proc.hpp"
#include "runtime/process_enricher.hpp"
#include "runtime/process_launcher.hpp"
#include "runtime/runtime_targets.hpp"
#include "runtime/spool.hpp"
#include "runtime/work_queue.hpp"

namespace gpa {

/// Every OS effect the agent's actors use, handed to them at spawn.
struct agent_runtime {
  std::shared_ptr<rt::process_launcher> launcher;
  std::shared_ptr<rt::file_system> fs;
  std::shared_ptr<rt::work_queue> work;
  std::shared_ptr<rt::metrics> metrics;
  /// Wall clock, milliseconds since the Unix epoch.
  std::function<int64_t()> wall_clock_ms;
  /// RSS of a process in KiB.
  std::function<int64_t(int32_t)> rss_kb;
  /// Whether a process exists (for --pids); unset: assume it does.
  std::function<bool(int64_t)> pid_alive;
  rt::host_info host;
  /// The agent's private temporary directory.
  std::string temp_dir;
  int32_t pid = 0;
  /// Agent start, milliseconds since the Unix epoch.
  int64_t spawn_ms = 0;
  /// /proc, for the memory monitor (null: no monitor).
  std::shared_ptr<rt::proc_source> proc;
  /// The HTTP session and the spools of the uploader, Performance Studio's
  /// and Pyroscope's (null http: no uploads; a null spool: the uploader
  /// keeps its write-ahead log in memory, which does not survive the agent).
  std::shared_ptr<rt::http_client> http;
  std::shared_ptr<rt::spool> spool;
  std::shared_ptr<rt::spool> pyroscope_spool;
  /// Where the uploader's blocking HTTP calls run (its own thread).
  std::shared_ptr<rt::work_queue> upload_work;
  /// Gives free heap memory back to the OS; none: nothing.
  std::function<void()> release_memory;
  /// What the merger adds to each process's stacks (container, app id,
  /// application metadata); null: nothing (the simulation).
  std::shared_ptr<rt::process_enricher> enricher;
  /// The processes of a runtime now, after the limits, for its runtime
  /// profiler (each profiler calls the function this makes from its own
  /// thread); unset: no runtime profilers.
  std::function<std::function<std::vector<rt::runtime_target>()>(
      rt::runtime_kind, rt::target_limits)>
      runtime_targets;
  /// Whether the built-in Python profiler runs: it reads real processes'
  /// memory on a thread of its own, so not in the simulation (false there).
  bool python_reader = false;
  /// The agent's own executable (its children that are the agent itself,
  /// e.g. node-attach); "" in the simulation.
  std::string agent_exe;
  /// Runtime-specific application metadata (a JVM's version and flags) that
  /// the runtime profilers find and the enricher adds; null: none.
  std::shared_ptr<rt::app_metadata_extras> metadata_extras;
  /// Whether a process is a JVM (libjvm.so mapped), for the perf
  /// profilers' Java frames; unset: none is.
  std::function<bool(int32_t)> java_process;
  /// Looks a tool up by name or path; unset: the real PATH.
  std::function<std::string(const std::string&)> find_program;
  /// A process's pid in its own PID namespace (dotnet-trace); unset:
  /// rt::namespace_pid().
  std::function<int32_t(int32_t)> namespace_pid;
  /// DOTNET_ROOT of the agent's environment ("" if unset), for dotnet-trace.
  std::string dotnet_root;
  /// The header's cloud metadata now (the background lookup's answer);
  /// none: "unknown" throughout.
  std::function<format::cloud_metadata()> cloud;
  /// The "static" object of the --external-metadata file, as JSON text.
  std::string external_metadata_json = "{}";
  /// The events the perf profilers found (shared by the sessions; null:
  /// spawn_agent makes one).
  std::shared_ptr<perf_event_memo> perf_events;
  /// Seed of the uploader's back-off jitter.
  uint64_t seed = 0;
  /// Actors that block (file writes, HTTP) get their own thread. Off in the
  /// simulation, where nothing blocks.
  bool detach_blocking = true;
};

/// One profiling session's actors (see messages/control.hpp): its merger,
/// profilers and scheduler, and the actor that starts it once its profilers
/// are ready.
struct agent_session {
  uint64_t number = 0;
  /// The options it runs with (the agent's, plus a command's).
  agent_options opts;
  merger_actor merger;
  std::vector<profiler_slot> profilers;
  scheduler_actor scheduler;
  /// Everything, in spawn order (stopped in reverse).
  std::vector<caf::actor> order;
  /// What its runtime tools undo once its actors stopped.
  std::vector<std::function<void()>> at_exit;
};

/// The sessions alive, shared by the controller's effects (which spawn and
/// end them) and the shutdown; and the agent's options, which a reload
/// replaces (a session takes them when it starts).
struct session_registry {
  std::mutex mtx;
  std::map<uint64_t, agent_session> live;
  /// Cleanups of ended sessions still to run (at exit).
  std::vector<std::function<void()>> at_exit;
  agent_options opts;

  /// The newest live session's scheduler (none: an invalid handle).
  scheduler_actor current_scheduler();
};

/// The spawned actors.
struct agent_actors {
  reaper_actor reaper;
  memory_monitor_actor monitor;
  output_writer_actor writer;
  uploader_actor uploader;
  controller_actor controller;
  /// The first session's actors (none with --enable-heartbeat-server).
  merger_actor merger;
  std::vector<profiler_slot> profilers;
  scheduler_actor scheduler;
  /// The actors that outlive sessions, in spawn order (stopped in reverse,
  /// after the controller and the live sessions).
  std::vector<caf::actor> order;
  std::shared_ptr<session_registry> sessions;
  /// Called once the actors stopped (what the runtime tools undo).
  std::vector<std::function<void()>> at_exit;
};

/// Spawns and wires the agent's actors, and the first session unless
/// --enable-heartbeat-server waits for commands; its profilers get ready,
/// then its scheduler starts: when all are ready, or after
/// --perf-start-timeout, whichever comes first (profilers that are not
/// ready yet get timeout stacks until they are). `on_done` is called once a
/// one-shot run has merged its snapshot. `report` sends a command's outcome
/// to Performance Studio (unset: logged only); `ledger` remembers executed
/// command ids across restarts (unset: in memory).
agent_actors
spawn_agent(caf::actor_system& sys, const agent_options& opts,
            const agent_runtime& rt, std::function<void()> on_done,
            std::function<void(const command_outcome&)> report = {},
            std::function<bool(const std::string&)> executed_before = {},
            std::function<void(const std::string&)> remember_executed = {});

/// The options of a session that runs `cmd` (none: the agent's own): its
/// duration, frequency, pids and continuity over `base`. Returns an error
/// text if the command asks for what the options do not allow.
std::string session_options(const agent_options& base,
                            const control_command* cmd, agent_options& out);

/// The options that a reload applies (the profiling ones) from `next` over
/// `running`, the others kept until a restart. `changed` gets one line per
/// option that differs ("name: old -> new"), `kept` the ones that need a
/// restart.
agent_options reloaded_options(const agent_options& running,
                               const agent_options& next,
                               std::vector<std::string>& changed,
                               std::vector<std::string>& kept);

/// Reads the configuration again (SIGHUP): the new options, or an error
/// text naming what is wrong and where.
using options_reader = std::function<std::string(agent_options&)>;

/// Runs the agent with `opts` until its work is done (one window without
/// --continuous) or SIGINT/SIGTERM arrives. Shuts the actors down in order,
/// killing and reaping every child. A second signal during shutdown forces
/// the exit. SIGHUP reads the configuration with `reread` (unset: reloading
/// is not possible) and applies it at the next window boundary. Returns the
/// process exit status.
int run_agent(const agent_options& opts, options_reader reread = {});

} // namespace gpa

#include "app/agent.hpp"
#include "app/studio_link.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <random>
#include <thread>
#include <vector>

#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/logger.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include "actors/memory_monitor.hpp"
#include "actors/merger.hpp"
#include "actors/output_writer.hpp"
#include "actors/perf_profiler.hpp"
#include "actors/process_reaper.hpp"
#include "actors/python_profiler.hpp"
#include "actors/runtime_java.hpp"
#include "actors/runtime_profiler.hpp"
#include "actors/runtime_tools.hpp"
#include "actors/scheduler.hpp"
#include "config/intervals.hpp"
#include "config/load.hpp"
#include "config/version.hpp"
#include "format/col.hpp"
#include "format/flamegraph.hpp"
#include "messages/registry.hpp"
#include "runtime/app_id.hpp"
#include "runtime/cloud_metadata.hpp"
#include "runtime/containers.hpp"
#include "runtime/error.hpp"
#include "runtime/external_metadata.hpp"
#include "runtime/files.hpp"
#include "runtime/host_info.hpp"
#include "runtime/log.hpp"
#include "runtime/metric_names.hpp"
#include "runtime/metrics.hpp"
#include "runtime/metrics_server.hpp"
#include "runtime/proc.hpp"
#include "runtime/process_env.hpp"
#include "runtime/python_collector.hpp"
#include "runtime/python_packages.hpp"
#include "runtime/work_queue.hpp"
#include "runtime/written_file.hpp"

namespace gpa {

namespace {

using namespace std::chrono_literals;

using intervals::shutdown_budget;

/// Stops the actors last-spawned first, waiting for each. The output
/// writer first finishes what is in its mailbox (it answers a request in
/// mailbox order).
struct shutdown_state {
  caf::actor_system& sys;
  const agent_actors& actors;
  /// The uploader's HTTP session, interrupted once the upload in flight had
  /// its moment.
  std::shared_ptr<rt::http_client> http;
  /// Profiles the writer wrote (a one-shot run that wrote none failed).
  uint64_t written = 0;
  /// What the sessions' runtime tools undo, to run once the actors stopped.
  std::vector<std::function<void()>> cleanups;

  void run() {
    caf::scoped_actor self{sys};
    auto deadline = std::chrono::steady_clock::now() + shutdown_budget;
    auto left = [&] {
      auto d = deadline - std::chrono::steady_clock::now();
      return std::chrono::duration_cast<std::chrono::milliseconds>(d < 0s ? 0s
                                                                          : d);
    };
    auto stop = [&](const caf::actor& who) {
      self->monitor(who);
      self->send_exit(who, caf::exit_reason::user_shutdown);
      bool down = false;
      self->receive(
          [&](const caf::down_msg&) {
            down = true;
          },
          caf::after(left()) >> [] {});
      if (!down)
        log::get("agent")->warn("an actor did not stop in time");
    };
    // The controller first, so that no session starts any more; then the
    // live sessions, newest first, each last-spawned actor first.
    if (actors.controller)
      stop(caf::actor_cast<caf::actor>(actors.controller));
    std::vector<agent_session> live;
    if (actors.sessions) {
      std::lock_guard<std::mutex> guard{actors.sessions->mtx};
      for (auto& entry : actors.sessions->live)
        live.push_back(std::move(entry.second));
      actors.sessions->live.clear();
      for (auto& f : actors.sessions->at_exit)
        cleanups.push_back(std::move(f));
      actors.sessions->at_exit.clear();
    }
    for (auto s = live.rbegin(); s != live.rend(); ++s) {
      for (auto i = s->order.rbegin(); i != s->order.rend(); ++i)
        stop(*i);
      for (auto& f : s->at_exit)
        cleanups.push_back(std::move(f));
    }
    auto writer = caf::actor_cast<caf::actor>(actors.writer);
    auto uploader = caf::actor_cast<caf::actor>(actors.uploader);
    for (auto i = actors.order.rbegin(); i != actors.order.rend(); ++i) {
      if (uploader && *i == uploader) {
        // Every profile is in the spool already: the uploader only gets a
        // moment to finish the upload in flight (so that it is not sent
        // again after a restart), then that request is interrupted.
        bool idle = false;
        auto budget = left() > 2s ? 2s : left() / 2;
        self->request(actors.uploader, budget, shutdown_atom_v)
            .receive(
                [&](bool) {
                  idle = true;
                },
                [&](caf::error& err) {
                  log::get("agent")->warn(
                      "the upload in flight did not finish in time ({}); "
                      "interrupting it, it is sent again at the next start",
                      describe(err));
                });
        // Nothing needs HTTP any more (a health check may still be
        // running on the uploader's sender thread): cut what is left.
        if (http)
          http->interrupt();
        if (!idle)
          self->request(actors.uploader, left(), shutdown_atom_v)
              .receive([](bool) {},
                       [](caf::error& err) {
                         log::get("agent")->warn(
                             "the uploader did not stop after the interrupt: "
                             "{}",
                             describe(err));
                       });
      }
      if (writer && *i == writer) {
        self->request(actors.writer, left(), stats_atom_v)
            .receive(
                [&](uint64_t ok, uint64_t) {
                  written = ok;
                },
                [&](caf::error& err) {
                  log::get("agent")->warn(
                      "the output writer did not finish in time: {}",
                      describe(err));
                });
      }
      stop(*i);
    }
  }
};

/// The perf profilers that --perf-mode runs, as (profiler name, how it
/// unwinds): smart records twice, with frame pointers and with DWARF, and the
/// merger keeps the deeper stacks per process (format::combine_smart).
/// The option table admits only the modes below.
std::vector<std::pair<std::string, perf_unwind>>
perf_profilers(const std::string& perf_mode) {
  if (perf_mode == "fp")
    return {{"perf", perf_unwind::frame_pointer}};
  if (perf_mode == "dwarf")
    return {{"perf", perf_unwind::dwarf}};
  if (perf_mode == "smart")
    return {{"perf", perf_unwind::frame_pointer},
            {format::smart_dwarf_profiler, perf_unwind::dwarf}};
  return {}; // disabled
}

/// SIGUSR1/2 do not stop the agent (their default action would, and a stop
/// by a signal exits 0, so systemd's Restart=on-failure would not restart
/// it), nor does SIGHUP where it cannot reload (during the shutdown): one
/// line each time.
void log_ignored_signal(int sig) {
  if (sig == SIGHUP)
    log::get("agent")->warn("received SIGHUP: the configuration cannot be "
                            "reloaded now; ignored");
  else
    log::get("agent")->warn("received {}: it has no meaning for the agent; "
                            "ignored, still running",
                            strsignal(sig));
}

/// The value of environment variable `name`, or "".
std::string env_or_empty(const char* name) {
  auto* v = std::getenv(name);
  return v ? v : "";
}

/// Where the cloud lookup looks (options and, for ECS on Fargate, the
/// environment, as gProfiler reads it).
rt::cloud_sources make_cloud_sources(const metadata_options& m) {
  rt::cloud_sources src;
  src.dmi_dir = m.dmi_dir;
  src.aws_url = m.aws_metadata_url;
  src.gcp_url = m.gcp_metadata_url;
  src.azure_url = m.azure_metadata_url;
  src.aws_execution_env = env_or_empty("AWS_EXECUTION_ENV");
  src.ecs_metadata_uri = env_or_empty("ECS_CONTAINER_METADATA_URI_V4");
  src.aws_region = env_or_empty("AWS_REGION");
  return src;
}

/// The static part of the --external-metadata file for the header, as
/// gProfiler treats the file at start: one that is missing or not a
/// regular file refuses the start, and so does a stale one when metadata is
/// collected; one it cannot parse is a warning and no external metadata.
/// Returns false if the agent must not start.
bool read_static_external_metadata(const metadata_options& m,
                                   std::string& out) {
  auto lg = log::get("agent");
  out = "{}";
  if (m.external_metadata.empty())
    return true;
  using outcome = rt::external_metadata_read::outcome;
  auto ext
      = rt::read_external_metadata(m.external_metadata, rt::wall_clock_ms());
  switch (ext.result) {
    case outcome::ok:
      if (!m.disable_metadata_collection)
        out = ext.data.static_json;
      if (!ext.data.application.empty())
        lg->warn("--external-metadata: its \"application\" part ({} "
                 "process(es)) is not supported yet: it has no effect; the "
                 "\"static\" part is used",
                 ext.data.application.size());
      return true;
    case outcome::unreadable:
      lg->critical("--external-metadata: {}", ext.error);
      return false;
    case outcome::stale:
      if (!m.disable_metadata_collection) {
        lg->critical("--external-metadata: {}; update it or drop "
                     "--external-metadata, and try again",
                     ext.error);
        return false;
      }
      lg->warn("--external-metadata: {}; its application metadata is not "
               "used until it is updated",
               ext.error);
      return true;
    case outcome::invalid:
      lg->warn("--external-metadata: {}; the profiles carry no external "
               "metadata from it",
               ext.error);
      return true;
  }
  return true;
}

/// `find` plus the processes of --python-pyspy-process that run and that
/// `find` did not give (gProfiler profiles them whatever they look like).
std::function<std::vector<rt::runtime_target>()>
with_forced_pids(std::function<std::vector<rt::runtime_target>()> find,
                 std::vector<int64_t> forced) {
  if (forced.empty())
    return find;
  return [find = std::move(find), forced = std::move(forced)] {
    auto found = find();
    auto proc = rt::make_proc_source();
    for (auto pid : forced) {
      if (pid <= 0 || pid > INT32_MAX)
        continue;
      auto p = static_cast<int32_t>(pid);
      if (std::any_of(found.begin(), found.end(), [p](auto& t) {
            return t.pid == p;
          }))
        continue;
      rt::proc_stat st;
      if (!proc->read_stat(p, st) || st.state == 'Z')
        continue;
      rt::runtime_target t;
      t.pid = p;
      t.comm = st.comm;
      t.start_time = st.start_time;
      found.push_back(std::move(t));
    }
    std::sort(found.begin(), found.end(), [](auto& x, auto& y) {
      return x.pid < y.pid;
    });
    return found;
  };
}

/// gProfiler's package versions for py-spy's stacks of a process (its
/// frames' "(FILE.py:LINE)" get " [NAME==VERSION]").
std::function<void(process_stacks&)> make_python_versions() {
  auto packages = std::make_shared<rt::python_packages>();
  return [packages](process_stacks& ps) {
    auto root = "/proc/" + std::to_string(ps.pid) + "/root";
    // The interpreter's version for the standard library's frames.
    auto version = rt::python_full_version(ps.pid);
    for (auto& s : ps.stacks)
      s.stack = rt::add_python_versions(s.stack, [&](const std::string& file) {
        return packages->lookup(root, file, version);
      });
  };
}

/// Asks every profiler of a session to get ready, then starts its
/// scheduler: when all are ready, or after `bound`, whichever comes first.
caf::actor spawn_starter(caf::actor_system& sys,
                         std::vector<profiler_slot> profilers,
                         scheduler_actor sched, caf::timespan bound) {
  return sys.spawn([profilers, sched, bound](caf::event_based_actor* self) {
    auto lg = log::get("agent");
    // Each prepare request is answered once, so the scheduler starts once:
    // when the last answer (or timeout) arrives.
    auto pending = std::make_shared<size_t>(profilers.size());
    auto start = [self, sched] {
      self->send(sched, start_atom_v);
    };
    if (profilers.empty()) {
      lg->warn("no profiler is enabled: profiles will be empty");
      start();
      return;
    }
    for (auto& p : profilers) {
      auto name = p.name;
      self->request(p.handle, bound, prepare_atom_v)
          .then(
              [=](const std::string& status) {
                if (status.empty())
                  lg->info("profiler {} is ready", name);
                else
                  lg->error("profiler {} cannot profile: {}", name, status);
                if (--*pending == 0)
                  start();
              },
              [=](caf::error& err) {
                if (err == caf::sec::request_timeout)
                  lg->warn(
                      "profiler {} is not ready after {} s; starting "
                      "without it",
                      name,
                      std::chrono::duration_cast<std::chrono::seconds>(bound)
                          .count());
                else
                  lg->error("profiler {} failed to prepare: {}", name,
                            describe(err));
                if (--*pending == 0)
                  start();
              });
    }
  });
}

/// Spawns session `number` with `opts` over the agent's lasting actors
/// `a`, and its starter.
agent_session spawn_session(caf::actor_system& sys, const agent_options& opts,
                            const agent_runtime& rt, const agent_actors& a,
                            uint64_t number, std::function<void()> on_done) {
  agent_session s;
  s.number = number;
  s.opts = opts;
  auto add = [&](const auto& handle) {
    s.order.push_back(caf::actor_cast<caf::actor>(handle));
  };

  merger_config mcfg;
  mcfg.header.host = rt.host;
  mcfg.header.agent_version = agent_version;
  mcfg.header.spawn_ms = rt.spawn_ms;
  mcfg.header.pid = rt.pid;
  mcfg.header.run_arguments_json = config::to_json(opts);
  mcfg.header.metadata_enabled = !opts.metadata.disable_metadata_collection;
  mcfg.header.external_metadata_json = rt.external_metadata_json;
  // gProfiler writes its default frequency when no system profiler runs.
  mcfg.header.sampling_frequency = perf_profilers(opts.perf.mode).empty()
                                       ? scheduler_options{}.frequency
                                       : opts.scheduler.frequency;
  mcfg.cloud = rt.cloud;
  mcfg.collect_metrics = !opts.metadata.disable_metrics_collection;
  mcfg.monitor = a.monitor;
  mcfg.release_memory = rt.release_memory;
  mcfg.uploader = a.uploader;
  mcfg.enricher = rt.enricher;
  if (!a.uploader && a.writer)
    mcfg.writer = caf::actor_cast<profile_sink_actor>(a.writer);
  // The merger's enrichment blocks (it reads /proc and asks Docker and the
  // CRI runtime for container names, up to 500 ms each): its own thread, so
  // that the scheduler and the profilers never wait behind it.
  s.merger = rt.detach_blocking ? sys.spawn<caf::detached>(merger, mcfg)
                                : sys.spawn(merger, mcfg);
  add(s.merger);

  auto add_perf = [&](const std::string& name, perf_unwind mode) {
    perf_config pcfg;
    pcfg.name = name;
    pcfg.opts = opts.perf;
    pcfg.unwind = mode;
    // gProfiler injects jitdumps into the frame-pointer recording only.
    pcfg.inject_jit = opts.runtimes.nodejs_mode == "perf"
                      && mode == perf_unwind::frame_pointer;
    pcfg.frequency = opts.scheduler.frequency;
    pcfg.pids = opts.scheduler.pids;
    pcfg.temp_dir = rt.temp_dir;
    pcfg.kill_grace = opts.reaper.kill_grace;
    pcfg.rss_kb = rt.rss_kb;
    pcfg.alive = rt.pid_alive;
    // Java frames of JVMs marked as gProfiler marks them, when the Java
    // profiler runs (it makes the JVMs write the maps perf reads).
    if (opts.runtimes.java_mode != "disabled")
      pcfg.java_process = rt.java_process;
    pcfg.events = rt.perf_events;
    auto perf
        = sys.spawn(perf_profiler, pcfg, a.reaper, rt.fs, rt.work, rt.metrics);
    add(perf);
    profiler_slot slot;
    slot.name = name;
    slot.handle = caf::actor_cast<profiler_actor>(perf);
    s.profilers.push_back(std::move(slot));
  };
  for (auto& [name, mode] : perf_profilers(opts.perf.mode))
    add_perf(name, mode);

  // The runtime profilers, one actor per runtime.
  rt::target_limits limits;
  limits.pids = opts.scheduler.pids;
  limits.min_age_s = opts.compat.min_duration;
  limits.max_processes = opts.compat.max_processes_runtime_profiler;
  auto add_slot = [&](const std::string& name, const auto& actor) {
    add(actor);
    profiler_slot slot;
    slot.name = name;
    slot.runtime = true;
    slot.handle = caf::actor_cast<profiler_actor>(actor);
    s.profilers.push_back(std::move(slot));
  };
  // `find`: where its targets come from (unset: the runtime's scan).
  auto add_runtime
      = [&](std::shared_ptr<runtime_tool> tool,
            std::function<std::vector<rt::runtime_target>()> find = {}) {
          if (!tool || !rt.runtime_targets)
            return;
          runtime_config rcfg;
          rcfg.concurrency = opts.runtimes.concurrency;
          rcfg.profile_spawned = opts.compat.profile_spawned_processes;
          runtime_target_source source;
          source.find = find ? std::move(find)
                             : rt.runtime_targets(tool->kind(), limits);
          source.alive = rt.pid_alive;
          s.at_exit.emplace_back([tool] {
            tool->at_exit();
          });
          add_slot(tool->name(),
                   sys.spawn(runtime_profiler, rcfg, tool, source, a.reaper));
        };
  java_tool_config java;
  java.runtimes = opts.runtimes;
  java.compat = opts.compat;
  java.which = rt.find_program;
  java.extras = rt.metadata_extras;
  java.frequency = opts.scheduler.frequency;
  java.temp_dir = rt.temp_dir;
  java.fs = rt.fs;
  add_runtime(make_java_tool(std::move(java)));
  add_runtime(make_nodejs_tool(opts.runtimes, rt.agent_exe,
                               find_node_addon_dir(rt.agent_exe)));
  // Ruby, PHP and .NET: rbspy, phpspy and dotnet-trace, writing their output
  // to the private temporary directory.
  tool_context tools;
  tools.which = rt.find_program;
  tools.temp_dir = rt.temp_dir;
  tools.fs = rt.fs;
  tools.frequency = opts.scheduler.frequency;
  tools.namespace_pid = rt.namespace_pid;
  tools.dotnet_root = rt.dotnet_root;
  add_runtime(make_ruby_tool(opts.runtimes, tools));
  add_runtime(make_php_tool(opts.runtimes, opts.compat, tools));
  add_runtime(make_dotnet_tool(opts.runtimes, tools));
  // Python: the built-in CPython reader, or py-spy once per process and
  // window when --py-spy-path names it (gProfiler's pyspy mode).
  if (opts.runtimes.python_mode != "disabled" && rt.runtime_targets) {
    auto find
        = with_forced_pids(rt.runtime_targets(rt::runtime_kind::python, limits),
                           opts.compat.python_pyspy_process);
    if (!opts.runtimes.py_spy_path.empty()) {
      std::function<void(process_stacks&)> versions;
      if (!opts.compat.no_python_versions)
        versions = make_python_versions();
      add_runtime(make_pyspy_tool(opts.runtimes.py_spy_path, tools,
                                  std::move(versions)),
                  std::move(find));
    } else if (rt.python_reader) {
      python_profiler_config pcfg;
      pcfg.collector.frequency = opts.scheduler.frequency;
      pcfg.collector.add_versions = !opts.compat.no_python_versions;
      if (opts.compat.profile_spawned_processes)
        pcfg.collector.spawn_poll = std::chrono::seconds(1);
      pcfg.find = std::move(find);
      pcfg.extras = rt.metadata_extras;
      if (opts.runtimes.python_mode == "pyperf")
        pcfg.note = "--python-mode pyperf: PyPerf (eBPF) is not built, the "
                    "built-in reader is used";
      add_slot("python", sys.spawn(python_profiler, std::move(pcfg)));
    }
  }

  scheduler_config scfg;
  scfg.opts = opts.scheduler;
  scfg.wall_clock_ms = rt.wall_clock_ms;
  scfg.on_done = std::move(on_done);
  if (auto& path = opts.compat.heartbeat_file; !path.empty() && rt.work) {
    // On the work queue: a file system that hangs never holds the
    // scheduler. A failure is logged when it changes, not every window.
    auto last = std::make_shared<std::string>();
    scfg.on_window = [work = rt.work, path, last](uint64_t) {
      work->post([path, last] {
        auto why = rt::touch_file(path);
        if (why != *last && !why.empty())
          log::get("agent")->warn("--heartbeat-file: {}", why);
        *last = std::move(why);
      });
    };
  }
  s.scheduler = caf::actor_cast<scheduler_actor>(
      sys.spawn(scheduler, scfg, s.profilers, s.merger, a.reaper, rt.metrics));
  add(s.scheduler);

  // Everything that acts on memory pressure listens to the monitor: the
  // system profilers (perf) do, runtime profilers are skipped by the
  // scheduler instead. The monitor forgets each when it stops.
  if (a.monitor) {
    auto listen = [&](const auto& handle) {
      caf::anon_send(a.monitor, subscribe_atom_v,
                     caf::actor_cast<pressure_listener_actor>(handle));
    };
    listen(s.scheduler);
    listen(s.merger);
    for (auto& p : s.profilers)
      if (!p.runtime)
        listen(p.handle);
  }
  s.order.push_back(
      spawn_starter(sys, s.profilers, s.scheduler, opts.perf.start_timeout));
  return s;
}

} // namespace

agent_actors
spawn_agent(caf::actor_system& sys, const agent_options& opts,
            const agent_runtime& rt, std::function<void()> on_done,
            std::function<void(const command_outcome&)> report,
            std::function<bool(const std::string&)> executed_before,
            std::function<void(const std::string&)> remember_executed) {
  agent_actors a;
  auto add = [&](const auto& handle) {
    a.order.push_back(caf::actor_cast<caf::actor>(handle));
  };

  reaper_config rcfg;
  rcfg.opts = opts.reaper;
  rcfg.temp_dir = rt.temp_dir;
  a.reaper = caf::actor_cast<reaper_actor>(
      sys.spawn(process_reaper, rt.launcher, rcfg));
  add(a.reaper);

  if (rt.proc) {
    auto mcfg = make_monitor_config(opts.monitor);
    // A /proc scan of a large host takes a while: its own thread.
    a.monitor = caf::actor_cast<memory_monitor_actor>(
        rt.detach_blocking
            ? sys.spawn<caf::detached>(memory_monitor, rt.proc, rt.metrics,
                                       mcfg)
            : sys.spawn(memory_monitor, rt.proc, rt.metrics, mcfg));
    add(a.monitor);
  }

  // The output writer, if any (the uploader, if any, comes first: it hands
  // every profile on to the writer once it is stored).
  std::vector<profile_sink_actor> sinks;
  if (!opts.output.dir.empty()) {
    writer_config wcfg;
    wcfg.opts = opts.output;
    wcfg.release_memory = rt.release_memory;
    if (!opts.output.no_flamegraph)
      wcfg.render_page = [](std::string_view col) {
        return format::render_flamegraph(col);
      };
    a.writer = rt.detach_blocking
                   ? sys.spawn<caf::detached>(output_writer, wcfg, rt.fs)
                   : sys.spawn(output_writer, wcfg, rt.fs);
    add(a.writer);
    sinks.push_back(caf::actor_cast<profile_sink_actor>(a.writer));
  }

  if (rt.http) {
    auto ucfg = make_uploader_config(opts, rt.host.hostname, rt.spawn_ms);
    ucfg.rng_seed = rt.seed;
    // Write-ahead: the uploader stores each profile in its spools, then
    // hands it on to the output writer.
    if (!sinks.empty())
      ucfg.next = sinks.front();
    uploader_effects ufx;
    ufx.http = rt.http;
    ufx.studio_spool = rt.spool;
    ufx.pyroscope_spool = rt.pyroscope_spool;
    ufx.sender = rt.upload_work;
    ufx.metrics = rt.metrics;
    a.uploader = caf::actor_cast<uploader_actor>(
        rt.detach_blocking
            ? sys.spawn<caf::detached>(uploader, std::move(ufx), ucfg)
            : sys.spawn(uploader, std::move(ufx), ucfg));
    add(a.uploader);
  }

  if (a.monitor && a.uploader)
    caf::anon_send(a.monitor, subscribe_atom_v,
                   caf::actor_cast<pressure_listener_actor>(a.uploader));

  // Sessions: the controller starts and ends them through these effects,
  // which run in its context (spawning does not block).
  a.sessions = std::make_shared<session_registry>();
  a.sessions->opts = opts;
  auto registry = a.sessions;
  // The controller's handle, for the sessions' "done" (set below, long
  // before any session can end).
  auto ctl = std::make_shared<controller_actor>();
  auto core = std::make_shared<agent_actors>(a);
  auto shared_rt = std::make_shared<agent_runtime>(rt);
  // Later sessions' perf profilers start with the event the first found.
  if (!shared_rt->perf_events)
    shared_rt->perf_events = std::make_shared<perf_event_memo>();
  auto start_one = [&sys, registry, core,
                    shared_rt](const session_spec& spec) -> session_start {
    agent_options base;
    {
      std::lock_guard<std::mutex> guard{registry->mtx};
      base = registry->opts;
    }
    agent_options sopts;
    auto why
        = session_options(base, spec.command ? &*spec.command : nullptr, sopts);
    if (!why.empty())
      return {scheduler_actor{}, why};
    if (spec.command && !sopts.scheduler.pids.empty() && shared_rt->pid_alive
        && std::none_of(sopts.scheduler.pids.begin(),
                        sopts.scheduler.pids.end(), shared_rt->pid_alive))
      return {scheduler_actor{}, "none of the processes "
                                     + rt::join_pids(sopts.scheduler.pids)
                                     + " is running"};
    auto s = spawn_session(sys, sopts, *shared_rt, *core, spec.number,
                           spec.on_done);
    auto sched = s.scheduler;
    std::lock_guard<std::mutex> guard{registry->mtx};
    registry->live.emplace(spec.number, std::move(s));
    return {sched, {}};
  };
  controller_config ccfg;
  ccfg.base_run = !opts.compat.enable_heartbeat_server;
  ccfg.start_session = start_one;
  ccfg.end_session = [registry, work = rt.work](uint64_t number) {
    agent_session s;
    {
      std::lock_guard<std::mutex> guard{registry->mtx};
      auto i = registry->live.find(number);
      if (i == registry->live.end())
        return;
      s = std::move(i->second);
      registry->live.erase(i);
    }
    // Its last window is merged: its actors stop (the reaper ends their
    // children), then what its runtime tools left behind is undone, off
    // the controller's thread (it may wait for processes).
    for (auto i = s.order.rbegin(); i != s.order.rend(); ++i)
      caf::anon_send_exit(*i, caf::exit_reason::user_shutdown);
    if (s.at_exit.empty())
      return;
    if (work) {
      work->post([fs = std::move(s.at_exit)] {
        for (auto& f : fs)
          f();
      });
    } else {
      std::lock_guard<std::mutex> guard{registry->mtx};
      for (auto& f : s.at_exit)
        registry->at_exit.push_back(std::move(f));
    }
  };
  ccfg.report = std::move(report);
  ccfg.executed_before = std::move(executed_before);
  ccfg.remember_executed = std::move(remember_executed);
  ccfg.on_finished = std::move(on_done);
  ccfg.now_s = [clock = rt.wall_clock_ms] {
    return clock ? clock() / 1000 : int64_t{0};
  };
  // The first session starts here, so that its actors are known to the
  // caller (the simulation looks at them); later ones by the controller.
  if (ccfg.base_run) {
    session_spec first;
    first.number = 1;
    first.on_done = [ctl] {
      caf::anon_send(*ctl, done_atom_v, uint64_t{1});
    };
    ccfg.first = start_one(first);
    if (ccfg.first.scheduler) {
      std::lock_guard<std::mutex> guard{registry->mtx};
      auto& s = registry->live.at(1);
      a.merger = s.merger;
      a.profilers = s.profilers;
      a.scheduler = s.scheduler;
    }
  }
  a.controller = sys.spawn(controller, std::move(ccfg));
  *ctl = a.controller;
  return a;
}

scheduler_actor session_registry::current_scheduler() {
  std::lock_guard<std::mutex> guard{mtx};
  if (live.empty())
    return {};
  return live.rbegin()->second.scheduler;
}

namespace {

/// The lookups the merger's enricher makes, as the options turn them on.
rt::enricher_parts
enricher_parts_of(const agent_options& opts,
                  std::shared_ptr<rt::app_metadata_extras> extras) {
  rt::enricher_parts parts;
  // Container names from the runtimes' sockets, as gProfiler's
  // ContainerNamesClient (unless --disable-container-names).
  if (!opts.compat.disable_container_names) {
    rt::container_sockets sockets;
    sockets.docker = opts.containers.docker_socket;
    sockets.cri = opts.containers.cri_sockets;
    auto names = std::make_shared<rt::container_names>(std::move(sockets));
    parts.container_name = [names](int32_t pid) {
      return names->name_of(pid);
    };
  }
  // App ids and application metadata for the processes gProfiler gives
  // them to (Python, Java, Ruby, Node.js; see runtime/app_id.hpp). The
  // metadata holds gProfiler's common fields (exe, execfn, arch); the
  // runtimes' own fields come from their runtime profilers (extras).
  rt::app_id_options ids;
  ids.args_filter = opts.compat.app_id_args_filter;
  ids.java_spark_app_name = opts.compat.java_collect_spark_app_name_as_appid;
  ids.agent_pid = static_cast<int32_t>(::getpid());
  // gProfiler gives Java and Ruby ids and metadata through their profilers
  // only: --no-java / --java-mode disabled and --no-ruby / --ruby-mode
  // disabled turn them off (Python's through its application metadata,
  // which its profiler gives).
  ids.java = opts.runtimes.java_mode != "disabled";
  ids.python = opts.runtimes.python_mode != "disabled";
  ids.ruby = opts.runtimes.ruby_mode != "disabled";
  if (!opts.compat.disable_application_identifiers)
    parts.app_id = [ids](int32_t pid) {
      return rt::app_id_of(pid, ids);
    };
  if (!opts.compat.disable_application_metadata) {
    parts.app_metadata_json = [ids](int32_t pid) {
      return rt::application_metadata_of(pid, ids);
    };
    // A JVM's version and flags, from the Java profiler.
    parts.extras = std::move(extras);
  }
  return parts;
}

} // namespace

int run_agent(const agent_options& given, options_reader reread) {
  auto lg = log::get("agent");
  // What start-up rules change (--skip-system-profilers-above).
  agent_options opts = given;
  bool perf_skipped = false;
  // gProfiler's start-up rules: profiling from inside a PID namespace sees
  // only its processes (and perf's pids would not match /proc's), so it is
  // refused unless asked for; a crashing tool leaves no core file.
  if (!opts.compat.disable_pidns_check && !rt::in_init_pid_namespace()) {
    lg->critical("{}", rt::pid_namespace_message);
    return 1;
  }
  if (auto limit = opts.compat.skip_system_profilers_above;
      limit > 0 && !perf_profilers(opts.perf.mode).empty()) {
    // gProfiler's rule: counted once at start; over the limit, perf is not
    // run at all and the runtime profilers go on.
    std::vector<int32_t> pids;
    rt::make_proc_source()->list_pids(pids);
    if (static_cast<int64_t>(pids.size()) > limit) {
      lg->warn("skipping the system profilers (perf): {} processes exceed "
               "--skip-system-profilers-above {}; the runtime profilers go "
               "on",
               pids.size(), limit);
      opts.perf.mode = "disabled";
      perf_skipped = true;
    } else {
      lg->debug("{} processes (--skip-system-profilers-above {})", pids.size(),
                limit);
    }
  }
  if (!opts.compat.dont_disable_core_files)
    if (auto why = rt::disable_core_files(); !why.empty())
      lg->warn("{}", why);
  if (auto& pids = opts.scheduler.pids; !pids.empty()) {
    // A process list that names nothing running is a mistake to report now,
    // not a profile of nothing; a process that exits later is expected.
    std::vector<int64_t> missing;
    std::copy_if(pids.begin(), pids.end(), std::back_inserter(missing),
                 [](int64_t pid) {
                   return !rt::process_exists(pid);
                 });
    if (missing.size() == pids.size()) {
      lg->critical("--pids: no process {} is running", rt::join_pids(missing));
      return 2;
    }
    if (!missing.empty())
      lg->warn("--pids: process(es) {} not running; profiling the others",
               rt::join_pids(missing));
  }
  // So is a heartbeat file that cannot be touched.
  if (auto& path = opts.compat.heartbeat_file; !path.empty())
    if (auto why = rt::touch_file(path); !why.empty()) {
      lg->critical("--heartbeat-file: {}", why);
      return 2;
    }
  // An output directory that cannot take files is found now, not when the
  // first window ends.
  if (!opts.output.dir.empty()) {
    if (auto why = rt::check_output_dir(opts.output.dir); !why.empty()) {
      lg->critical("{}", why);
      return 2;
    }
  }
  agent_runtime rt;
  if (!read_static_external_metadata(opts.metadata, rt.external_metadata_json))
    return 2;
  // Cloud metadata is looked up in the background (only if the DMI data
  // names a cloud): the header says "unknown" until it is there.
  std::unique_ptr<rt::cloud_metadata_lookup> cloud_lookup;
  if (!opts.metadata.disable_metadata_collection) {
    auto cloud = std::make_shared<rt::cloud_metadata_holder>();
    cloud_lookup = std::make_unique<rt::cloud_metadata_lookup>(
        make_cloud_sources(opts.metadata),
        rt::make_curl_http_client(rt::cloud_http_options()), cloud);
    rt.cloud = [cloud] {
      return cloud->get();
    };
  }
  // Agents killed with SIGKILL (or crashed) left their directories.
  for (auto& name : rt::remove_stale_temp_dirs(opts.reaper.temp_root))
    lg->info("removed the temporary directory of a dead agent: {}/{}",
             opts.reaper.temp_root, name);
  caf::actor_system_config cfg;
  add_message_types(cfg);
  // Two cores are the norm on our hosts, and the actors never block.
  cfg.set("scheduler.max-threads", 2);
  // Destroyed by the stopper thread below, so that the main thread still
  // watches for a second signal while the system waits for its actors.
  auto sys = std::make_unique<caf::actor_system>(cfg);
  std::unique_ptr<rt::private_temp_dir> temp;
  try {
    temp = std::make_unique<rt::private_temp_dir>(opts.reaper.temp_root);
  } catch (const std::exception& ex) {
    lg->critical("{}", ex.what());
    return 1;
  }
  rt.spawn_ms = rt::wall_clock_ms();
  rt.launcher = rt::make_posix_launcher();
  rt.fs = rt::make_posix_file_system();
  rt.work = rt::make_thread_work_queue();
  rt.metrics = std::make_shared<rt::metrics>();
  rt.wall_clock_ms = rt::wall_clock_ms;
  rt.rss_kb = rt::process_rss_kb;
  rt.pid_alive = rt::process_exists;
  rt.namespace_pid = [](int32_t pid) {
    return rt::namespace_pid(pid);
  };
  if (const char* root = std::getenv("DOTNET_ROOT"))
    rt.dotnet_root = root;
  rt.host = rt::read_host_info();
  rt.temp_dir = temp->path();
  rt.pid = static_cast<int32_t>(::getpid());
  {
    char exe[4096];
    auto n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0)
      rt.agent_exe.assign(exe, static_cast<size_t>(n));
  }
  rt.seed = std::random_device{}();
  rt::limit_malloc_arenas();
  rt.release_memory = rt::release_free_memory;
  rt.proc = rt::make_proc_source();
  rt.python_reader = true;
  rt.runtime_targets = [php_filter = opts.compat.php_proc_filter](
                           rt::runtime_kind kind, rt::target_limits limits) {
    // One finder per runtime profiler, used from its thread only.
    auto finder = std::make_shared<rt::target_finder>(
        rt::make_proc_source(), "/proc", 10,
        kind == rt::runtime_kind::php ? php_filter : std::string{});
    auto hz = static_cast<uint64_t>(std::max(1L, ::sysconf(_SC_CLK_TCK)));
    return [finder, kind, limits, hz] {
      double up = 0;
      if (auto text = rt::read_input_file("/proc/uptime", 4096))
        std::sscanf(text->c_str(), "%lf", &up);
      auto now = static_cast<uint64_t>(up * static_cast<double>(hz));
      auto found = finder->scan({kind}, now, hz);
      return rt::select_targets(std::move(found[kind]), limits);
    };
  };
  if (!opts.compat.disable_application_metadata)
    rt.metadata_extras = std::make_shared<rt::app_metadata_extras>();
  rt.java_process = [](int32_t pid) {
    return rt::process_maps_match(rt::runtime_kind::java, pid);
  };
  rt.enricher = rt::make_process_enricher(
      enricher_parts_of(opts, rt.metadata_extras), rt::make_proc_source());
  std::vector<std::string> enabled;
  for (auto& profiler : perf_profilers(opts.perf.mode))
    enabled.push_back(profiler.first);
  rt::metric::declare_all(*rt.metrics, enabled);
  std::unique_ptr<rt::metrics_server> metrics_endpoint;
  if (!opts.monitor.metrics_address.empty()) {
    try {
      metrics_endpoint = std::make_unique<rt::metrics_server>(
          opts.monitor.metrics_address, rt.metrics);
    } catch (const std::exception& ex) {
      lg->critical("{}", ex.what());
      return 1;
    }
  }
  if (opts.upload.enabled || !opts.upload.pyroscope_url.empty()) {
    rt.http = rt::make_curl_http_client(make_http_options(opts.upload));
    rt.upload_work = rt::make_thread_work_queue();
    auto open_spool = [&](const std::string& dir, const char* backend) {
      std::shared_ptr<rt::spool> result;
      if (auto sp = rt::spool::open(dir, make_spool_limits(opts.upload)))
        result = *sp;
      else
        lg->error("{}; profiles waiting for {} are kept in memory only and "
                  "are lost if the agent stops before they are sent",
                  describe(sp.error()), backend);
      return result;
    };
    if (opts.upload.enabled)
      rt.spool = open_spool(opts.upload.spool_dir, "Performance Studio");
    if (!opts.upload.pyroscope_url.empty())
      rt.pyroscope_spool
          = open_spool(opts.upload.spool_dir + "/pyroscope", "Pyroscope");
  }
  std::atomic<bool> done{false};
  // Performance Studio's control plane: commands from heartbeats; the ids
  // executed are kept next to the spool.
  std::unique_ptr<studio_link> studio;
  std::function<void(const command_outcome&)> report;
  std::function<bool(const std::string&)> executed_before;
  std::function<void(const std::string&)> remember_executed;
  if (opts.compat.enable_heartbeat_server) {
    studio = std::make_unique<studio_link>(
        opts, rt.host.hostname, opts.upload.spool_dir + "/executed-commands");
    auto* link = studio.get();
    report = [link](const command_outcome& o) {
      link->report(o);
    };
    executed_before = [link](const std::string& id) {
      return link->executed_before(id);
    };
    remember_executed = [link](const std::string& id) {
      link->remember_executed(id);
    };
  }
  auto actors = spawn_agent(
      *sys, opts, rt,
      [&done] {
        done = true;
      },
      report, executed_before, remember_executed);
  if (studio) {
    studio->start(actors.controller);
    lg->info("gprofiler-agent {} running (PID {}), profiling on Performance "
             "Studio's commands",
             agent_version, rt.pid);
  } else {
    lg->info("gprofiler-agent {} running (PID {}), {} window(s) of {} s",
             agent_version, rt.pid,
             opts.scheduler.continuous ? "continuous" : "one",
             opts.scheduler.duration.count());
  }

  // -- wait for the end
  // --------------------------------------------------------

  // SIGHUP: the configuration is read again and checked; a good one
  // applies at the next window boundary, a bad one changes nothing.
  auto reload = [&] {
    if (!reread) {
      log_ignored_signal(SIGHUP);
      return;
    }
    lg->info("received SIGHUP: reading the configuration again");
    agent_options next;
    if (auto why = reread(next); !why.empty()) {
      lg->error("SIGHUP: the configuration was not reloaded, the running one "
                "stays: {}",
                why);
      return;
    }
    if (perf_skipped)
      next.perf.mode = "disabled";
    if (auto& pids = next.scheduler.pids;
        !pids.empty()
        && std::none_of(pids.begin(), pids.end(), rt::process_exists)) {
      lg->error("SIGHUP: the configuration was not reloaded, the running one "
                "stays: --pids: no process {} is running",
                rt::join_pids(pids));
      return;
    }
    agent_options current;
    {
      std::lock_guard<std::mutex> guard{actors.sessions->mtx};
      current = actors.sessions->opts;
    }
    std::vector<std::string> changed, kept;
    auto merged = reloaded_options(current, next, changed, kept);
    for (auto& k : kept)
      lg->warn("SIGHUP: {} changed: it applies at the next start of the "
               "agent only; the running value stays",
               k);
    if (changed.empty()) {
      lg->info("SIGHUP: nothing changed that applies while running");
      return;
    }
    for (auto& c : changed)
      lg->info("SIGHUP: {}", c);
    {
      std::lock_guard<std::mutex> guard{actors.sessions->mtx};
      actors.sessions->opts = merged;
    }
    std::string effective = config::to_json(merged);
    effective.erase(std::remove(effective.begin(), effective.end(), '\n'),
                    effective.end());
    lg->info("SIGHUP: the new configuration applies at the next window "
             "boundary; effective configuration: {}",
             effective);
    caf::anon_send(actors.controller, reload_atom_v);
  };
  int sig = 0;
  while (sig == 0 && !done) {
    sig = rt::wait_agent_signal(intervals::signal_wait);
    if (sig == SIGHUP) {
      reload();
      sig = 0;
    } else if (sig != 0 && !rt::is_stop_signal(sig)) {
      log_ignored_signal(sig);
      sig = 0;
    }
  }
  if (sig != 0)
    lg->info("received {}; shutting down", strsignal(sig));
  // No command arrives once the actors stop.
  if (studio)
    studio->stop();
  // A metadata request still in flight ends while the actors stop.
  if (cloud_lookup)
    cloud_lookup->stop();
  auto at_exit = actors.at_exit;
  shutdown_state stop{*sys, actors, rt.http, 0, {}};
  std::atomic<bool> stopped{false};
  bool has_writer = static_cast<bool>(actors.writer);
  // The system's destructor waits until its logger is released, and the
  // thread that created the system holds it: let go of it here.
  caf::logger::set_current_actor_system(nullptr);
  std::thread stopper([&] {
    stop.run();
    // No handle may outlive the system; its destructor waits for every
    // actor, detached ones included.
    actors = agent_actors{};
    sys.reset();
    stopped = true;
  });
  while (!stopped) {
    int again = rt::wait_agent_signal(100ms);
    if (again != 0 && !rt::is_stop_signal(again)) {
      log_ignored_signal(again);
    } else if (again != 0) {
      lg->warn("received {} again; forcing the exit", strsignal(again));
      rt.launcher->kill_all();
      // Forced: no waiting for the API server either.
      log::stop_shipping(std::chrono::milliseconds{0});
      log::shutdown();
      std::_Exit(1);
    }
  }
  stopper.join();
  for (auto& f : stop.cleanups)
    f();
  for (auto& f : at_exit)
    f();
  int status = 0;
  if (!opts.scheduler.continuous && sig == 0 && has_writer
      && stop.written == 0) {
    lg->error("the profile could not be written to {}", opts.output.dir);
    status = 1;
  }
  lg->info("stopped");
  return status;
}

} // namespace gpa

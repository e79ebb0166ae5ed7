#include "actors/agent.hpp"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <thread>
#include <vector>

#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include "actors/merger.hpp"
#include "actors/output_writer.hpp"
#include "actors/perf_profiler.hpp"
#include "actors/process_reaper.hpp"
#include "actors/scheduler.hpp"
#include "config/load.hpp"
#include "config/version.hpp"
#include "messages/error.hpp"
#include "messages/registry.hpp"
#include "runtime/files.hpp"
#include "runtime/host_info.hpp"
#include "runtime/log.hpp"
#include "runtime/metrics.hpp"
#include "runtime/process_env.hpp"
#include "runtime/work_queue.hpp"

namespace gpa {

namespace {

using namespace std::chrono_literals;

/// How long the ordered shutdown may take before the agent stops waiting.
constexpr auto shutdown_budget = 4s;

/// The actors of a running agent, in spawn order, and what is needed to
/// stop them in the right order.
struct running_agent {
  caf::actor_system& sys;
  /// Spawn order; stopped last-first.
  std::vector<caf::actor> actors;
  /// Sinks to drain before they stop (answer a request in mailbox order).
  output_writer_actor writer;
  uint64_t written = 0;
  uint64_t write_failures = 0;

  explicit running_agent(caf::actor_system& sys) : sys(sys) {}

  template <class Handle>
  void add(const Handle& h) {
    actors.push_back(caf::actor_cast<caf::actor>(h));
  }

  /// Stops the actors last-spawned first, waiting for each. Sinks first
  /// finish what is in their mailboxes.
  void shutdown() {
    caf::scoped_actor self{sys};
    auto deadline = std::chrono::steady_clock::now() + shutdown_budget;
    auto left = [&] {
      auto d = deadline - std::chrono::steady_clock::now();
      return std::chrono::duration_cast<std::chrono::milliseconds>(d < 0s ? 0s
                                                                          : d);
    };
    for (auto i = actors.rbegin(); i != actors.rend(); ++i) {
      if (writer && *i == caf::actor_cast<caf::actor>(writer)) {
        self->request(writer, left(), stats_atom_v)
            .receive(
                [&](uint64_t ok, uint64_t failed) {
                  written = ok;
                  write_failures = failed;
                },
                [&](caf::error&) {});
      }
      self->monitor(*i);
      self->send_exit(*i, caf::exit_reason::user_shutdown);
      bool down = false;
      self->receive(
          [&](const caf::down_msg&) {
            down = true;
          },
          caf::after(left()) >> [] {});
      if (!down)
        log::get("agent")->warn("an actor did not stop in time");
    }
  }
};

std::string run_arguments_json(const agent_options& opts) {
  return config::to_json(opts);
}

} // namespace

int run_agent(const agent_options& opts) {
  auto lg = log::get("agent");
  caf::actor_system_config cfg;
  add_message_types(cfg);
  // Two cores are the norm on our hosts, and the actors never block.
  cfg.set("scheduler.max-threads", 2);
  caf::actor_system sys{cfg};
  std::unique_ptr<rt::private_temp_dir> temp;
  try {
    temp = std::make_unique<rt::private_temp_dir>(opts.reaper.temp_root);
  } catch (const std::exception& ex) {
    lg->critical("{}", ex.what());
    return 1;
  }
  auto spawn_ms = rt::wall_clock_ms();
  std::shared_ptr<rt::process_launcher> launcher = rt::make_posix_launcher();
  auto fs = rt::make_posix_file_system();
  auto work = rt::make_thread_work_queue();
  auto metrics = std::make_shared<rt::metrics>();
  std::atomic<bool> done{false};
  running_agent agent{sys};

  // -- spawn and wire, dependencies first ------------------------------------

  reaper_config rcfg;
  rcfg.max_children = static_cast<uint32_t>(opts.reaper.max_children);
  rcfg.max_queued = static_cast<uint32_t>(opts.reaper.max_queued);
  rcfg.temp_dir = temp->path();
  auto reaper = caf::actor_cast<reaper_actor>(
      sys.spawn(process_reaper, launcher, rcfg));
  agent.add(reaper);

  std::vector<profile_sink_actor> sinks;
  if (!opts.output.dir.empty()) {
    writer_config wcfg;
    wcfg.dir = opts.output.dir;
    wcfg.rotating = opts.output.rotating;
    wcfg.keep = opts.output.rotating_keep;
    auto writer = sys.spawn<caf::detached>(output_writer, wcfg, fs);
    agent.writer = writer;
    agent.add(writer);
    sinks.push_back(caf::actor_cast<profile_sink_actor>(writer));
  }

  merger_config mcfg;
  mcfg.header.host = rt::read_host_info();
  mcfg.header.agent_version = agent_version;
  mcfg.header.spawn_time = static_cast<double>(spawn_ms) / 1000.0;
  mcfg.header.pid = static_cast<int32_t>(::getpid());
  mcfg.header.run_arguments_json = run_arguments_json(opts);
  auto merger_handle = sys.spawn(merger, mcfg, sinks);
  agent.add(merger_handle);

  std::vector<profiler_slot> profilers;
  if (opts.perf.mode != "disabled") {
    perf_config pcfg;
    pcfg.perf_path = opts.perf.path;
    pcfg.mode = opts.perf.mode;
    pcfg.frequency = opts.scheduler.frequency;
    pcfg.dwarf_stack_size = opts.perf.dwarf_stack_size;
    pcfg.pids = opts.scheduler.pids;
    pcfg.mmap_pages = opts.perf.mmap_pages;
    pcfg.rss_limit_kb = opts.perf.rss_limit_mb * 1024;
    pcfg.temp_dir = temp->path();
    pcfg.kill_grace = opts.reaper.kill_grace;
    pcfg.rss_kb = rt::process_rss_kb;
    auto perf = sys.spawn(perf_profiler, pcfg, reaper, fs, work, metrics);
    agent.add(perf);
    profiler_slot slot;
    slot.name = "perf";
    slot.handle = caf::actor_cast<profiler_actor>(perf);
    profilers.push_back(std::move(slot));
  }

  scheduler_config scfg;
  scfg.duration = opts.scheduler.duration;
  scfg.grace = opts.scheduler.profiler_grace;
  scfg.overlap = opts.scheduler.overlap;
  scfg.continuous = opts.scheduler.continuous;
  scfg.wall_clock_ms = rt::wall_clock_ms;
  scfg.backoff_after
      = static_cast<uint32_t>(opts.scheduler.backoff_after_failures);
  scfg.backoff_max
      = static_cast<uint32_t>(opts.scheduler.backoff_max_snapshots);
  scfg.on_done = [&done] {
    done = true;
  };
  auto sched = caf::actor_cast<scheduler_actor>(
      sys.spawn(scheduler, scfg, profilers, merger_handle, reaper, metrics));
  agent.add(sched);

  // -- get the profilers ready, then start the cadence
  // -------------------------

  sys.spawn([profilers, sched, lg](caf::event_based_actor* self) {
    auto pending = std::make_shared<size_t>(profilers.size());
    if (profilers.empty()) {
      lg->warn("no profiler is enabled: profiles will be empty");
      self->send(sched, start_atom_v);
      return;
    }
    for (auto& p : profilers) {
      auto name = p.name;
      self->request(p.handle, caf::infinite, prepare_atom_v)
          .then(
              [=](const std::string& status) {
                if (status.empty())
                  lg->info("profiler {} is ready", name);
                else
                  lg->error("profiler {} cannot profile: {}", name, status);
                if (--*pending == 0)
                  self->send(sched, start_atom_v);
              },
              [=](caf::error& err) {
                lg->error("profiler {} failed to prepare: {}", name,
                          describe(err));
                if (--*pending == 0)
                  self->send(sched, start_atom_v);
              });
    }
  });

  lg->info("gprofiler-agent {} running (PID {}), {} window(s) of {} s",
           agent_version, ::getpid(),
           opts.scheduler.continuous ? "continuous" : "one",
           opts.scheduler.duration.count());

  // -- wait for the end
  // --------------------------------------------------------

  int sig = 0;
  while (sig == 0 && !done)
    sig = rt::wait_termination_signal(200ms);
  if (sig != 0)
    lg->info("received {}; shutting down", strsignal(sig));
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    agent.shutdown();
    stopped = true;
  });
  while (!stopped) {
    if (int again = rt::wait_termination_signal(100ms); again != 0) {
      lg->warn("received {} again; forcing the exit", strsignal(again));
      launcher->kill_all();
      log::shutdown();
      std::_Exit(1);
    }
  }
  stopper.join();
  int status = 0;
  if (!opts.scheduler.continuous && sig == 0 && agent.writer
      && agent.written == 0) {
    lg->error("the profile could not be written to {}", opts.output.dir);
    status = 1;
  }
  lg->info("stopped");
  return status;
}

} // namespace gpa

#pragma once

// The whole agent in deterministic simulation: the real actors, wired by the
// real spawn_agent(), over a simulated world (test/sim/sim_world.hpp) and a
// scripted /proc. Time is the test clock; the loop interleaves CAF's timers
// and the world's events in time order. After every step it checks the
// invariants; every profile written is checked and folded into the trace
// hash.

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <limits>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>

#include "actors/memory_monitor.hpp"
#include "actors/perf_profiler.hpp"
#include "actors/process_reaper.hpp"
#include "actors/runtime_profiler.hpp"
#include "actors/scheduler.hpp"
#include "actors/uploader.hpp"
#include "app/agent.hpp"
#include "runtime/metric_names.hpp"
#include "runtime/process_env.hpp"
#include "test/support/fake_proc.hpp"
#include "test/support/fixture.hpp"
#include "test/support/sim_world.hpp"

namespace gpa::test {

/// What a scenario sets up.
struct sim_setup {
  uint64_t seed = 1;
  caf::timespan window{std::chrono::seconds(60)};
  caf::timespan grace{std::chrono::seconds(10)};
  overlap_policy overlap = overlap_policy::cut;
  int64_t frequency = 1;
  int64_t cpus = 1;
  fault_plan faults;
  /// Upload to the simulated backend (with an in-memory spool).
  bool upload = false;
  int64_t spool_max_files = 100000;
  /// Run the memory monitor over a scripted /proc.
  bool monitor = false;
  /// --perf-mode: "fp", or "smart" (two simulated perf recordings).
  std::string perf_mode = "fp";
  /// --enable-heartbeat-server: no profiling until a command arrives.
  bool heartbeat = false;
  /// The command ids executed (the agent's ledger, which outlives a run).
  std::shared_ptr<std::set<std::string>> ledger
      = std::make_shared<std::set<std::string>>();
  /// With it, the Java runtime profiler runs (its tool simulated by the
  /// world): the Java processes alive at a time (seconds since the start).
  std::function<std::vector<rt::runtime_target>(double seconds)> java;
};

/// One profile as written, in brief.
struct seen_profile {
  std::string start;
  std::string end;
  uint64_t samples = 0;
  bool perf_data = false;
  bool perf_error = false;
  std::string perf_error_text;
  /// Lines of runtime profilers' error stacks ("comm;[Profiling error: ...]").
  std::vector<std::string> runtime_errors;
};

class agent_sim : public sim_fixture {
public:
  static constexpr int64_t epoch_ms = 1700000000000;
  const std::string out_dir = "/sim/out";
  const std::string temp_dir = "/sim/tmp";

  sim_setup setup;
  std::shared_ptr<fake_fs> fs = std::make_shared<fake_fs>();
  std::shared_ptr<sim_world> world;
  std::shared_ptr<sim_backend> backend;
  std::shared_ptr<fake_proc> proc;
  std::shared_ptr<rt::metrics> metrics = std::make_shared<rt::metrics>();
  std::shared_ptr<rt::spool> spool;
  agent_options opts;
  agent_actors actors;
  std::vector<seen_profile> profiles;
  /// What the controller reported to Studio, in order.
  std::vector<command_outcome> outcomes;
  uint64_t steps = 0;
  uint64_t invariant_checks = 0;
  /// What perf's RSS reads as, in KiB.
  int64_t perf_rss_kb = 50 << 10;
  /// The first invariant that broke, with the time; empty while all hold.
  std::string violation;
  /// Whether each window must start where the previous one ended (not when
  /// sessions change: the next one starts once the previous one ended).
  bool contiguous = true;

  explicit agent_sim(sim_setup s) : setup(std::move(s)) {
    world = std::make_shared<sim_world>(setup.seed, fs, [this] {
      return now();
    });
    world->faults = setup.faults;
    world->window = setup.window;
    world->frequency = setup.frequency;
    world->cpus = setup.cpus;
    fs->on_write = [this](const std::string& name, std::string_view content) {
      on_written(name, content);
    };
    opts.scheduler.duration
        = std::chrono::duration_cast<std::chrono::seconds>(setup.window);
    opts.scheduler.profiler_grace
        = std::chrono::duration_cast<std::chrono::seconds>(setup.grace);
    opts.scheduler.overlap = setup.overlap;
    opts.scheduler.frequency = setup.frequency;
    opts.scheduler.continuous = true;
    opts.output.dir = out_dir;
    opts.output.rotating = true;
    opts.output.rotating_keep = 3;
    opts.output.no_flamegraph = true;
    opts.perf.mode = setup.perf_mode;
    opts.reaper.max_children = 16;
    opts.reaper.max_queued = 64;
    agent_runtime rt;
    rt.launcher = world;
    rt.fs = fs;
    rt.work = std::make_shared<inline_work_queue>();
    rt.metrics = metrics;
    rt.wall_clock_ms = [this] {
      return wall_ms();
    };
    rt.rss_kb = [this](int32_t) {
      return perf_rss_kb;
    };
    rt.host.hostname = "sim-host";
    rt.temp_dir = temp_dir;
    rt.pid = 4242;
    rt.spawn_ms = epoch_ms;
    rt.seed = setup.seed;
    rt.detach_blocking = false;
    if (setup.upload) {
      opts.upload.enabled = true;
      opts.upload.token = "sim-token";
      opts.upload.service_name = "sim";
      opts.upload.server_host = "https://studio.sim";
      opts.upload.spool_max_files = setup.spool_max_files;
      backend = std::make_shared<sim_backend>();
      rt.http = backend;
      // In memory: the simulation touches no directory.
      spool = rt::spool::in_memory(make_spool_limits(opts.upload), "sim");
      rt.spool = spool;
      rt.upload_work = std::make_shared<inline_work_queue>();
    }
    if (setup.monitor) {
      proc = std::make_shared<fake_proc>();
      rt.proc = proc;
    }
    if (setup.java) {
      opts.runtimes.jcmd_path = "/sim/jcmd";
      rt.find_program = [](const std::string& name) {
        return name.rfind("/sim/", 0) == 0 ? name : std::string{};
      };
      rt.runtime_targets = [this](rt::runtime_kind, rt::target_limits limits) {
        return [this, limits] {
          return rt::select_targets(java_now(), limits);
        };
      };
      // perf samples each JVM once in a segment (by the targets in the
      // middle of it: the processes that ran then, exited since or not).
      world->also_sampled = [this](int64_t from, int64_t to) {
        std::vector<int32_t> pids;
        for (auto& t : setup.java(static_cast<double>(from + to) / 2000.0))
          pids.push_back(t.pid);
        return pids;
      };
      rt.pid_alive = [this](int64_t pid) {
        for (auto& t : java_now())
          if (t.pid == pid)
            return true;
        return false;
      };
    }
    rt::metric::declare_all(*metrics, {"perf"});
    opts.compat.enable_heartbeat_server = setup.heartbeat;
    auto ledger = setup.ledger;
    actors = spawn_agent(
        sys, opts, rt, [] {},
        [this](const command_outcome& o) {
          outcomes.push_back(o);
        },
        [ledger](const std::string& id) {
          return ledger->count(id) > 0;
        },
        [ledger](const std::string& id) {
          ledger->insert(id);
        });
  }

  ~agent_sim() override {
    caf::anon_send_exit(actors.controller, caf::exit_reason::user_shutdown);
    {
      std::lock_guard<std::mutex> guard{actors.sessions->mtx};
      for (auto& [n, s] : actors.sessions->live)
        for (auto i = s.order.rbegin(); i != s.order.rend(); ++i)
          caf::anon_send_exit(*i, caf::exit_reason::user_shutdown);
    }
    for (auto i = actors.order.rbegin(); i != actors.order.rend(); ++i)
      caf::anon_send_exit(*i, caf::exit_reason::user_shutdown);
    run();
  }

  /// The Java processes alive now: the scripted ones the world did not
  /// end.
  std::vector<rt::runtime_target> java_now() {
    auto all = setup.java(seconds());
    all.erase(std::remove_if(all.begin(), all.end(),
                             [this](const rt::runtime_target& t) {
                               return world->java_gone.count(t.pid) > 0;
                             }),
              all.end());
    return all;
  }

  /// Simulated seconds since the start.
  double seconds() {
    return std::chrono::duration<double>(now().time_since_epoch()).count();
  }

  int64_t wall_ms() {
    return epoch_ms
           + std::chrono::duration_cast<std::chrono::milliseconds>(
                 now().time_since_epoch())
                 .count();
  }

  // -- the loop ---------------------------------------------------------------

  /// Runs the simulation for `d` of simulated time (or until an invariant
  /// breaks).
  void run_for(caf::timespan d) {
    auto end = now() + d;
    constexpr auto never = caf::actor_clock::time_point::max();
    while (violation.empty()) {
      run();
      ++steps;
      check_invariants();
      auto& schedule = sched.clock().schedule();
      auto t_caf = schedule.empty() ? never : schedule.begin()->first;
      auto t_world = world->has_event() ? world->next_event_time() : never;
      auto t = std::min(t_caf, t_world);
      if (t > end) {
        if (end > now())
          sched.advance_time(end - now());
        run();
        return;
      }
      if (t_world <= t_caf) {
        if (t_world > now())
          sched.advance_time(t_world - now());
        world->fire_next();
      } else {
        sched.trigger_timeout();
      }
    }
  }

  /// Calls `f` at simulated time now + `d` (a scripted outside event).
  void at(caf::timespan d, std::function<void()> f) {
    world->at(now() + d, std::move(f));
  }

  // -- state access (single-threaded: safe in the simulation)
  // -------------------

  template <class State, class Impl, class Handle>
  State& state_of(const Handle& h) {
    auto ptr = caf::actor_cast<caf::abstract_actor*>(h);
    return dynamic_cast<typename Impl::template stateful_base<State>&>(*ptr)
        .state;
  }

  reaper_state& reaper() {
    return state_of<reaper_state, reaper_impl>(actors.reaper);
  }

  /// The newest live session (null: none runs).
  agent_session* session() {
    auto& live = actors.sessions->live;
    return live.empty() ? nullptr : &live.rbegin()->second;
  }

  /// The running session's scheduler and perf profiler.
  scheduler_state& scheduler() {
    return state_of<scheduler_state, scheduler_impl>(session()->scheduler);
  }

  perf_state& perf() {
    return state_of<perf_state, perf_profiler_impl>(
        session()->profilers.at(0).handle);
  }

  controller_state& controller() {
    return state_of<controller_state, controller_actor>(actors.controller);
  }

  // -- invariants
  // ------------------------------------------------------------------

  void fail(const std::string& what) {
    if (!violation.empty())
      return;
    std::ostringstream out;
    out << "at t="
        << std::chrono::duration_cast<std::chrono::seconds>(
               now().time_since_epoch())
               .count()
        << " s: " << what;
    violation = out.str();
  }

  void check_invariants() {
    ++invariant_checks;
    // The reaper: bounded, and no child owned past its deadline plus grace.
    auto& r = reaper();
    if (r.live.size() > static_cast<size_t>(r.cfg.opts.max_children))
      fail("more children than the cap");
    if (r.queue.size() > static_cast<size_t>(r.cfg.opts.max_queued))
      fail("reaper queue over its bound");
    if (r.monitored.size() > 8)
      fail("reaper monitors " + std::to_string(r.monitored.size())
           + " requesters");
    for (auto& [id, child] : r.live) {
      auto& req = child.job.req;
      if (req.timeout.count() > 0
          && now() - child.started > req.timeout + req.kill_grace + 1s)
        fail(req.argv[0] + " " + req.argv[1] + " owned past its deadline");
    }
    if (world->live() != r.live.size())
      fail("the world and the reaper disagree on live children");
    // Sessions never overlap: one at a time (the next one starts once the
    // previous one is merged and ended).
    if (actors.sessions->live.size() > 1)
      fail(std::to_string(actors.sessions->live.size())
           + " sessions live at once");
    if (!session())
      return;
    // The scheduler: one snapshot recording, one collecting, bounded work.
    auto& s = scheduler();
    if (s.stats.incomplete != 0)
      fail("a snapshot lacks a profiler's entry");
    if (s.merging > 2)
      fail("more than two merges in flight");
    if (s.collecting && s.recording && s.collecting->id >= s.recording->id)
      fail("collecting snapshot is not older than the recording one");
    for (auto& p : s.profilers)
      if (p.outstanding.size() > 3)
        fail(p.name + " has " + std::to_string(p.outstanding.size())
             + " unanswered requests");
    // The perf profiler: bounded state.
    auto& pf = perf();
    if (pf.windows.size() > 8 || pf.rotations.pending() > 4
        || pf.rotations.seen() > 4)
      fail("perf profiler state grows");
    // Files: nothing leaks in the temp dir, rotation keeps the output small.
    if (fs->count(temp_dir) > 6)
      fail(std::to_string(fs->count(temp_dir))
           + " files left in the temp "
             "dir");
    if (fs->count(out_dir) > 8)
      fail("the output directory grows");
  }

  /// A profile was written: check it, remember it, hash it.
  void on_written(const std::string& name, std::string_view content) {
    if (name.rfind("profile_", 0) != 0)
      return;
    seen_profile p;
    auto field = [&](const std::string& key) {
      auto k = "\"" + key + "\":\"";
      auto pos = content.find(k);
      if (pos == std::string_view::npos)
        return std::string{};
      auto start = pos + k.size();
      return std::string{
          content.substr(start, content.find('"', start) - start)};
    };
    p.start = field("start_time");
    p.end = field("end_time");
    size_t pos = content.find('\n') + 1;
    while (pos < content.size()) {
      auto nl = content.find('\n', pos);
      auto line = content.substr(pos, nl - pos);
      pos = nl + 1;
      auto space = line.rfind(' ');
      p.samples += std::strtoull(std::string{line.substr(space + 1)}.c_str(),
                                 nullptr, 10);
      if (line.find(";perf;[Profiling") != std::string_view::npos
          || line.find(";perf-dwarf;[Profiling") != std::string_view::npos) {
        p.perf_error = true;
        p.perf_error_text = std::string{line};
      } else if (line.find(";[Profiling error: ") != std::string_view::npos) {
        p.runtime_errors.emplace_back(line.substr(0, space));
      } else if (line.find(";simproc-") != std::string_view::npos) {
        p.perf_data = true;
      }
    }
    // perf's part may be empty (no samples in a short segment after a
    // restart); anything else has its stacks or its error.
    if (!p.perf_data && !p.perf_error && p.samples != 0)
      fail("profile " + p.end + " has neither perf's stacks nor its error:\n"
           + std::string{content.substr(content.find('\n') + 1)});
    if (contiguous && !profiles.empty() && profiles.back().end != p.start)
      fail("window " + p.start + " does not start where " + profiles.back().end
           + " ended");
    if (!profiles.empty() && profiles.back().end > p.start)
      fail("window " + p.start + " starts before " + profiles.back().end
           + " ended");
    if (p.start >= p.end)
      fail("empty window " + p.start);
    world->trace.add(p.start);
    world->trace.add(p.end);
    world->trace.add(p.samples);
    world->trace.add(p.perf_error_text);
    profiles.push_back(std::move(p));
  }

  /// Profiles written and not uploaded yet (waiting in the spool).
  size_t upload_pending() const {
    return spool ? spool->count() : 0;
  }

  /// Counts of what happened, one line.
  std::string summary() {
    uint64_t errors = 0;
    for (auto& p : profiles)
      errors += p.perf_error;
    std::ostringstream out;
    out << "seed " << setup.seed << ": " << profiles.size() << " snapshots ("
        << errors << " with perf's error stack), " << steps << " steps, "
        << invariant_checks << " invariant checks, faults:";
    for (auto& [what, n] : world->fault_counts)
      out << " " << what << "=" << n;
    out << ", trace hash " << std::hex << world->trace.value();
    return out.str();
  }

  /// How to replay this run.
  std::string replay(const std::string& test) const {
    return "replay: GPA_SIM_SEED=" + std::to_string(setup.seed)
           + " build/test/test_sim --run_test=" + test;
  }
};

/// Checks the invariants held, printing the summary and how to replay the
/// running test.
inline void finish(agent_sim& sim) {
  auto test = boost::unit_test::framework::current_test_case().full_name();
  BOOST_TEST_MESSAGE(sim.summary());
  BOOST_CHECK_MESSAGE(sim.violation.empty(), sim.violation << "\n"
                                                           << sim.replay(test));
}

/// The seed of a scenario: GPA_SIM_SEED if set, else `fallback`.
inline uint64_t sim_seed(uint64_t fallback) {
  if (auto env = std::getenv("GPA_SIM_SEED"))
    return std::strtoull(env, nullptr, 10);
  return fallback;
}

} // namespace gpa::test

// The whole agent in deterministic simulation: named scenarios with scripted
// faults, a 30-day run with random faults, and reproducible traces.

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <numeric>
#include <set>
#include <string>

#include "test/app/agent_sim.hpp"

using namespace std::chrono_literals;
using namespace gpa;
using gpa::test::agent_sim;
using gpa::test::finish;
using gpa::test::sim_seed;
using gpa::test::sim_setup;

namespace {

size_t with_error(const agent_sim& sim, const std::string& text) {
  size_t n = 0;
  for (auto& p : sim.profiles)
    n += p.perf_error && p.perf_error_text.find(text) != std::string::npos;
  return n;
}

size_t with_data(const agent_sim& sim) {
  size_t n = 0;
  for (auto& p : sim.profiles)
    n += p.perf_data;
  return n;
}

} // namespace

BOOST_AUTO_TEST_SUITE(whole_agent)

BOOST_AUTO_TEST_CASE(steady_hour_has_every_window_with_perf_data) {
  sim_setup s;
  s.seed = sim_seed(1);
  s.frequency = 11;
  s.cpus = 2;
  agent_sim sim{s};
  sim.run_for(61min);
  finish(sim);
  BOOST_CHECK_EQUAL(sim.profiles.size(), 60u);
  BOOST_CHECK_EQUAL(with_data(sim), sim.profiles.size());
  // 11 Hz on 2 CPUs over 60 s, minus the first window's start-up.
  BOOST_CHECK_EQUAL(sim.profiles.back().samples, 11u * 2 * 60);
}

BOOST_AUTO_TEST_CASE(profiler_taking_twice_the_window_is_cut_every_time) {
  sim_setup s;
  s.seed = sim_seed(2);
  s.faults.script_slow = 1.0;
  agent_sim sim{s};
  sim.run_for(30min);
  finish(sim);
  BOOST_CHECK_GE(sim.profiles.size(), 28u);
  BOOST_CHECK_EQUAL(with_data(sim), 0u);
  // Every profile carries perf's timeout entry: cut, or resting after
  // being cut ("timed out: backing off after 3 failures in a row").
  BOOST_CHECK_EQUAL(with_error(sim, "[Profiling timed out"),
                    sim.profiles.size());
  BOOST_CHECK_GE(with_error(sim, "backing off"), 1u);
  // Cut tools were killed, not left running.
  BOOST_CHECK_LE(sim.reaper().live.size(), 2u);
}

BOOST_AUTO_TEST_CASE(overlap_policy_skip_extends_the_window) {
  sim_setup s;
  s.seed = sim_seed(3);
  s.grace = 90s; // longer than a window: the next tick finds it collecting
  s.overlap = overlap_policy::skip;
  s.faults.script_hangs = 1.0;
  agent_sim sim{s};
  sim.run_for(20min);
  finish(sim);
  auto skipped = sim.scheduler().stats.ticks_skipped;
  BOOST_CHECK_GE(skipped, 3u);
  // Each of the 20 ticks either ended a window or was skipped (extending
  // the window); windows in which perf rests (backing off after its
  // timeouts) end on time.
  BOOST_CHECK_LE(sim.profiles.size() + skipped, 21u);
  BOOST_CHECK_LE(sim.profiles.size(), 17u);
  BOOST_CHECK_GE(sim.profiles.size(), 5u);
}

BOOST_AUTO_TEST_CASE(profiler_hanging_forever_is_killed_and_timed_out) {
  sim_setup s;
  s.seed = sim_seed(4);
  s.faults.script_hangs = 1.0;
  agent_sim sim{s};
  sim.run_for(30min);
  finish(sim);
  BOOST_CHECK_GE(sim.profiles.size(), 28u);
  BOOST_CHECK_GE(with_error(sim, "timed out"), 3u);
  BOOST_CHECK_GE(sim.reaper().totals.killed_total, 3u);
}

BOOST_AUTO_TEST_CASE(crashing_tool_gives_error_stacks_and_recovers) {
  sim_setup s;
  s.seed = sim_seed(5);
  s.faults.script_crashes = 0.5;
  agent_sim sim{s};
  sim.run_for(60min);
  finish(sim);
  BOOST_CHECK_GE(with_error(sim, "perf script"), 5u);
  BOOST_CHECK_GE(with_data(sim), 5u);
}

BOOST_AUTO_TEST_CASE(garbage_output_never_breaks_the_agent) {
  sim_setup s;
  s.seed = sim_seed(6);
  s.faults.script_garbage = 1.0;
  agent_sim sim{s};
  sim.run_for(20min);
  finish(sim);
  BOOST_CHECK_GE(sim.profiles.size(), 18u);
  BOOST_CHECK_EQUAL(with_data(sim), 0u);
}

BOOST_AUTO_TEST_CASE(ten_thousand_target_processes) {
  sim_setup s;
  s.seed = sim_seed(7);
  s.window = 10s;
  s.frequency = 100;
  s.cpus = 40;
  s.faults.processes = 10000;
  agent_sim sim{s};
  sim.run_for(41s);
  finish(sim);
  BOOST_REQUIRE_GE(sim.profiles.size(), 3u);
  BOOST_CHECK_EQUAL(sim.profiles.back().samples, 100u * 40 * 10);
  BOOST_CHECK(sim.profiles.back().perf_data);
}

BOOST_AUTO_TEST_CASE(perf_dying_is_restarted) {
  sim_setup s;
  s.seed = sim_seed(8);
  s.faults.record_dies = 0.3;
  agent_sim sim{s};
  sim.run_for(3h);
  finish(sim);
  BOOST_CHECK_GE(sim.perf().restarts, 3u);
  BOOST_CHECK_GE(with_data(sim), sim.profiles.size() / 3);
  BOOST_CHECK_GE(sim.profiles.size(), 170u);
}

BOOST_AUTO_TEST_CASE(perf_mode_smart_runs_two_recordings_as_one_profile) {
  sim_setup s;
  s.seed = sim_seed(15);
  s.frequency = 11;
  s.cpus = 2;
  s.perf_mode = "smart";
  s.faults.record_dies = 0.1;
  agent_sim sim{s};
  sim.run_for(3h + 1min);
  finish(sim);
  BOOST_REQUIRE_EQUAL(sim.actors.profilers.size(), 2u);
  BOOST_CHECK_EQUAL(sim.actors.profilers[1].name, "perf-dwarf");
  BOOST_CHECK_EQUAL(sim.profiles.size(), 180u);
  // Both recordings see the same simulated stacks, so a window where both
  // worked has one recording's samples, not two.
  size_t full = 0;
  for (auto& p : sim.profiles)
    full += p.perf_data && !p.perf_error && p.samples == 11u * 2 * 60;
  BOOST_CHECK_GE(full, 100u);
  for (auto& p : sim.profiles)
    BOOST_CHECK_LE(p.samples, 11u * 2 * 60 + 2);
}

BOOST_AUTO_TEST_CASE(perf_failing_at_start_backs_off_then_recovers) {
  sim_setup s;
  s.seed = sim_seed(14);
  agent_sim sim{s};
  sim.run_for(5min);
  BOOST_CHECK_EQUAL(with_data(sim), sim.profiles.size());
  // From now on every perf record exits 100 ms after it starts.
  sim.world->faults.record_fails = true;
  sim.perf_rss_kb = 600 << 10; // a restart between windows starts it failing
  sim.run_for(61s);
  sim.perf_rss_kb = 50 << 10;
  auto launches = sim.world->record_launches;
  sim.run_for(30min);
  // Restarts wait 1, 2, 4, ... 60 s: about 35 launches in 30 minutes, not
  // one a second (1,800).
  auto failing = sim.world->record_launches - launches;
  BOOST_CHECK_GE(failing, 30u);
  BOOST_CHECK_LE(failing, 40u);
  // perf works again: within the capped restart delay plus the scheduler's
  // own rest for a failing profiler (at most 16 windows), windows have data
  // again; every window had a profile throughout.
  sim.world->faults.record_fails = false;
  auto before = sim.profiles.size();
  sim.run_for(20min);
  finish(sim);
  BOOST_CHECK(sim.profiles.back().perf_data);
  BOOST_CHECK_GE(sim.profiles.size() - before, 2u);
  BOOST_CHECK_GE(sim.profiles.size(), 36u);
}

BOOST_AUTO_TEST_CASE(bloated_perf_is_restarted_between_windows) {
  sim_setup s;
  s.seed = sim_seed(11);
  agent_sim sim{s};
  sim.run_for(10min);
  BOOST_CHECK_EQUAL(sim.perf().restarts, 0u);
  sim.perf_rss_kb = 600 << 10; // over the 512 MB default
  sim.run_for(61s);
  sim.perf_rss_kb = 50 << 10;
  sim.run_for(10min);
  finish(sim);
  BOOST_CHECK_EQUAL(sim.perf().restarts, 1u);
  // The restart falls between windows: every window still has perf's data.
  BOOST_CHECK_EQUAL(with_data(sim), sim.profiles.size());
  BOOST_CHECK_GE(sim.profiles.size(), 20u);
}

BOOST_AUTO_TEST_CASE(full_disk_is_survived) {
  sim_setup s;
  s.seed = sim_seed(12);
  agent_sim sim{s};
  sim.run_for(10min);
  auto before = sim.scheduler().stats.snapshots_done;
  sim.fs->full = true;
  sim.run_for(10min);
  // Snapshots go on while nothing can be written...
  BOOST_CHECK_GE(sim.scheduler().stats.snapshots_done, before + 9);
  sim.fs->full = false;
  sim.profiles.clear(); // the windows of the full disk are not in the files
  sim.run_for(5min);
  finish(sim);
  // ...and profiles are written again once there is room.
  BOOST_CHECK_GE(sim.profiles.size(), 4u);
}

BOOST_AUTO_TEST_CASE(memory_pressure_episode) {
  sim_setup s;
  s.seed = sim_seed(9);
  s.monitor = true;
  agent_sim sim{s};
  auto& self = sim.proc->procs[sim.proc->self];
  auto pages = [](uint64_t mb) {
    return mb * 1024 * 1024 / 4096;
  };
  sim.run_for(10min);
  self.rss_pages = pages(100); // agent thresholds: 40, 80, 160 MB
  sim.run_for(10min);
  bool skipped_at_critical = sim.scheduler().skip_runtime;
  self.rss_pages = pages(200);
  sim.run_for(10min);
  self.rss_pages = pages(10);
  sim.run_for(10min);
  bool back_to_normal = !sim.scheduler().skip_runtime;
  finish(sim);
  BOOST_CHECK(skipped_at_critical);
  BOOST_CHECK(back_to_normal);
  BOOST_CHECK_EQUAL(sim.metrics->value("gpa_memory_pressure_level"), 0);
  // The agent kept profiling through the episode.
  BOOST_CHECK_GE(sim.profiles.size(), 38u);
}

BOOST_AUTO_TEST_CASE(backend_down_for_a_day_loses_nothing) {
  sim_setup s;
  s.seed = sim_seed(10);
  s.upload = true;
  agent_sim sim{s};
  sim.backend->down = true;
  sim.run_for(24h);
  auto during = sim.profiles.size();
  BOOST_CHECK(sim.backend->accepted.empty());
  sim.backend->down = false;
  sim.run_for(6h);
  finish(sim);
  // Every profile written arrived, in order, none twice.
  std::vector<std::string> ends;
  for (auto& p : sim.profiles)
    ends.push_back(p.end.substr(0, 19));
  auto& got = sim.backend->accepted;
  BOOST_CHECK_GE(during, 1438u);
  BOOST_REQUIRE_EQUAL(got.size(), ends.size());
  BOOST_CHECK(got == ends);
  BOOST_CHECK_EQUAL(std::set<std::string>(got.begin(), got.end()).size(),
                    got.size());
}

BOOST_AUTO_TEST_CASE(thirty_days_with_random_faults) {
  sim_setup s;
  s.seed = sim_seed(30);
  s.faults.script_hangs = 0.002;
  s.faults.script_slow = 0.002;
  s.faults.script_crashes = 0.005;
  s.faults.script_garbage = 0.002;
  s.faults.record_dies = 0.002;
  s.upload = true;
  agent_sim sim{s};
  auto t0 = std::chrono::steady_clock::now();
  // The backend is down for a few hours now and then.
  for (int day = 0; day < 30; ++day) {
    sim.backend->down = day % 7 == 3;
    sim.run_for(24h);
    if (!sim.violation.empty())
      break;
  }
  auto wall
      = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
  finish(sim);
  BOOST_TEST_MESSAGE("30 simulated days in " << wall << " s of wall time");
  BOOST_CHECK_GE(sim.profiles.size(), 43190u);
  BOOST_CHECK_GE(with_data(sim), 42000u);
  BOOST_CHECK_EQUAL(sim.backend->accepted.size() + sim.upload_pending(),
                    sim.profiles.size());
}

/// Java processes with pids first..first+n-1.
std::vector<gpa::rt::runtime_target> jvms(int32_t first, int n) {
  std::vector<gpa::rt::runtime_target> result;
  for (int i = 0; i < n; ++i)
    result.push_back({first + i, "java", 3600, 0});
  return result;
}

BOOST_AUTO_TEST_CASE(sixty_java_targets_stay_within_the_budget) {
  sim_setup s;
  s.seed = sim_seed(20);
  s.java = [](double) {
    return jvms(5000, 60);
  };
  agent_sim sim{s};
  sim.run_for(10min + 30s);
  finish(sim);
  BOOST_CHECK_EQUAL(sim.profiles.size(), 10u);
  BOOST_CHECK_EQUAL(with_data(sim), sim.profiles.size());
  // Every target, every window; never more than --runtime-concurrency at
  // once.
  BOOST_CHECK_EQUAL(sim.world->java_runs, 60u * 10);
  BOOST_CHECK_EQUAL(sim.world->java_max_live,
                    static_cast<size_t>(runtime_options{}.concurrency));
  for (auto& p : sim.profiles)
    BOOST_CHECK_MESSAGE(p.runtime_errors.empty(), p.runtime_errors.front());
}

BOOST_AUTO_TEST_CASE(a_java_tool_hanging_on_one_target_costs_no_window) {
  sim_setup s;
  s.seed = sim_seed(21);
  s.java = [](double) {
    return jvms(5000, 50);
  };
  agent_sim sim{s};
  sim.world->java_hang = {5017};
  sim.run_for(20min + 30s);
  finish(sim);
  // Windows keep their length and order (on_written checks that each
  // starts where the last ended); every one has the timeout of that one
  // target, on perf's stack of it, and nothing else.
  BOOST_CHECK_EQUAL(sim.profiles.size(), 20u);
  for (auto& p : sim.profiles) {
    BOOST_REQUIRE_EQUAL(p.runtime_errors.size(), 1u);
    BOOST_CHECK_EQUAL(p.runtime_errors[0],
                      "0;;java;[Profiling error: timed out];main");
  }
  // The hung tool is stopped each window: none piles up.
  BOOST_CHECK_LE(sim.world->java_live, 1u);
  BOOST_CHECK_GE(sim.reaper().totals.killed_total, 19u);
}

BOOST_AUTO_TEST_CASE(java_targets_come_and_go_every_window) {
  sim_setup s;
  s.seed = sim_seed(22);
  // Each minute a new set of five JVMs; of each set, the first exits as the
  // tool starts on it and the last cannot be attached to.
  s.java = [](double t) {
    return jvms(6000 + 10 * static_cast<int32_t>(t / 60), 5);
  };
  agent_sim sim{s};
  for (int32_t m = 0; m < 32; ++m) {
    sim.world->java_exits.insert(6000 + 10 * m);
    sim.world->java_fail.insert(6000 + 10 * m + 4);
  }
  sim.run_for(30min + 30s);
  finish(sim);
  BOOST_CHECK_EQUAL(sim.profiles.size(), 30u);
  for (auto& p : sim.profiles) {
    BOOST_CHECK_EQUAL(p.runtime_errors.size(), 2u);
    auto all = std::accumulate(p.runtime_errors.begin(), p.runtime_errors.end(),
                               std::string{},
                               [](std::string a, const std::string& b) {
                                 return a + b + "\n";
                               });
    BOOST_CHECK_MESSAGE(
        all.find("[Profiling error: process went down during profiling]")
            != std::string::npos,
        all);
    BOOST_CHECK_MESSAGE(all.find("[Profiling error: attach failed (exit 1)]")
                            != std::string::npos,
                        all);
  }
  BOOST_CHECK_EQUAL(sim.world->java_live, 0u);
}

BOOST_AUTO_TEST_CASE(same_seed_same_trace) {
  auto trace_of = [](uint64_t seed) {
    sim_setup s;
    s.seed = seed;
    s.faults.script_hangs = 0.05;
    s.faults.script_crashes = 0.05;
    s.faults.script_garbage = 0.05;
    s.faults.record_dies = 0.05;
    agent_sim sim{s};
    sim.run_for(12h);
    BOOST_CHECK_MESSAGE(sim.violation.empty(), sim.violation);
    BOOST_TEST_MESSAGE(sim.summary());
    return sim.world->trace.value();
  };
  auto seed = sim_seed(42);
  auto a = trace_of(seed);
  auto b = trace_of(seed);
  auto c = trace_of(seed + 1);
  BOOST_CHECK_EQUAL(a, b);
  BOOST_CHECK_NE(a, c);
}

BOOST_AUTO_TEST_SUITE_END()

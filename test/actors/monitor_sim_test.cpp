// Deterministic tests of the memory monitor over a scripted host: sampling
// cadence, pressure actions once per episode, hysteresis against flapping,
// window statistics, listeners, gauges, and a host with 10,000 processes.

#include <boost/test/unit_test.hpp>

#include <functional>
#include <random>
#include <unordered_map>

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>
#include <spdlog/sinks/ringbuffer_sink.h>

#include "actors/memory_monitor.hpp"
#include "runtime/metric_names.hpp"
#include "test/support/fake_proc.hpp"
#include "test/support/fixture.hpp"

using namespace std::chrono_literals;
using namespace gpa;
using gpa::test::fake_proc;

namespace {

constexpr uint64_t mb = 1024; // KiB

using level = pressure_level;

uint8_t due_mask(std::initializer_list<level> xs) {
  uint8_t r = 0;
  for (auto x : xs)
    r |= static_cast<uint8_t>(1u << static_cast<unsigned>(x));
  return r;
}

struct monitor_fixture : gpa::test::sim_fixture {
  std::shared_ptr<fake_proc> host = std::make_shared<fake_proc>();
  std::shared_ptr<rt::metrics> reg = std::make_shared<rt::metrics>();
  monitor_config cfg;
  memory_monitor_actor mon;
  std::shared_ptr<std::vector<pressure_event>> events
      = std::make_shared<std::vector<pressure_event>>();
  std::shared_ptr<std::vector<resource_sample>> samples
      = std::make_shared<std::vector<resource_sample>>();
  pressure_listener_actor plistener;
  sample_listener_actor slistener;

  /// Captures what the monitor logs.
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> ring
      = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000);

  monitor_fixture() {
    auto lg = log::get("monitor");
    lg->sinks().push_back(ring);
    lg->set_level(spdlog::level::info);
  }

  std::vector<std::string> log_lines() {
    return ring->last_formatted();
  }

  ~monitor_fixture() override {
    auto& sinks = log::get("monitor")->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), ring), sinks.end());
    caf::anon_send_exit(mon, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(plistener, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(slistener, caf::exit_reason::user_shutdown);
    run();
  }

  pressure_listener_actor
  make_pressure_listener(std::shared_ptr<std::vector<pressure_event>> out) {
    return sys.spawn([out](pressure_listener_actor::pointer)
                         -> pressure_listener_actor::behavior_type {
      return {
          [out](pressure_atom, pressure_event& ev) {
            out->push_back(std::move(ev));
          },
      };
    });
  }

  /// Spawns the monitor (it samples once at once) and subscribes listeners.
  void start() {
    mon = caf::actor_cast<memory_monitor_actor>(sys.spawn(
        memory_monitor, std::shared_ptr<rt::proc_source>{host}, reg, cfg));
    run();
    plistener = make_pressure_listener(events);
    auto out = samples;
    slistener = sys.spawn([out](sample_listener_actor::pointer)
                              -> sample_listener_actor::behavior_type {
      return {
          [out](sample_atom, resource_sample& s) {
            out->push_back(std::move(s));
          },
      };
    });
    caf::anon_send(mon, subscribe_atom_v, plistener);
    caf::anon_send(mon, subscribe_atom_v, slistener);
    run();
  }

  /// Lets `n` intervals pass, one sample each.
  void intervals(int n) {
    for (int i = 0; i < n; ++i)
      advance(cfg.interval);
  }

  /// The simulated time in nanoseconds since the clock's epoch.
  int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               now().time_since_epoch())
        .count();
  }

  /// One sample per interval with the agent's RSS at each value (MB).
  void feed_agent_mb(std::initializer_list<uint64_t> curve) {
    for (auto x : curve) {
      host->set_agent_mb(x);
      advance(cfg.interval);
    }
  }

  window_stats window() {
    auto r = request<window_stats>(mon, window_atom_v);
    run();
    BOOST_REQUIRE(r->value);
    return *r->value;
  }

  resource_sample sample_now() {
    auto r = request<resource_sample>(mon, sample_atom_v);
    run();
    BOOST_REQUIRE(r->value);
    return *r->value;
  }

  monitor_state& state() {
    auto ptr = caf::actor_cast<caf::abstract_actor*>(mon);
    auto sa = dynamic_cast<monitor_impl::stateful_base<monitor_state>*>(ptr);
    BOOST_REQUIRE(sa != nullptr);
    return sa->state;
  }
};

/// An independent oracle for the tree: walks UP from every process (the
/// monitor walks down from the root), with the same rules: a process that
/// cannot be read is absent, a child older than its parent is not its child.
struct oracle {
  uint64_t tree_kb = 0;
  uint32_t descendants = 0;
  uint32_t children = 0;
  uint64_t largest_kb = 0;
};

oracle walk_up(const fake_proc& host) {
  oracle o;
  std::unordered_map<int32_t, int> memo; // 1 in tree, 0 not
  std::function<int(int32_t)> in_tree = [&](int32_t pid) -> int {
    if (pid == host.self)
      return 1;
    auto m = memo.find(pid);
    if (m != memo.end())
      return m->second;
    int r = 0;
    auto i = host.procs.find(pid);
    if (i != host.procs.end() && host.vanishing.count(pid) == 0) {
      auto p = host.procs.find(i->second.ppid);
      if (p != host.procs.end() && host.vanishing.count(p->first) == 0
          && i->second.start_time >= p->second.start_time)
        r = in_tree(i->second.ppid);
    }
    memo[pid] = r;
    return r;
  };
  for (auto& [pid, st] : host.procs) {
    auto kb = st.rss_pages * fake_proc::page / 1024;
    if (pid == host.self) {
      o.tree_kb += kb;
      continue;
    }
    if (host.vanishing.count(pid) != 0 || in_tree(pid) == 0)
      continue;
    o.tree_kb += kb;
    ++o.descendants;
    if (st.ppid == host.self)
      ++o.children;
    o.largest_kb = std::max(o.largest_kb, kb);
  }
  return o;
}

} // namespace

BOOST_AUTO_TEST_SUITE(monitor_sim)

BOOST_FIXTURE_TEST_CASE(samples_at_once_then_every_interval, monitor_fixture) {
  auto t0 = now_ns();
  start();
  BOOST_CHECK_EQUAL(state().seq, 1u); // the first sample, before subscribers
  BOOST_CHECK(samples->empty());
  advance(4999ms);
  BOOST_CHECK(samples->empty());
  advance(1ms);
  BOOST_REQUIRE_EQUAL(samples->size(), 1u);
  auto& s = samples->back();
  BOOST_CHECK_EQUAL(s.seq, 2u);
  BOOST_CHECK_EQUAL(s.pid, host->self);
  BOOST_CHECK_EQUAL(s.agent_rss_kb, 10 * mb);
  BOOST_CHECK_EQUAL(s.fds, 12);
  BOOST_CHECK_EQUAL(s.threads, 1);
  BOOST_CHECK_EQUAL(s.children, 0u);
  BOOST_CHECK_EQUAL(s.time_ns - t0, 5'000'000'000);
  intervals(10);
  BOOST_CHECK_EQUAL(samples->size(), 11u);
}

BOOST_FIXTURE_TEST_CASE(each_level_action_is_due_once_per_episode,
                        monitor_fixture) {
  // Thresholds 40/80/160 MB; going down needs 3 samples below 90 % of the
  // current level's threshold (36/72/144 MB).
  start();
  feed_agent_mb({45, 85, 170});
  feed_agent_mb({150, 100, 100, 150}); // 150 >= 144 holds emergency
  feed_agent_mb({100, 100, 100});      // three below: down to critical
  feed_agent_mb({170});                // back up, same episode
  feed_agent_mb({10, 10, 10});         // episode 1 over
  feed_agent_mb({45});                 // episode 2
  struct expected {
    level lvl;
    level prev;
    uint64_t episode;
    uint8_t due;
  };
  std::vector<expected> want{
      {level::warning, level::normal, 1, due_mask({level::warning})},
      {level::critical, level::warning, 1, due_mask({level::critical})},
      {level::emergency, level::critical, 1, due_mask({level::emergency})},
      {level::critical, level::emergency, 1, 0},
      {level::emergency, level::critical, 1, 0},
      {level::normal, level::emergency, 1, 0},
      {level::warning, level::normal, 2, due_mask({level::warning})},
  };
  BOOST_REQUIRE_EQUAL(events->size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    BOOST_TEST_CONTEXT("event " << i) {
      auto& ev = (*events)[i];
      BOOST_CHECK(ev.level == want[i].lvl);
      BOOST_CHECK(ev.previous == want[i].prev);
      BOOST_CHECK_EQUAL(ev.episode, want[i].episode);
      BOOST_CHECK_EQUAL(int{ev.actions_due}, int{want[i].due});
    }
  }
  // Each level's action was logged once per episode, and due once.
  std::vector<std::string> actions;
  for (auto& line : log_lines())
    if (line.find("action:") != std::string::npos)
      actions.push_back(line);
  BOOST_REQUIRE_EQUAL(actions.size(), 4u);
  BOOST_CHECK_NE(actions[0].find("memory pressure warning (episode 1)"),
                 std::string::npos);
  BOOST_CHECK_NE(actions[1].find("memory pressure critical (episode 1)"),
                 std::string::npos);
  BOOST_CHECK_NE(actions[2].find("memory pressure emergency (episode 1)"),
                 std::string::npos);
  BOOST_CHECK_NE(actions[3].find("memory pressure warning (episode 2)"),
                 std::string::npos);
  BOOST_CHECK_NE(actions[0].find("agent RSS 45.0 MB (threshold 40.0 MB"),
                 std::string::npos);
  for (auto l : {level::warning, level::critical, level::emergency}) {
    int ep1 = 0;
    for (auto& ev : *events)
      if (ev.episode == 1 && ev.action_due(l))
        ++ep1;
    BOOST_CHECK_EQUAL(ep1, 1);
  }
  auto& first = events->front();
  BOOST_CHECK(first.cause == pressure_cause::agent);
  BOOST_CHECK_EQUAL(first.agent_rss_kb, 45 * mb);
  BOOST_CHECK_EQUAL(first.threshold_kb, 40 * mb);
}

BOOST_FIXTURE_TEST_CASE(a_jump_makes_every_lower_action_due_too,
                        monitor_fixture) {
  start();
  feed_agent_mb({200});
  BOOST_REQUIRE_EQUAL(events->size(), 1u);
  auto& ev = events->front();
  BOOST_CHECK(ev.level == level::emergency);
  BOOST_CHECK(ev.action_due(level::warning));
  BOOST_CHECK(ev.action_due(level::critical));
  BOOST_CHECK(ev.action_due(level::emergency));
  BOOST_CHECK(!ev.action_due(level::normal));
  BOOST_CHECK_EQUAL(ev.threshold_kb, 160 * mb);
}

BOOST_FIXTURE_TEST_CASE(oscillation_around_a_threshold_does_not_flap,
                        monitor_fixture) {
  start();
  // Wobbling around 40 MB: rises once, never falls (39 holds warning).
  for (int i = 0; i < 20; ++i)
    feed_agent_mb({41, 39});
  BOOST_CHECK_EQUAL(events->size(), 1u);
  // Dips below the margin shorter than three samples: still no fall.
  for (int i = 0; i < 10; ++i)
    feed_agent_mb({30, 30, 41});
  BOOST_CHECK_EQUAL(events->size(), 1u);
  feed_agent_mb({30, 30, 30});
  BOOST_REQUIRE_EQUAL(events->size(), 2u);
  BOOST_CHECK(events->back().level == level::normal);
  // Without hysteresis the same curve flaps on every sample.
  monitor_config bare;
  bare.down_margin = 0;
  bare.down_samples = 1;
  pressure_tracker t{bare};
  int changes = 0;
  for (int i = 0; i < 20; ++i)
    for (uint64_t x : {41, 39})
      changes += t.update(x * mb, 0) ? 1 : 0;
  BOOST_CHECK_EQUAL(changes, 40);
}

BOOST_FIXTURE_TEST_CASE(tree_pressure_names_the_largest_children,
                        monitor_fixture) {
  cfg.tree = {100 * mb, 200 * mb, 300 * mb};
  host->add(5001, host->self, 100 * mb, "perf");
  host->add(5002, host->self, 20 * mb, "py-spy");
  host->add(5003, 5002, 30 * mb, "python3 (x)\n");
  start();
  // The first sample (before the subscription) already raised the level: a
  // late subscriber gets the current state at once.
  BOOST_REQUIRE_EQUAL(events->size(), 1u);
  auto& ev = events->front();
  BOOST_CHECK(ev.level == level::warning);
  BOOST_CHECK(ev.cause == pressure_cause::tree);
  BOOST_CHECK_EQUAL(ev.tree_rss_kb, (10 + 100 + 20 + 30) * mb);
  BOOST_CHECK_EQUAL(ev.threshold_kb, 100 * mb);
  BOOST_CHECK_EQUAL(ev.largest_child_pid, 5001);
  BOOST_REQUIRE_EQUAL(ev.largest_children.size(), 3u);
  BOOST_CHECK_EQUAL(ev.largest_children[0].comm, "perf");
  BOOST_CHECK_EQUAL(ev.largest_children[1].pid, 5003);
  BOOST_CHECK_EQUAL(ev.largest_children[1].ppid, 5002);
  BOOST_CHECK_EQUAL(ev.largest_children[1].comm, "python3 (x)\n");
  BOOST_CHECK_EQUAL(ev.largest_children[2].rss_kb, 20 * mb);
  // perf restarted: the tree shrinks; three samples later pressure is over.
  host->procs.erase(5001);
  feed_agent_mb({10, 10, 10});
  BOOST_REQUIRE_EQUAL(events->size(), 2u);
  BOOST_CHECK(events->back().level == level::normal);
  BOOST_CHECK(events->back().cause == pressure_cause::none);
}

BOOST_FIXTURE_TEST_CASE(window_stats_cover_one_window_then_reset,
                        monitor_fixture) {
  auto t0 = now_ns();
  start();
  auto w1 = window(); // the first sample only
  BOOST_CHECK_EQUAL(w1.samples, 1u);
  BOOST_CHECK_EQUAL(w1.agent_rss_kb.max, 10.0 * mb);
  BOOST_CHECK_EQUAL(w1.cpu_avg, 0.0); // no CPU time passed yet
  host->cpu = {50, 100};
  host->mem = {1000, 600};
  host->fds[host->self] = 14;
  host->add(7001, host->self, 4 * mb);
  host->add(7002, 7001, 4 * mb);
  feed_agent_mb({20});
  host->cpu = {60, 200};
  host->mem = {1000, 200};
  host->fds[host->self] = 13;
  host->procs.erase(7002);
  feed_agent_mb({30});
  host->cpu = {160, 400};
  host->mem = {1000, 400};
  auto w2 = window();
  BOOST_CHECK_EQUAL(w2.samples, 2u);
  BOOST_CHECK_EQUAL(w2.agent_rss_kb.min, 20.0 * mb);
  BOOST_CHECK_EQUAL(w2.agent_rss_kb.avg, 25.0 * mb);
  BOOST_CHECK_EQUAL(w2.agent_rss_kb.max, 30.0 * mb);
  BOOST_CHECK_EQUAL(w2.tree_rss_kb.min, 28.0 * mb);
  BOOST_CHECK_EQUAL(w2.tree_rss_kb.max, 34.0 * mb);
  BOOST_CHECK_EQUAL(w2.fds.min, 13.0);
  BOOST_CHECK_EQUAL(w2.fds.avg, 13.5);
  BOOST_CHECK_EQUAL(w2.fds.max, 14.0);
  BOOST_CHECK_EQUAL(w2.children.min, 1.0);
  BOOST_CHECK_EQUAL(w2.children.max, 2.0);
  // CPU: 160 busy of 400 ticks since the previous window closed.
  BOOST_CHECK_CLOSE(w2.cpu_avg, 40.0, 1e-9);
  // Memory: mean of 40 %, 80 % and the closing reading's 60 %.
  BOOST_CHECK_CLOSE(w2.mem_avg, 60.0, 1e-9);
  BOOST_CHECK_EQUAL(w2.start_ns, w1.end_ns);
  BOOST_CHECK_EQUAL(w2.end_ns - t0, 10'000'000'000);
  BOOST_CHECK(w2.max_level == level::normal);
  // The next window starts empty, and its CPU starts where w2 ended.
  host->cpu = {260, 500};
  auto w3 = window();
  BOOST_CHECK_EQUAL(w3.samples, 0u);
  BOOST_CHECK_EQUAL(w3.agent_rss_kb.max, 0.0);
  BOOST_CHECK_CLOSE(w3.cpu_avg, 100.0, 1e-9);
  BOOST_CHECK_CLOSE(w3.mem_avg, 60.0, 1e-9);
}

BOOST_FIXTURE_TEST_CASE(window_remembers_the_highest_level, monitor_fixture) {
  start();
  window();
  feed_agent_mb({90, 10, 10, 10});
  auto w = window();
  BOOST_CHECK(w.max_level == level::critical);
  BOOST_CHECK(state().pressure.level() == level::normal);
  BOOST_CHECK(window().max_level == level::normal);
}

BOOST_FIXTURE_TEST_CASE(unknown_host_figures_are_negative, monitor_fixture) {
  host->cpu_ok = false;
  host->mem_ok = false;
  host->fds.clear();
  start();
  auto s = sample_now();
  BOOST_CHECK_EQUAL(s.fds, -1);
  BOOST_CHECK_EQUAL(s.host_cpu_percent, -1.0);
  BOOST_CHECK_EQUAL(s.host_mem_percent, -1.0);
  auto w = window();
  BOOST_CHECK_EQUAL(w.cpu_avg, -1.0);
  BOOST_CHECK_EQUAL(w.mem_avg, -1.0);
  BOOST_CHECK_EQUAL(w.fds.max, 0.0);
}

BOOST_FIXTURE_TEST_CASE(gauges_follow_the_samples, monitor_fixture) {
  host->add(8001, host->self, 3 * mb);
  host->add(8002, 8001, 5 * mb);
  start();
  host->set_agent_mb(12);
  host->fds[host->self] = 21;
  host->procs[host->self].threads = 7;
  sample_now();
  namespace m = rt::metric;
  BOOST_CHECK_EQUAL(reg->value(m::agent_rss.name), 12.0 * 1024 * 1024);
  BOOST_CHECK_EQUAL(reg->value(m::tree_rss.name), 20.0 * 1024 * 1024);
  BOOST_CHECK_EQUAL(reg->value(m::open_fds.name), 21.0);
  BOOST_CHECK_EQUAL(reg->value(m::threads.name), 7.0);
  BOOST_CHECK_EQUAL(reg->value(m::children.name), 2.0);
  BOOST_CHECK_EQUAL(reg->value(m::monitor_samples.name), 2.0);
  host->set_agent_mb(100);
  sample_now();
  BOOST_CHECK_EQUAL(reg->value(m::pressure_level.name), 2.0);
}

BOOST_FIXTURE_TEST_CASE(terminated_listeners_are_forgotten, monitor_fixture) {
  start();
  BOOST_CHECK_EQUAL(state().pressure_listeners.size(), 1u);
  // Subscribing twice keeps one entry.
  caf::anon_send(mon, subscribe_atom_v, plistener);
  run();
  BOOST_CHECK_EQUAL(state().pressure_listeners.size(), 1u);
  auto others = std::make_shared<std::vector<pressure_event>>();
  auto second = make_pressure_listener(others);
  caf::anon_send(mon, subscribe_atom_v, second);
  run();
  BOOST_CHECK_EQUAL(state().pressure_listeners.size(), 2u);
  caf::anon_send_exit(second, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(slistener, caf::exit_reason::user_shutdown);
  run();
  BOOST_CHECK_EQUAL(state().pressure_listeners.size(), 1u);
  BOOST_CHECK(state().sample_listeners.empty());
  feed_agent_mb({50});
  BOOST_CHECK_EQUAL(events->size(), 1u);
  BOOST_CHECK(others->empty());
}

BOOST_FIXTURE_TEST_CASE(tree_of_a_host_with_10000_processes, monitor_fixture) {
  // PIDs 1..10000, each with a random older parent: a forest under PID 1
  // in which the agent (4242) has a random subtree. Some processes vanish
  // between the listing and the read; some claim an in-tree parent that is
  // younger than they are (a reused PID).
  host->procs.clear();
  host->fds.clear();
  std::mt19937 rng{7};
  for (int32_t pid = 1; pid <= 10000; ++pid) {
    int32_t ppid
        = pid == 1 ? 0
                   : std::uniform_int_distribution<int32_t>(1, pid - 1)(rng);
    if (pid == host->self)
      ppid = 1;
    // Newer PIDs prefer the agent's tree, so it is large.
    if (pid > host->self && rng() % 4 == 0)
      ppid = host->self;
    auto kb = 4 * std::uniform_int_distribution<uint64_t>(1, 25000)(rng);
    host->add(pid, ppid, kb, "p " + std::to_string(pid) + ")", 1000 + pid);
  }
  host->fds[host->self] = 30;
  std::vector<int32_t> in_tree;
  for (auto& [pid, st] : host->procs)
    if (st.ppid == host->self)
      in_tree.push_back(pid);
  BOOST_REQUIRE_GT(in_tree.size(), 100u);
  for (size_t i = 0; i < in_tree.size(); i += 37)
    host->vanishing.insert(in_tree[i]);
  for (size_t i = 5; i < in_tree.size(); i += 41) {
    auto victim = host->procs.find(in_tree[i] + 1);
    if (victim == host->procs.end() || victim->first == host->self)
      continue;
    victim->second.ppid = in_tree[i];
    victim->second.start_time = 10; // older than its "parent"
  }
  host->vanishing.insert(20000); // listed, never existed
  auto want = walk_up(*host);
  BOOST_REQUIRE_GT(want.descendants, 1000u);
  start();
  host->stat_reads = 0;
  host->statm_reads = 0;
  auto s = sample_now();
  BOOST_CHECK_EQUAL(s.tree_rss_kb, want.tree_kb);
  BOOST_CHECK_EQUAL(s.children, want.descendants);
  BOOST_CHECK_EQUAL(s.direct_children, want.children);
  BOOST_CHECK_EQUAL(s.largest_child_rss_kb, want.largest_kb);
  BOOST_CHECK_EQUAL(s.agent_rss_kb,
                    host->procs[host->self].rss_pages * fake_proc::page / 1024);
  // One stat read per listed process, one statm read per tree member.
  BOOST_CHECK_EQUAL(host->stat_reads, host->procs.size() + 1);
  BOOST_CHECK_EQUAL(host->statm_reads, want.descendants + 1);
  auto t = rt::scan_tree(*host, host->self, 3);
  BOOST_CHECK_EQUAL(t.vanished, host->vanishing.size());
  BOOST_REQUIRE_EQUAL(t.largest.size(), 3u);
  BOOST_CHECK(t.largest[0].rss_kb >= t.largest[1].rss_kb);
  BOOST_CHECK(t.largest[1].rss_kb >= t.largest[2].rss_kb);
}

BOOST_AUTO_TEST_CASE(scan_of_a_missing_root_finds_nothing) {
  fake_proc host;
  host.add(5, host.self, 100);
  auto t = rt::scan_tree(host, 999);
  BOOST_CHECK(!t.found);
  BOOST_CHECK_EQUAL(t.tree_rss_kb, 0u);
  BOOST_CHECK_EQUAL(t.descendants, 0u);
}

BOOST_AUTO_TEST_SUITE_END()

// Performance Studio's commands and configuration reloads in deterministic
// simulation: the real controller, schedulers and perf profilers over the
// simulated world; commands arrive as the heartbeat client hands them over.

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <ctime>
#include <string>

#include <caf/send.hpp>

#include "test/app/agent_sim.hpp"

using namespace std::chrono_literals;
using namespace gpa;
using gpa::test::agent_sim;
using gpa::test::finish;
using gpa::test::seen_profile;
using gpa::test::sim_seed;
using gpa::test::sim_setup;

namespace {

/// Seconds since the simulation's start of a header time
/// ("2023-11-14T22:13:20.000Z" or without the zone).
double at_s(const std::string& iso) {
  std::tm tm{};
  if (!strptime(iso.c_str(), "%Y-%m-%dT%H:%M:%S", &tm))
    return -1;
  double ms = 0;
  if (auto dot = iso.find('.'); dot != std::string::npos)
    ms = std::strtod(("0" + iso.substr(dot, 4)).c_str(), nullptr) * 1000;
  return static_cast<double>(timegm(&tm)) + ms / 1000
         - static_cast<double>(agent_sim::epoch_ms) / 1000;
}

double length_s(const seen_profile& p) {
  return at_s(p.end) - at_s(p.start);
}

control_command start(std::string id, bool continuous, int64_t duration,
                      int64_t hz) {
  control_command c;
  c.id = std::move(id);
  c.type = "start";
  c.continuous = continuous;
  c.duration_s = duration;
  c.frequency = hz;
  return c;
}

control_command stop(std::string id) {
  control_command c;
  c.id = std::move(id);
  c.type = "stop";
  return c;
}

const command_outcome* outcome_of(const agent_sim& sim, const std::string& id) {
  for (auto& o : sim.outcomes)
    if (o.command_id == id)
      return &o;
  return nullptr;
}

size_t outcomes_of(const agent_sim& sim, const std::string& id) {
  size_t n = 0;
  for (auto& o : sim.outcomes)
    n += o.command_id == id;
  return n;
}

} // namespace

BOOST_AUTO_TEST_SUITE(control_plane)

BOOST_AUTO_TEST_CASE(adhoc_pauses_continuous_which_resumes_and_stop_ends_it) {
  sim_setup s;
  s.seed = sim_seed(41);
  s.frequency = 11;
  s.cpus = 2;
  s.heartbeat = true;
  agent_sim sim{s};
  sim.contiguous = false;
  auto send = [&](control_command c) {
    caf::anon_send(sim.actors.controller, command_atom_v, std::move(c));
  };
  // Heartbeat mode: nothing runs until a command comes.
  sim.run_for(5min);
  BOOST_CHECK(sim.profiles.empty());
  BOOST_CHECK(sim.session() == nullptr);

  // A continuous command: 20 s windows at 7 Hz.
  send(start("c1", true, 20, 7));
  sim.run_for(70s);
  BOOST_REQUIRE_GE(sim.profiles.size(), 3u);
  for (size_t i = 1; i < sim.profiles.size(); ++i) {
    BOOST_CHECK_CLOSE(length_s(sim.profiles[i]), 20.0, 1.0);
    BOOST_CHECK_EQUAL(sim.profiles[i].samples, 7u * 2 * 20);
  }
  BOOST_REQUIRE(outcome_of(sim, "c1"));
  BOOST_CHECK_EQUAL(outcome_of(sim, "c1")->status, "completed");
  auto continuous_session = sim.controller().current_stats().running;

  // An ad-hoc command: the continuous window in progress closes early
  // (and is kept), one 30 s window at 3 Hz runs, then continuous resumes.
  auto before = sim.profiles.size();
  send(start("a1", false, 30, 3));
  send(start("a1", false, 30, 3)); // Studio repeats it: runs once
  sim.run_for(5s);
  BOOST_CHECK(sim.controller().current_stats().continuous_paused);
  BOOST_CHECK_EQUAL(sim.profiles.size(), before + 1); // the cut window
  BOOST_CHECK_LT(length_s(sim.profiles.back()), 20.0);
  sim.run_for(40s);
  BOOST_REQUIRE_GE(sim.profiles.size(), before + 2);
  auto& adhoc = sim.profiles[before + 1];
  BOOST_CHECK_CLOSE(length_s(adhoc), 30.0, 1.0);
  BOOST_CHECK_LE(adhoc.samples, 3u * 2 * 30);
  BOOST_CHECK_GE(adhoc.samples, 3u * 2 * 30 * 9 / 10);
  BOOST_REQUIRE(outcome_of(sim, "a1"));
  BOOST_CHECK_EQUAL(outcome_of(sim, "a1")->status, "completed");
  // Its window, plus its profilers' start and its merge.
  BOOST_CHECK_GE(outcome_of(sim, "a1")->execution_time_s, 30);
  BOOST_CHECK_LE(outcome_of(sim, "a1")->execution_time_s, 35);
  BOOST_CHECK_EQUAL(outcomes_of(sim, "a1"), 1u);
  BOOST_CHECK_EQUAL(sim.controller().stats.repeats, 1u);
  // Continuous resumed in a new session, with its own settings.
  sim.run_for(50s);
  auto st = sim.controller().current_stats();
  BOOST_CHECK_EQUAL(st.running_command, "c1");
  BOOST_CHECK_GT(st.running, continuous_session);
  BOOST_CHECK(!st.continuous_paused);
  BOOST_CHECK_EQUAL(sim.profiles.back().samples, 7u * 2 * 20);
  BOOST_CHECK_CLOSE(length_s(sim.profiles.back()), 20.0, 1.0);
  BOOST_CHECK_EQUAL(outcomes_of(sim, "c1"), 1u); // reported once

  // A host-level stop: the window in progress is closed and kept, then
  // nothing runs.
  before = sim.profiles.size();
  send(stop("s1"));
  sim.run_for(5s);
  BOOST_CHECK_EQUAL(sim.profiles.size(), before + 1);
  BOOST_CHECK(sim.session() == nullptr);
  sim.run_for(5min);
  BOOST_CHECK_EQUAL(sim.profiles.size(), before + 1);
  BOOST_REQUIRE(outcome_of(sim, "s1"));
  BOOST_CHECK_EQUAL(outcome_of(sim, "s1")->status, "completed");
  // Executed ids are remembered for the next run of the agent.
  BOOST_CHECK_EQUAL(s.ledger->count("c1"), 1u);
  BOOST_CHECK_EQUAL(s.ledger->count("a1"), 1u);
  BOOST_CHECK_EQUAL(s.ledger->count("s1"), 1u);
  finish(sim);
}

BOOST_AUTO_TEST_CASE(executed_command_is_not_run_again_after_a_restart) {
  sim_setup s;
  s.seed = sim_seed(42);
  s.heartbeat = true;
  s.ledger->insert("a1"); // the previous run executed it
  agent_sim sim{s};
  caf::anon_send(sim.actors.controller, command_atom_v,
                 start("a1", false, 10, 5));
  sim.run_for(2min);
  BOOST_CHECK(sim.profiles.empty());
  BOOST_CHECK_EQUAL(sim.controller().stats.repeats, 1u);
  BOOST_CHECK(sim.outcomes.empty());
  // A new id runs.
  caf::anon_send(sim.actors.controller, command_atom_v,
                 start("a2", false, 10, 5));
  sim.run_for(1min);
  BOOST_CHECK_EQUAL(sim.profiles.size(), 1u);
  BOOST_REQUIRE(outcome_of(sim, "a2"));
  finish(sim);
}

BOOST_AUTO_TEST_CASE(process_level_stop_narrows_then_ends_the_session) {
  sim_setup s;
  s.seed = sim_seed(43);
  s.heartbeat = true;
  agent_sim sim{s};
  sim.contiguous = false;
  auto c = start("c1", true, 20, 5);
  c.pids = {2000, 2001};
  caf::anon_send(sim.actors.controller, command_atom_v, c);
  sim.run_for(30s);
  auto first = sim.controller().current_stats().running;
  BOOST_REQUIRE_NE(first, 0u);
  BOOST_CHECK_EQUAL(sim.scheduler().cfg.opts.pids.size(), 2u);
  auto narrow = stop("s1");
  narrow.stop_level = "process";
  narrow.pids = {2001};
  caf::anon_send(sim.actors.controller, command_atom_v, narrow);
  sim.run_for(10s);
  BOOST_REQUIRE(sim.session());
  BOOST_CHECK_GT(sim.controller().current_stats().running, first);
  BOOST_CHECK(sim.scheduler().cfg.opts.pids == std::vector<int64_t>{2000});
  auto rest = stop("s2");
  rest.stop_level = "process";
  rest.pids = {2000};
  caf::anon_send(sim.actors.controller, command_atom_v, rest);
  sim.run_for(10s);
  BOOST_CHECK(sim.session() == nullptr);
  BOOST_REQUIRE(outcome_of(sim, "s2"));
  BOOST_CHECK_EQUAL(outcome_of(sim, "s2")->status, "completed");
  // A process-level stop of a host-wide session changes nothing.
  caf::anon_send(sim.actors.controller, command_atom_v,
                 start("c2", true, 20, 5));
  sim.run_for(10s);
  auto wide = stop("s3");
  wide.stop_level = "process";
  wide.pids = {2000};
  caf::anon_send(sim.actors.controller, command_atom_v, wide);
  sim.run_for(10s);
  BOOST_CHECK(sim.session() != nullptr);
  BOOST_REQUIRE(outcome_of(sim, "s3"));
  BOOST_CHECK_EQUAL(outcome_of(sim, "s3")->status, "failed");
  finish(sim);
}

BOOST_AUTO_TEST_CASE(reload_applies_at_the_window_boundary) {
  sim_setup s;
  s.seed = sim_seed(44);
  s.frequency = 11;
  s.cpus = 2;
  agent_sim sim{s};
  sim.contiguous = false;
  sim.run_for(90s);
  BOOST_REQUIRE_EQUAL(sim.profiles.size(), 1u);
  auto first_session = sim.controller().current_stats().running;
  // SIGHUP with -f 7 in the file (run_agent checks and merges it; here the
  // registry gets the result).
  {
    std::lock_guard<std::mutex> guard{sim.actors.sessions->mtx};
    sim.actors.sessions->opts.scheduler.frequency = 7;
  }
  caf::anon_send(sim.actors.controller, reload_atom_v);
  sim.run_for(20s); // the window in progress goes on, at 11 Hz
  BOOST_CHECK_EQUAL(sim.controller().current_stats().running, first_session);
  sim.run_for(100s);
  BOOST_REQUIRE_GE(sim.profiles.size(), 3u);
  // No window lost: the one in progress ran to its end with the old
  // options, the next ones have the new frequency.
  BOOST_CHECK_CLOSE(length_s(sim.profiles[1]), 60.0, 1.0);
  BOOST_CHECK_EQUAL(sim.profiles[1].samples, 11u * 2 * 60);
  BOOST_CHECK_GT(sim.controller().current_stats().running, first_session);
  BOOST_CHECK_LT(at_s(sim.profiles[2].start) - at_s(sim.profiles[1].end), 5.0);
  sim.run_for(2min);
  BOOST_CHECK_EQUAL(sim.profiles.back().samples, 7u * 2 * 60);
  finish(sim);
}

BOOST_AUTO_TEST_SUITE_END()

// Deterministic tests of the reaper's state machine with a scripted launcher:
// timeout order, cancel, queue bound, requester death, bounded state.

#include <boost/test/unit_test.hpp>

#include <caf/send.hpp>

#include "actors/process_reaper.hpp"
#include "test/support/fake_launcher.hpp"
#include "test/support/fixture.hpp"

using namespace std::chrono_literals;
using namespace gpa;
using gpa::test::fake_launcher;

namespace {

struct reaper_fixture : gpa::test::sim_fixture {
  std::shared_ptr<fake_launcher> launcher = std::make_shared<fake_launcher>();
  reaper_actor reaper;

  explicit reaper_fixture(uint32_t max_children = 4, uint32_t max_queued = 2) {
    reaper_config cfg;
    cfg.opts.max_children = max_children;
    cfg.opts.max_queued = max_queued;
    cfg.temp_dir = "/tmp/sim";
    reaper = caf::actor_cast<reaper_actor>(
        sys.spawn(process_reaper, launcher, cfg));
    run();
  }

  ~reaper_fixture() override {
    caf::anon_send_exit(reaper, caf::exit_reason::user_shutdown);
    run();
  }

  static run_request make(std::string program, std::string tag = "t",
                          caf::timespan timeout = caf::timespan{0},
                          caf::timespan grace = 2s) {
    run_request req;
    req.argv = {std::move(program)};
    req.tag = std::move(tag);
    req.timeout = timeout;
    req.kill_grace = grace;
    return req;
  }

  std::shared_ptr<gpa::test::reply<run_result>> run_one(run_request req) {
    auto r = request<run_result>(reaper, run_atom_v, std::move(req));
    run();
    return r;
  }

  reaper_stats stats() {
    auto r = request<reaper_stats>(reaper, stats_atom_v);
    run();
    BOOST_REQUIRE(r->value);
    return *r->value;
  }
};

uint8_t code_of(const caf::error& err) {
  BOOST_REQUIRE(err.category() == caf::atom("gpa"));
  return err.code();
}

} // namespace

BOOST_AUTO_TEST_SUITE(reaper_sim)

BOOST_FIXTURE_TEST_CASE(reply_carries_exit_status_and_output, reaper_fixture) {
  auto r = run_one(make("tool"));
  BOOST_REQUIRE_EQUAL(launcher->children.size(), 1u);
  BOOST_CHECK(!r->done);
  launcher->exit(launcher->find("tool"), 3, "hello", "warn");
  run();
  BOOST_REQUIRE(r->done && r->value);
  BOOST_CHECK(r->value->exited);
  BOOST_CHECK_EQUAL(r->value->exit_code, 3);
  BOOST_CHECK_EQUAL(r->value->term_signal, 0);
  BOOST_CHECK_EQUAL(r->value->out, "hello");
  BOOST_CHECK_EQUAL(r->value->err, "warn");
  BOOST_CHECK(!r->value->timed_out);
  BOOST_CHECK(!r->value->success());
  BOOST_CHECK_EQUAL(stats().live, 0u);
}

BOOST_FIXTURE_TEST_CASE(timeout_sends_term_then_kill_after_grace,
                        reaper_fixture) {
  launcher->stubborn.insert("hang");
  auto r = run_one(make("hang", "t", 5s, 2s));
  auto id = launcher->find("hang");
  advance(4999ms);
  BOOST_CHECK(launcher->signal_log.empty());
  advance(1ms);
  BOOST_REQUIRE_EQUAL(launcher->signal_log.size(), 1u);
  BOOST_CHECK_EQUAL(launcher->signal_log[0].second, SIGTERM);
  advance(1999ms);
  BOOST_CHECK_EQUAL(launcher->signal_log.size(), 1u);
  BOOST_CHECK(!r->done);
  advance(1ms);
  BOOST_REQUIRE_EQUAL(launcher->signal_log.size(), 2u);
  BOOST_CHECK_EQUAL(launcher->signal_log[1].first, id);
  BOOST_CHECK_EQUAL(launcher->signal_log[1].second, SIGKILL);
  BOOST_REQUIRE(r->done && r->value);
  BOOST_CHECK(r->value->timed_out);
  BOOST_CHECK(r->value->killed);
  BOOST_CHECK(!r->value->exited);
  BOOST_CHECK_EQUAL(r->value->term_signal, SIGKILL);
  BOOST_CHECK(r->value->run_time >= 7s);
}

BOOST_FIXTURE_TEST_CASE(child_that_obeys_term_is_not_killed, reaper_fixture) {
  auto r = run_one(make("slow", "t", 1s, 2s));
  advance(1s);
  BOOST_REQUIRE(r->done && r->value);
  BOOST_CHECK(r->value->timed_out);
  BOOST_CHECK(!r->value->killed);
  BOOST_CHECK_EQUAL(r->value->term_signal, SIGTERM);
  // The grace timer fires later and must find nothing to do.
  advance(5s);
  BOOST_CHECK_EQUAL(launcher->signal_log.size(), 1u);
}

BOOST_AUTO_TEST_CASE(cancel_by_tag) {
  reaper_fixture f{2, 4};
  auto a1 = f.run_one(reaper_fixture::make("a1", "snap-1"));
  auto b1 = f.run_one(reaper_fixture::make("b1", "snap-2"));
  auto a2 = f.run_one(
      reaper_fixture::make("a2", "snap-1")); // queued: 2 slots taken
  BOOST_CHECK_EQUAL(f.stats().queued, 1u);
  auto n = f.request<uint32_t>(f.reaper, cancel_atom_v, std::string{"snap-1"});
  f.run();
  BOOST_REQUIRE(n->value);
  BOOST_CHECK_EQUAL(*n->value, 2u); // a1 running, a2 queued
  BOOST_REQUIRE(a2->done);
  BOOST_CHECK_EQUAL(code_of(a2->error), static_cast<uint8_t>(ec::cancelled));
  BOOST_REQUIRE(a1->done && a1->value);
  BOOST_CHECK(a1->value->cancelled);
  BOOST_CHECK(!b1->done);
  BOOST_CHECK(f.launcher->find("b1") != 0);
  f.launcher->exit(f.launcher->find("b1"), 0);
  f.run();
  BOOST_REQUIRE(b1->value);
  BOOST_CHECK(b1->value->success());
}

BOOST_AUTO_TEST_CASE(queue_bound_refuses_at_once_and_queued_start_later) {
  reaper_fixture f{2, 1};
  auto r1 = f.run_one(reaper_fixture::make("p1"));
  auto r2 = f.run_one(reaper_fixture::make("p2"));
  auto r3 = f.run_one(reaper_fixture::make("p3"));
  auto r4 = f.run_one(reaper_fixture::make("p4"));
  BOOST_CHECK_EQUAL(f.launcher->children.size(), 2u);
  BOOST_REQUIRE(r4->done);
  BOOST_CHECK_EQUAL(code_of(r4->error), static_cast<uint8_t>(ec::queue_full));
  BOOST_CHECK(!r3->done);
  BOOST_CHECK_EQUAL(f.launcher->find("p3"), 0u);
  f.launcher->exit(f.launcher->find("p1"), 0);
  f.run();
  BOOST_CHECK(r1->done);
  BOOST_CHECK(f.launcher->find("p3") != 0); // took the free slot
  auto s = f.stats();
  BOOST_CHECK_EQUAL(s.live, 2u);
  BOOST_CHECK_EQUAL(s.queued, 0u);
  BOOST_CHECK_EQUAL(s.rejected_total, 1u);
}

BOOST_FIXTURE_TEST_CASE(dead_requester_gets_its_children_stopped,
                        reaper_fixture) {
  launcher->stubborn.insert("orphan");
  auto req = make("orphan");
  auto dest = reaper;
  sys.spawn([=](caf::event_based_actor* self) {
    self->request(dest, caf::infinite, run_atom_v, req)
        .then([](run_result&) {}, [](caf::error&) {});
    self->quit(); // dies with the child still running
  });
  run();
  auto id = launcher->find("orphan");
  BOOST_REQUIRE(id != 0);
  // The reaper saw the requester go and sent SIGTERM; grace, then SIGKILL.
  BOOST_REQUIRE_EQUAL(launcher->signal_log.size(), 1u);
  BOOST_CHECK_EQUAL(launcher->signal_log[0].second, SIGTERM);
  advance(2s);
  BOOST_REQUIRE_EQUAL(launcher->signal_log.size(), 2u);
  BOOST_CHECK_EQUAL(launcher->signal_log[1].second, SIGKILL);
  BOOST_CHECK(launcher->children.empty());
  auto s = stats();
  BOOST_CHECK_EQUAL(s.live, 0u);
  BOOST_CHECK_EQUAL(s.monitored, 0u);
}

BOOST_FIXTURE_TEST_CASE(missing_tool_is_a_clear_error, reaper_fixture) {
  launcher->missing["nope"] = "cannot start 'nope': not found in PATH";
  auto r = run_one(make("nope"));
  BOOST_REQUIRE(r->done);
  BOOST_CHECK_EQUAL(code_of(r->error), static_cast<uint8_t>(ec::spawn_failed));
  BOOST_CHECK_NE(describe(r->error).find("not found in PATH"),
                 std::string::npos);
  BOOST_CHECK_EQUAL(stats().live, 0u);
}

BOOST_FIXTURE_TEST_CASE(output_file_name_cannot_escape_temp_dir,
                        reaper_fixture) {
  auto req = make("tool");
  req.out_mode = stdout_mode::file;
  req.out_file = "../etc/passwd";
  auto r = run_one(req);
  BOOST_REQUIRE(r->done);
  BOOST_CHECK_EQUAL(code_of(r->error),
                    static_cast<uint8_t>(ec::invalid_request));
  BOOST_CHECK_EQUAL(launcher->started, 0u);
}

BOOST_FIXTURE_TEST_CASE(signal_reaches_only_tagged_children, reaper_fixture) {
  run_one(make("perf", "perf-record"));
  run_one(make("other", "x"));
  auto n = request<uint32_t>(reaper, signal_atom_v, std::string{"perf-record"},
                             int32_t{SIGUSR2});
  run();
  BOOST_REQUIRE(n->value);
  BOOST_CHECK_EQUAL(*n->value, 1u);
  BOOST_REQUIRE_EQUAL(launcher->signal_log.size(), 1u);
  BOOST_CHECK_EQUAL(launcher->signal_log[0].first, launcher->find("perf"));
  BOOST_CHECK_EQUAL(launcher->signal_log[0].second, SIGUSR2);
}

BOOST_FIXTURE_TEST_CASE(state_does_not_grow_with_requests_served,
                        reaper_fixture) {
  for (int i = 0; i < 10000; ++i) {
    auto r = run_one(make("t", "t", 10s));
    launcher->exit(launcher->children.begin()->first, 0);
    run();
    BOOST_REQUIRE(r->done);
  }
  auto s = stats();
  BOOST_CHECK_EQUAL(s.live, 0u);
  BOOST_CHECK_EQUAL(s.queued, 0u);
  BOOST_CHECK_EQUAL(s.monitored, 0u);
  BOOST_CHECK_EQUAL(s.reaped_total, 10000u);
  // Stale timeouts of reaped children fire into nothing.
  advance(10s);
  BOOST_CHECK(launcher->signal_log.empty());
}

BOOST_AUTO_TEST_SUITE_END()

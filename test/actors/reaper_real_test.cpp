// The reaper with the real launcher and real child processes: nothing leaks
// (descriptors, children), timeouts kill whole process groups, a chatty
// child cannot block, a dead requester leaves no child behind.

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <thread>

#include <sys/stat.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "actors/process_reaper.hpp"
#include "messages/registry.hpp"
#include "runtime/error.hpp"
#include "runtime/log.hpp"
#include "runtime/process_env.hpp"
#include "test/support/proc_counts.hpp"

using namespace std::chrono_literals;
using namespace gpa;
using gpa::test::count_children;
using gpa::test::count_fds;

namespace {

caf::actor_system_config& make_config(caf::actor_system_config& cfg) {
  add_message_types(cfg);
  log::silence();
  return cfg;
}

struct real_fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys{make_config(cfg)};
  rt::private_temp_dir temp{"/tmp"};
  std::shared_ptr<rt::process_launcher> launcher = rt::make_posix_launcher();
  reaper_actor reaper;
  caf::scoped_actor self{sys};

  real_fixture() {
    reaper_config rc;
    rc.opts.max_children = 16;
    rc.opts.max_queued = 100000;
    rc.temp_dir = temp.path();
    reaper = caf::actor_cast<reaper_actor>(
        sys.spawn(process_reaper, launcher, rc));
  }

  ~real_fixture() {
    self->send_exit(reaper, caf::exit_reason::user_shutdown);
  }

  static run_request cmd(std::vector<std::string> argv,
                         caf::timespan timeout = caf::timespan{0},
                         caf::timespan grace = 2s) {
    run_request req;
    req.argv = std::move(argv);
    req.timeout = timeout;
    req.kill_grace = grace;
    req.tag = "test";
    return req;
  }

  /// Runs one request and waits for its reply.
  run_result run(run_request req) {
    run_result result;
    self->request(reaper, caf::infinite, run_atom_v, std::move(req))
        .receive(
            [&](run_result& r) {
              result = std::move(r);
            },
            [&](caf::error& err) {
              BOOST_FAIL("run failed: " << describe(err));
            });
    return result;
  }

  /// Runs `n` copies of `req`, keeping the reaper's slots busy; returns the
  /// results.
  std::vector<run_result> run_many(const run_request& req, int n) {
    std::vector<run_result> results;
    for (int i = 0; i < n; ++i)
      self->send(reaper, run_atom_v, req);
    int received = 0;
    self->receive_for(received, n)(
        [&](run_result& r) {
          results.push_back(std::move(r));
        },
        [&](caf::error& err) {
          BOOST_FAIL("run failed: " << describe(err));
        });
    return results;
  }

  reaper_stats stats() {
    reaper_stats result;
    self->request(reaper, caf::infinite, stats_atom_v)
        .receive(
            [&](reaper_stats& s) {
              result = s;
            },
            [&](caf::error& err) {
              BOOST_FAIL(describe(err));
            });
    return result;
  }
};

/// Waits until the launcher has reaped everything (reports are delivered
/// just after reaping).
void settle(real_fixture& f) {
  for (int i = 0; i < 200 && (f.stats().live != 0 || count_children() != 0);
       ++i)
    std::this_thread::sleep_for(10ms);
}

} // namespace

BOOST_AUTO_TEST_SUITE(reaper_real)

BOOST_FIXTURE_TEST_CASE(ten_thousand_exits_leave_no_trace, real_fixture) {
  // Warm up once so lazily opened descriptors (epoll, eventfd) exist.
  run(cmd({"/bin/true"}));
  settle(*this);
  auto fds_before = count_fds();
  auto children_before = count_children();
  auto t0 = std::chrono::steady_clock::now();
  auto results = run_many(cmd({"/bin/true"}), 10000);
  auto secs
      = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
  BOOST_TEST_MESSAGE("10000 spawn-to-exit cycles in " << secs << " s");
  BOOST_REQUIRE_EQUAL(results.size(), 10000u);
  for (auto& r : results)
    BOOST_REQUIRE(r.success());
  settle(*this);
  BOOST_CHECK_EQUAL(count_fds(), fds_before);
  BOOST_CHECK_EQUAL(count_children(), children_before);
  auto s = stats();
  BOOST_CHECK_EQUAL(s.live, 0u);
  BOOST_CHECK_EQUAL(s.fds, 0u);
  BOOST_CHECK_EQUAL(s.queued, 0u);
}

BOOST_FIXTURE_TEST_CASE(two_thousand_timeouts_leave_no_trace, real_fixture) {
  run(cmd({"/bin/true"}));
  settle(*this);
  auto fds_before = count_fds();
  auto children_before = count_children();
  // Ignores SIGTERM, so each one takes the whole path: timeout, SIGTERM,
  // grace, SIGKILL, reap.
  // 300 ms leave the shell time to set its trap even on a loaded machine.
  auto req = cmd({"/bin/sh", "-c", "trap '' TERM; exec sleep 30"}, 300ms, 20ms);
  auto results = run_many(req, 2000);
  BOOST_REQUIRE_EQUAL(results.size(), 2000u);
  for (auto& r : results) {
    BOOST_REQUIRE(r.timed_out);
    BOOST_REQUIRE(r.killed);
    BOOST_REQUIRE_EQUAL(r.term_signal, SIGKILL);
  }
  settle(*this);
  BOOST_CHECK_EQUAL(count_fds(), fds_before);
  BOOST_CHECK_EQUAL(count_children(), children_before);
  BOOST_CHECK_EQUAL(stats().fds, 0u);
}

BOOST_FIXTURE_TEST_CASE(child_ignoring_term_gets_kill_after_grace,
                        real_fixture) {
  auto r = run(cmd({"/bin/sh", "-c", "trap '' TERM; while :; do sleep 1; done"},
                   300ms, 500ms));
  BOOST_CHECK(r.timed_out);
  BOOST_CHECK(r.killed);
  BOOST_CHECK(!r.exited);
  BOOST_CHECK_EQUAL(r.term_signal, SIGKILL);
  BOOST_CHECK(r.run_time >= 800ms);
  BOOST_CHECK(!gpa::test::group_alive(r.pid));
}

BOOST_FIXTURE_TEST_CASE(child_obeying_term_is_not_killed, real_fixture) {
  auto r = run(cmd({"sleep", "30"}, 200ms, 5s));
  BOOST_CHECK(r.timed_out);
  BOOST_CHECK(!r.killed);
  BOOST_CHECK_EQUAL(r.term_signal, SIGTERM);
  BOOST_CHECK(r.run_time < 5s);
}

BOOST_FIXTURE_TEST_CASE(chatty_child_under_cap_finishes_and_is_truncated,
                        real_fixture) {
  auto req = cmd({"head", "-c", "200000000", "/dev/zero"}, 60s);
  req.out_cap = 64 << 10;
  auto r = run(req);
  BOOST_CHECK(r.success());
  BOOST_CHECK_EQUAL(r.out.size(), 64u << 10);
  BOOST_CHECK(r.out_truncated);
  BOOST_CHECK_EQUAL(r.out_bytes, 200000000u);
}

BOOST_FIXTURE_TEST_CASE(stderr_is_captured_up_to_its_cap, real_fixture) {
  auto req = cmd({"/bin/sh", "-c", "echo out; echo err-text >&2; exit 7"});
  req.err_cap = 3;
  auto r = run(req);
  BOOST_CHECK(r.exited);
  BOOST_CHECK_EQUAL(r.exit_code, 7);
  BOOST_CHECK_EQUAL(r.out, "out\n");
  BOOST_CHECK_EQUAL(r.err, "err");
  BOOST_CHECK(r.err_truncated);
}

BOOST_FIXTURE_TEST_CASE(shell_whose_grandchild_holds_the_pipe_is_killed_whole,
                        real_fixture) {
  auto fds_before = count_fds();
  // On timeout: the shell and its background sleep both go.
  auto r = run(cmd({"/bin/sh", "-c", "sleep 1000 & sleep 1000"}, 200ms, 1s));
  BOOST_CHECK(r.timed_out);
  BOOST_CHECK(!gpa::test::group_alive(r.pid));
  // On a normal exit: the shell is gone at once, its grandchild still holds
  // stdout; the reply must not wait for it, and it must not survive.
  auto t0 = std::chrono::steady_clock::now();
  auto r2 = run(cmd({"/bin/sh", "-c", "sleep 1000 & echo started"}, 60s));
  BOOST_CHECK(r2.success());
  BOOST_CHECK_EQUAL(r2.out, "started\n");
  BOOST_CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  BOOST_CHECK(!gpa::test::group_alive(r2.pid));
  settle(*this);
  BOOST_CHECK_EQUAL(count_children(), 0);
  BOOST_CHECK_EQUAL(count_fds(), fds_before);
}

BOOST_FIXTURE_TEST_CASE(requester_that_dies_leaves_no_child, real_fixture) {
  auto dest = reaper;
  auto req = cmd({"/bin/sh", "-c", "trap '' TERM; sleep 1000"}, 0s, 200ms);
  sys.spawn([=](caf::event_based_actor* requester) {
    requester->request(dest, caf::infinite, run_atom_v, req)
        .then([](run_result&) {}, [](caf::error&) {});
    requester->delayed_send(requester, 300ms, caf::exit_reason::kill);
    requester->set_default_handler(
        [requester](caf::scheduled_actor*, caf::message_view&) {
          requester->quit();
          return caf::message{};
        });
  });
  // Wait until the child runs, then until the requester's death stopped it.
  bool seen = false;
  for (int i = 0; i < 100 && !seen; ++i) {
    seen = stats().live == 1;
    std::this_thread::sleep_for(10ms);
  }
  BOOST_REQUIRE(seen);
  for (int i = 0; i < 300 && stats().live != 0; ++i)
    std::this_thread::sleep_for(10ms);
  BOOST_CHECK_EQUAL(stats().live, 0u);
  settle(*this);
  BOOST_CHECK_EQUAL(count_children(), 0);
}

BOOST_FIXTURE_TEST_CASE(output_file_is_created_privately, real_fixture) {
  auto req = cmd({"/bin/sh", "-c", "echo to-file"});
  req.out_mode = stdout_mode::file;
  req.out_file = "out.txt";
  auto r = run(req);
  BOOST_CHECK(r.success());
  BOOST_CHECK_EQUAL(r.out_path, temp.path() + "/out.txt");
  struct stat st {};
  BOOST_REQUIRE_EQUAL(::lstat(r.out_path.c_str(), &st), 0);
  BOOST_CHECK_EQUAL(st.st_mode & 0777, 0600u);
  // A second run to the same name must not follow or overwrite it.
  caf::error error;
  self->request(reaper, caf::infinite, run_atom_v, req)
      .receive([](run_result&) {},
               [&](caf::error& err) {
                 error = err;
               });
  BOOST_CHECK(error);
  BOOST_CHECK_NE(describe(error).find("out.txt"), std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(missing_program_is_reported, real_fixture) {
  caf::error error;
  self->request(reaper, caf::infinite, run_atom_v, cmd({"no-such-tool-gpa"}))
      .receive([](run_result&) {},
               [&](caf::error& err) {
                 error = err;
               });
  BOOST_CHECK_NE(describe(error).find("not found in PATH"), std::string::npos);
  error = caf::error{};
  self->request(reaper, caf::infinite, run_atom_v, cmd({"/nonexistent/tool"}))
      .receive([](run_result&) {},
               [&](caf::error& err) {
                 error = err;
               });
  BOOST_CHECK_NE(describe(error).find("/nonexistent/tool"), std::string::npos);
  settle(*this);
  BOOST_CHECK_EQUAL(count_children(), 0);
}

BOOST_AUTO_TEST_SUITE_END()

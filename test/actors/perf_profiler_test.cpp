// The perf profiler's state machine without an actor system: perf_state
// driven through scripted effects (the reaper's answers, timers, the clock)
// and an in-memory file system. One test per transition path: the probe,
// getting ready, rotation, restarts (exit, RSS, start timeout), and --pids
// targets that go away.

#include <boost/test/unit_test.hpp>

#include <csignal>
#include <deque>

#include "actors/perf_profiler.hpp"
#include "runtime/error.hpp"
#include "runtime/log.hpp"
#include "test/support/sim_world.hpp"

using namespace std::chrono_literals;
using namespace gpa;

namespace {

/// Scripted effects: every call is recorded and answered by the test.
struct fake_effects : perf_effects {
  struct run_call {
    run_request req;
    std::function<void(caf::expected<run_result>)> done;
  };
  struct signal_call {
    std::string tag;
    int sig = 0;
    std::function<void(caf::expected<uint32_t>)> done;
  };
  std::deque<run_call> runs;
  std::deque<signal_call> signals;
  std::vector<std::string> cancels;
  std::deque<std::function<void(child_list)>> lists;
  int polls = 0;
  std::vector<caf::timespan> restarts;
  std::vector<std::pair<std::string, uint64_t>> collapses;
  caf::actor_clock::time_point t{};

  void run(run_request req,
           std::function<void(caf::expected<run_result>)> done) override {
    runs.push_back({std::move(req), std::move(done)});
  }
  void signal(const std::string& tag, int sig,
              std::function<void(caf::expected<uint32_t>)> done) override {
    signals.push_back({tag, sig, std::move(done)});
  }
  void cancel(const std::string& tag) override {
    cancels.push_back(tag);
  }
  void list(const std::string&, std::function<void(child_list)> done) override {
    lists.push_back(std::move(done));
  }
  void poll_in(caf::timespan) override {
    ++polls;
  }
  void restart_in(caf::timespan delay) override {
    restarts.push_back(delay);
  }
  caf::actor_clock::time_point now() override {
    return t;
  }
  void collapse(std::string path, uint64_t window) override {
    collapses.emplace_back(std::move(path), window);
  }

  /// Takes the oldest run request.
  run_call next_run() {
    BOOST_REQUIRE(!runs.empty());
    auto c = std::move(runs.front());
    runs.pop_front();
    return c;
  }
};

run_result exited(int code, std::string out = {}, std::string err = {}) {
  run_result r;
  r.exited = true;
  r.exit_code = code;
  r.out = std::move(out);
  r.err = std::move(err);
  return r;
}

struct perf_fixture {
  std::shared_ptr<fake_effects> fx = std::make_shared<fake_effects>();
  std::shared_ptr<gpa::test::fake_fs> fs
      = std::make_shared<gpa::test::fake_fs>();
  perf_state st;
  std::vector<std::string> prepared;
  std::vector<profile_part> parts;
  std::vector<int64_t> alive_pids;

  perf_fixture(perf_config cfg = {}) {
    log::silence();
    cfg.temp_dir = "/tmp/agent";
    if (!cfg.pids.empty())
      cfg.alive = [this](int64_t pid) {
        return std::find(alive_pids.begin(), alive_pids.end(), pid)
               != alive_pids.end();
      };
    st.init(cfg, fx, fs, nullptr);
  }

  void prepare() {
    st.prepare([this](std::string status) {
      prepared.push_back(std::move(status));
    });
  }

  /// Answers the probe: the test recording and its perf script work.
  void probe_works() {
    auto rec = fx->next_run();
    BOOST_CHECK(rec.req.tag == "perf-probe");
    rec.done(exited(0));
    auto script = fx->next_run();
    script.done(exited(0, "sleep 123\n"));
  }

  /// perf record writes its output; the warming signal goes out; perf
  /// answers it with a rotation file.
  void get_ready() {
    fs->files["/tmp/agent/perf.data"] = "header";
    st.on_poll();
    BOOST_CHECK(st.phase() == perf_phase::warming);
    BOOST_REQUIRE(!fx->signals.empty());
    BOOST_CHECK_EQUAL(fx->signals.back().sig, SIGUSR2);
    fx->signals.back().done(uint32_t{1});
    fx->signals.clear();
    fs->files["/tmp/agent/perf.data.2026001"] = "startup";
    st.on_poll();
    BOOST_CHECK(st.phase() == perf_phase::recording);
  }

  /// From nothing to recording.
  void start_recording() {
    prepare();
    probe_works();
    BOOST_CHECK(st.phase() == perf_phase::launching);
    get_ready();
    BOOST_CHECK((prepared == std::vector<std::string>{""}));
  }

  /// The window `id` is asked for.
  void snapshot(uint64_t id) {
    snapshot_request req;
    req.snapshot_id = id;
    req.tag = "snap-" + std::to_string(id) + "/perf";
    req.budget = 10s;
    st.on_snapshot(req, [this](profile_part p) {
      parts.push_back(std::move(p));
    });
  }

  /// The run request of perf record now in flight (the last one queued).
  fake_effects::run_call take_record() {
    BOOST_REQUIRE(!fx->runs.empty());
    auto c = fx->next_run();
    BOOST_CHECK_EQUAL(c.req.tag, "perf-record");
    return c;
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(perf_profiler)

// -- the plain classes
// ----------------------------------------------------------

BOOST_AUTO_TEST_CASE(transition_table) {
  using p = perf_phase;
  BOOST_CHECK(perf_transition_allowed(p::idle, p::probing));
  BOOST_CHECK(!perf_transition_allowed(p::idle, p::recording));
  BOOST_CHECK(perf_transition_allowed(p::probing, p::launching));
  BOOST_CHECK(perf_transition_allowed(p::launching, p::warming));
  BOOST_CHECK(!perf_transition_allowed(p::launching, p::recording));
  BOOST_CHECK(perf_transition_allowed(p::warming, p::recording));
  BOOST_CHECK(!perf_transition_allowed(p::recording, p::warming));
  BOOST_CHECK(perf_transition_allowed(p::recording, p::stopping));
  BOOST_CHECK(!perf_transition_allowed(p::backing_off, p::stopping));
  BOOST_CHECK(perf_transition_allowed(p::stopping, p::launching));
  BOOST_CHECK(perf_transition_allowed(p::backing_off, p::launching));
  for (auto final_phase : {p::failed, p::no_targets})
    for (auto to : {p::idle, p::probing, p::launching, p::warming, p::recording,
                    p::stopping, p::backing_off, p::no_targets, p::failed})
      BOOST_CHECK(!perf_transition_allowed(final_phase, to));
}

BOOST_AUTO_TEST_CASE(event_probe_tries_in_order_and_summarizes) {
  event_probe probe;
  BOOST_CHECK_EQUAL(probe.current(), "");
  probe.failed("not supported");
  BOOST_CHECK_EQUAL(probe.current(), "cpu-clock");
  BOOST_CHECK_EQUAL(probe.notes(), "; perf's default event: not supported");
  probe.failed("no samples");
  probe.failed("exit status 1");
  BOOST_CHECK(probe.exhausted());
  BOOST_CHECK_EQUAL(probe.summary(),
                    "no event yields samples (perf's default event: not "
                    "supported; 'cpu-clock': no samples; 'task-clock': exit "
                    "status 1)");
}

BOOST_AUTO_TEST_CASE(rotation_book_matches_files_in_order) {
  rotation_book book;
  auto entry = [](std::string name) {
    rt::dir_entry e;
    e.name = std::move(name);
    e.regular = true;
    return e;
  };
  book.asked(0);
  book.asked(7);
  auto m = book.take({entry("perf.data"), entry("perf.data.001"),
                      entry("perf.data.002"), entry("perf.data.003")},
                     "perf.data");
  BOOST_REQUIRE_EQUAL(m.size(), 3u);
  BOOST_CHECK_EQUAL(m[0].owner, 0u);
  BOOST_CHECK_EQUAL(m[1].owner, 7u);
  BOOST_CHECK_EQUAL(m[2].owner, 0u); // nobody asked: a late answer
  BOOST_CHECK_EQUAL(book.seen(), 3u);
  // Files matched before are not matched again.
  book.asked(8);
  BOOST_CHECK(book.take({entry("perf.data.002")}, "perf.data").empty());
  BOOST_CHECK((book.abandon() == std::vector<uint64_t>{8}));
  BOOST_CHECK_EQUAL(book.pending(), 0u);
  book.forget("perf.data.002");
  BOOST_CHECK_EQUAL(book.seen(), 2u);
}

// -- transitions of perf_state
// ----------------------------------------------------

BOOST_FIXTURE_TEST_CASE(probe_falls_through_to_a_working_event, perf_fixture) {
  prepare();
  BOOST_CHECK(st.phase() == perf_phase::probing);
  // perf's default event is refused, cpu-clock records no samples,
  // task-clock works.
  fx->next_run().done(exited(1, "", "event not supported"));
  auto rec = fx->next_run();
  auto& argv = rec.req.argv;
  BOOST_CHECK(std::find(argv.begin(), argv.end(), "cpu-clock") != argv.end());
  rec.done(exited(0));
  fx->next_run().done(exited(0, " \n"));
  probe_works();
  BOOST_CHECK(st.event() && *st.event() == "task-clock");
  BOOST_CHECK(st.phase() == perf_phase::launching);
  auto record = take_record();
  auto& rargv = record.req.argv;
  BOOST_CHECK(std::find(rargv.begin(), rargv.end(), "--switch-output=signal")
              != rargv.end());
  BOOST_CHECK(prepared.empty()); // not ready until perf answers a rotation
}

BOOST_FIXTURE_TEST_CASE(no_working_event_is_final, perf_fixture) {
  prepare();
  for (int i = 0; i < 3; ++i)
    fx->next_run().done(exited(1, "", "nope"));
  BOOST_CHECK(st.phase() == perf_phase::failed);
  BOOST_REQUIRE_EQUAL(prepared.size(), 1u);
  BOOST_CHECK(prepared[0].find("no event yields samples") == 0);
  snapshot(1);
  BOOST_REQUIRE_EQUAL(parts.size(), 1u);
  BOOST_CHECK_EQUAL(parts[0].errors.at(0).what, "failed");
  // A later prepare gets the same answer; nothing runs any more.
  prepare();
  BOOST_CHECK_EQUAL(prepared.back(), prepared.front());
  BOOST_CHECK(fx->runs.empty());
}

BOOST_FIXTURE_TEST_CASE(a_perf_that_cannot_start_fails_at_once, perf_fixture) {
  prepare();
  fx->next_run().done(
      make_gpa_error(ec::spawn_failed, "cannot run perf: No such file"));
  BOOST_CHECK(st.phase() == perf_phase::failed);
  BOOST_CHECK(st.final_reason().find("No such file") != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(ready_after_perf_answers_a_rotation, perf_fixture) {
  prepare();
  probe_works();
  // The output file exists but is empty: not started yet, no signal.
  fs->files["/tmp/agent/perf.data"] = "";
  st.on_poll();
  BOOST_CHECK(st.phase() == perf_phase::launching);
  BOOST_CHECK(fx->signals.empty());
  get_ready();
  BOOST_CHECK((prepared == std::vector<std::string>{""}));
  // The answer to the warming signal is nobody's data.
  BOOST_CHECK(fs->files.count("/tmp/agent/perf.data.2026001") == 0);
}

BOOST_FIXTURE_TEST_CASE(warming_signal_is_repeated_every_second, perf_fixture) {
  prepare();
  probe_works();
  fs->files["/tmp/agent/perf.data"] = "header";
  st.on_poll();
  BOOST_CHECK_EQUAL(fx->signals.size(), 1u);
  fx->t += 500ms;
  st.on_poll();
  BOOST_CHECK_EQUAL(fx->signals.size(), 1u);
  fx->t += 600ms;
  st.on_poll();
  BOOST_CHECK_EQUAL(fx->signals.size(), 2u);
  BOOST_CHECK(st.phase() == perf_phase::warming);
}

BOOST_FIXTURE_TEST_CASE(a_window_is_cut_scripted_and_collapsed, perf_fixture) {
  start_recording();
  auto record = take_record();
  window_info w1;
  w1.snapshot_id = 1;
  st.on_start(w1); // right after getting ready: what came before is dropped
  BOOST_REQUIRE_EQUAL(fx->signals.size(), 1u);
  fx->signals.front().done(uint32_t{1});
  fx->signals.clear();
  snapshot(1);
  BOOST_REQUIRE_EQUAL(fx->signals.size(), 1u);
  fx->signals.front().done(uint32_t{1});
  fs->files["/tmp/agent/perf.data.2026002"] = "before window 1";
  fs->files["/tmp/agent/perf.data.2026003"] = "window 1";
  st.on_poll();
  // The first file was the discarded segment, the second is window 1's.
  BOOST_CHECK(fs->files.count("/tmp/agent/perf.data.2026002") == 0);
  auto script = fx->next_run();
  BOOST_CHECK_EQUAL(script.req.tag, "snap-1/perf");
  BOOST_CHECK_EQUAL(script.req.argv.back(), "/tmp/agent/perf.data.2026003");
  run_result ok = exited(0);
  ok.out_path = "/tmp/agent/script-perf-1.txt";
  script.done(ok);
  BOOST_REQUIRE_EQUAL(fx->collapses.size(), 1u);
  BOOST_CHECK_EQUAL(fx->collapses[0].second, 1u);
  BOOST_CHECK(fs->files.count("/tmp/agent/perf.data.2026003") == 0);
  profile_part part;
  part.snapshot_id = 1;
  part.profiler = "perf";
  st.on_collapsed(part);
  BOOST_REQUIRE_EQUAL(parts.size(), 1u);
  BOOST_CHECK(parts[0].errors.empty());
  BOOST_CHECK(st.windows.empty());
  BOOST_CHECK_EQUAL(st.rotations.seen(), 0u);
}

namespace {

perf_config injecting() {
  perf_config cfg;
  cfg.inject_jit = true;
  return cfg;
}

struct inject_fixture : perf_fixture {
  inject_fixture() : perf_fixture(injecting()) {}

  /// Window 1 recorded; returns the run request that follows (inject).
  fake_effects::run_call window_one() {
    start_recording();
    auto record = take_record();
    auto& argv = record.req.argv;
    // jitdumps carry CLOCK_MONOTONIC times: perf records with them.
    auto k = std::find(argv.begin(), argv.end(), "-k");
    BOOST_REQUIRE(k != argv.end() && std::next(k) != argv.end());
    BOOST_CHECK_EQUAL(*std::next(k), "1");
    window_info w1;
    w1.snapshot_id = 1;
    st.on_start(w1);
    fx->signals.front().done(uint32_t{1});
    fx->signals.clear();
    snapshot(1);
    fx->signals.front().done(uint32_t{1});
    fs->files["/tmp/agent/perf.data.2026002"] = "before window 1";
    fs->files["/tmp/agent/perf.data.2026003"] = "window 1";
    st.on_poll();
    return fx->next_run();
  }
};

} // namespace

BOOST_FIXTURE_TEST_CASE(nodejs_perf_mode_injects_jitdumps_before_script,
                        inject_fixture) {
  auto inject = window_one();
  BOOST_CHECK(
      (inject.req.argv
       == std::vector<std::string>{"perf", "inject", "--jit", "-i",
                                   "/tmp/agent/perf.data.2026003", "-o",
                                   "/tmp/agent/perf.data.2026003.jit"}));
  BOOST_CHECK_EQUAL(inject.req.tag, "snap-1/perf");
  fs->files["/tmp/agent/perf.data.2026003.jit"] = "injected";
  inject.done(exited(0));
  auto script = fx->next_run();
  BOOST_CHECK_EQUAL(script.req.argv.back(), "/tmp/agent/perf.data.2026003.jit");
  run_result ok = exited(0);
  ok.out_path = "/tmp/agent/script-perf-1.txt";
  script.done(ok);
  // Both recordings are gone once perf script has read the injected one.
  BOOST_CHECK(fs->files.count("/tmp/agent/perf.data.2026003") == 0);
  BOOST_CHECK(fs->files.count("/tmp/agent/perf.data.2026003.jit") == 0);
  BOOST_REQUIRE_EQUAL(fx->collapses.size(), 1u);
}

BOOST_FIXTURE_TEST_CASE(a_failed_inject_still_gives_the_windows_stacks,
                        inject_fixture) {
  auto inject = window_one();
  fs->files["/tmp/agent/perf.data.2026003.jit"] = "half written";
  inject.done(exited(1, "", "jitdump: corrupt"));
  // perf script reads the recording itself: stacks without jitdump names.
  auto script = fx->next_run();
  BOOST_CHECK_EQUAL(script.req.argv.back(), "/tmp/agent/perf.data.2026003");
  BOOST_CHECK(fs->files.count("/tmp/agent/perf.data.2026003.jit") == 0);
  run_result ok = exited(0);
  ok.out_path = "/tmp/agent/script-perf-1.txt";
  script.done(ok);
  BOOST_REQUIRE_EQUAL(fx->collapses.size(), 1u);
}

BOOST_FIXTURE_TEST_CASE(perf_exit_backs_off_doubling_then_restarts,
                        perf_fixture) {
  start_recording();
  snapshot(1);
  // perf dies with window 1's rotation outstanding: the window fails, a
  // restart is scheduled after 1 s.
  take_record().done(exited(1, "", "perf: crashed"));
  BOOST_CHECK(st.phase() == perf_phase::backing_off);
  BOOST_REQUIRE_EQUAL(parts.size(), 1u);
  BOOST_CHECK_EQUAL(parts[0].errors.at(0).reason, "perf record stopped");
  BOOST_REQUIRE_EQUAL(fx->restarts.size(), 1u);
  BOOST_CHECK(fx->restarts[0] == 1s);
  BOOST_CHECK_EQUAL(st.restarts, 1u);
  // While it backs off, a window says so.
  snapshot(2);
  BOOST_CHECK_EQUAL(parts.back().errors.at(0).reason,
                    "perf record is restarting");
  // The timer: perf starts again; it exits before it is ready, twice: the
  // delay doubles.
  st.launch();
  BOOST_CHECK(st.phase() == perf_phase::launching);
  take_record().done(exited(1));
  BOOST_CHECK(fx->restarts.back() == 2s);
  st.launch();
  take_record().done(exited(1));
  BOOST_CHECK(fx->restarts.back() == 4s);
  // Once it gets ready the delay starts over.
  st.launch();
  get_ready();
  take_record().done(exited(1));
  BOOST_CHECK(fx->restarts.back() == 1s);
}

BOOST_FIXTURE_TEST_CASE(a_stale_restart_timer_does_nothing, perf_fixture) {
  start_recording();
  auto runs = fx->runs.size();
  st.launch();
  BOOST_CHECK(st.phase() == perf_phase::recording);
  BOOST_CHECK_EQUAL(fx->runs.size(), runs);
}

BOOST_FIXTURE_TEST_CASE(rss_over_the_limit_restarts_after_the_window,
                        perf_fixture) {
  perf_config cfg;
  cfg.opts.rss_limit_mb = 1;
  cfg.temp_dir = "/tmp/agent";
  cfg.rss_kb = [](int32_t) {
    return int64_t{5000};
  };
  st.init(cfg, fx, fs, nullptr);
  start_recording();
  auto record = take_record();
  snapshot(1);
  fx->signals.front().done(uint32_t{1});
  BOOST_REQUIRE_EQUAL(fx->lists.size(), 1u);
  child_list children;
  children.children.push_back({4242, "perf-record", "perf", 1s});
  fx->lists.front()(children);
  // Not yet: the window's rotation is still to come.
  BOOST_CHECK(st.phase() == perf_phase::recording);
  fs->files["/tmp/agent/perf.data.2026002"] = "window 1";
  st.on_poll();
  BOOST_CHECK(st.phase() == perf_phase::stopping);
  BOOST_CHECK((fx->cancels == std::vector<std::string>{"perf-record"}));
  // Window 1 still gets its data.
  auto script = fx->next_run();
  BOOST_CHECK_EQUAL(script.req.argv.back(), "/tmp/agent/perf.data.2026002");
  // perf is reaped: started again at once, no back-off.
  record.done(exited(0));
  BOOST_CHECK(st.phase() == perf_phase::launching);
  BOOST_CHECK(fx->restarts.empty());
  BOOST_CHECK_EQUAL(st.restarts, 1u);
}

// --perf-no-memory-restart: the same perf over the limit is never cut.
BOOST_FIXTURE_TEST_CASE(no_memory_restart_keeps_perf_over_the_limit,
                        perf_fixture) {
  perf_config cfg;
  cfg.opts.rss_limit_mb = 1;
  cfg.opts.no_memory_restart = true;
  cfg.temp_dir = "/tmp/agent";
  cfg.rss_kb = [](int32_t) {
    return int64_t{5000};
  };
  st.init(cfg, fx, fs, nullptr);
  start_recording();
  auto record = take_record();
  snapshot(1);
  fx->signals.front().done(uint32_t{1});
  BOOST_CHECK(fx->lists.empty());
  fs->files["/tmp/agent/perf.data.2026002"] = "window 1";
  st.on_poll();
  BOOST_CHECK(st.phase() == perf_phase::recording);
  BOOST_CHECK(fx->cancels.empty());
  BOOST_CHECK_EQUAL(st.restarts, 0u);
}

BOOST_FIXTURE_TEST_CASE(not_ready_in_time_restarts_and_windows_time_out,
                        perf_fixture) {
  prepare();
  probe_works();
  auto record = take_record();
  fx->t += 31s;
  st.on_poll();
  BOOST_CHECK(st.phase() == perf_phase::stopping);
  snapshot(1);
  BOOST_CHECK_EQUAL(parts.back().errors.at(0).what, "timed out");
  BOOST_CHECK(parts.back().errors.at(0).reason.find(
                  "did not get ready within 30 s (1 times in a row)")
              != std::string::npos);
  record.done(exited(0));
  BOOST_CHECK(st.phase() == perf_phase::launching);
}

// -- --pids
// -----------------------------------------------------------------------

struct pids_fixture : perf_fixture {
  static perf_config config() {
    perf_config cfg;
    cfg.pids = {10, 11};
    return cfg;
  }
  pids_fixture() : perf_fixture(config()) {
    alive_pids = {10, 11};
  }
};

BOOST_FIXTURE_TEST_CASE(no_live_target_is_final, pids_fixture) {
  alive_pids.clear();
  prepare();
  probe_works();
  BOOST_CHECK(st.phase() == perf_phase::no_targets);
  BOOST_REQUIRE_EQUAL(prepared.size(), 1u);
  BOOST_CHECK_EQUAL(prepared[0],
                    "none of the --pids processes (10,11) is running");
  snapshot(1);
  BOOST_CHECK_EQUAL(parts.back().errors.at(0).reason, prepared[0]);
  BOOST_CHECK(fx->runs.empty());
}

BOOST_FIXTURE_TEST_CASE(a_target_that_exits_restarts_perf_for_the_others,
                        pids_fixture) {
  start_recording();
  auto record = take_record();
  auto& argv = record.req.argv;
  BOOST_CHECK(std::find(argv.begin(), argv.end(), "10,11") != argv.end());
  // 11 exits; perf record -p ends: started again at once with 10 only.
  alive_pids = {10};
  record.done(exited(0));
  BOOST_CHECK(st.phase() == perf_phase::launching);
  BOOST_CHECK(fx->restarts.empty());
  auto again = take_record();
  BOOST_CHECK(std::find(again.req.argv.begin(), again.req.argv.end(), "10")
              != again.req.argv.end());
  // Then 10 exits too: nothing left to record, for good.
  alive_pids.clear();
  again.done(exited(0));
  BOOST_CHECK(st.phase() == perf_phase::no_targets);
}

BOOST_AUTO_TEST_SUITE_END()

// Deterministic tests of the uploader's state machine: a scripted HTTP
// client, in-memory spools (the simulation touches no directory), an inline
// sender, and simulated time for the back-off (delayed_send on the
// test_coordinator).

#include <boost/test/unit_test.hpp>

#include <caf/send.hpp>

#include "actors/uploader.hpp"
#include "runtime/process_env.hpp"
#include "test/support/fake_http_client.hpp"
#include "test/support/fixture.hpp"
#include "test/support/helpers.hpp"
#include "test/support/sim_world.hpp"
#include "upload/format.hpp"

using namespace std::chrono_literals;
using namespace gpa;
using gpa::test::fake_http_client;
using gpa::test::make_profile;
using gpa::test::marker_of;

namespace {

struct uploader_fixture : gpa::test::sim_fixture {
  std::shared_ptr<fake_http_client> http = std::make_shared<fake_http_client>();
  std::shared_ptr<rt::metrics> metrics = std::make_shared<rt::metrics>();
  std::shared_ptr<rt::spool> spool;
  std::shared_ptr<rt::spool> py_spool;
  uploader_actor up;
  /// What a stand-in next sink saw: profiles, and the spool's size then.
  std::vector<uint64_t> seen_by_writer;
  std::vector<size_t> spool_when_written;

  ~uploader_fixture() override {
    caf::anon_send_exit(up, caf::exit_reason::user_shutdown);
    run();
  }

  static uploader_config config() {
    uploader_config cfg;
    cfg.studio.identity.server_host = "https://studio.test";
    cfg.studio.identity.token = "sim-token";
    cfg.studio.identity.service_name = "svc";
    cfg.studio.identity.hostname = "sim-host";
    cfg.studio.identity.version = "0.1.0";
    cfg.studio.now_ms = [] {
      return int64_t{1714557600000};
    };
    cfg.backoff_initial = 5s;
    cfg.backoff_max = 60s;
    cfg.backoff_jitter = 0.2;
    cfg.rng_seed = 7;
    return cfg;
  }

  void start(uploader_config cfg = config(), rt::spool_limits lim = {}) {
    if (!spool)
      spool = rt::spool::in_memory(lim, "studio");
    if (!py_spool)
      py_spool = rt::spool::in_memory(lim, "pyroscope");
    uploader_effects fx;
    fx.http = http;
    fx.studio_spool = spool;
    fx.pyroscope_spool = py_spool;
    fx.sender = std::make_shared<gpa::test::inline_work_queue>();
    fx.metrics = metrics;
    up = caf::actor_cast<uploader_actor>(
        sys.spawn(uploader, std::move(fx), std::move(cfg)));
    run();
  }

  /// Hands a profile to the uploader; returns whether it said the profile
  /// is stored on disk.
  bool send(uint64_t id) {
    auto r = request<bool>(up, write_atom_v, make_profile(id));
    run();
    BOOST_REQUIRE(r->value);
    return *r->value;
  }

  uploader_stats stats() {
    auto r = request<uploader_stats>(up, stats_atom_v);
    run();
    BOOST_REQUIRE(r->value);
    return *r->value;
  }

  /// Time until the next pending timer, or a negative span if none.
  caf::timespan next_timer() {
    auto& sch = sched.clock().schedule();
    if (sch.empty())
      return caf::timespan{-1};
    return sch.begin()->first - now();
  }

  /// Snapshot markers of the profile uploads, in order; accepted only if
  /// `ok_only`.
  std::vector<uint64_t> uploaded(bool ok_only = true) {
    std::vector<uint64_t> result;
    for (auto& c : http->uploads())
      if (!ok_only || c.status == 200)
        result.push_back(marker_of(c.profile));
    return result;
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(uploader_sim)

BOOST_AUTO_TEST_CASE(backoff_grows_doubling_and_is_capped) {
  uploader_state st;
  st.cfg.backoff_initial = 5s;
  st.cfg.backoff_max = 60s;
  st.cfg.backoff_jitter = 0.2;
  std::vector<caf::timespan> expected{5s, 10s, 20s, 40s, 60s, 60s, 60s};
  for (uint32_t n = 1; n <= expected.size(); ++n)
    BOOST_CHECK(st.nominal_delay(n) == expected[n - 1]);
  BOOST_CHECK(st.nominal_delay(1000) == 60s); // no overflow far out
  st.rng.seed(1);
  std::vector<caf::timespan> first;
  for (uint32_t n = 1; n <= 50; ++n) {
    auto d = st.jittered_delay(n);
    auto nominal = st.nominal_delay(n);
    BOOST_CHECK(d >= nominal * 8 / 10);
    BOOST_CHECK(d <= nominal * 12 / 10);
    first.push_back(d);
  }
  // The same seed gives the same jitter; the jitter is not constant.
  st.rng.seed(1);
  for (uint32_t n = 1; n <= 50; ++n)
    BOOST_CHECK(st.jittered_delay(n) == first[n - 1]);
  BOOST_CHECK(first[10] != first[11]);
}

BOOST_FIXTURE_TEST_CASE(retries_follow_the_backoff_in_simulated_time,
                        uploader_fixture) {
  start();
  http->down = true;
  send(1);
  BOOST_CHECK_EQUAL(uploaded(false).size(), 1u);
  BOOST_CHECK_EQUAL(stats().spooled, 1u);
  std::vector<caf::timespan> nominal{5s, 10s, 20s, 40s, 60s, 60s};
  for (size_t i = 0; i < nominal.size(); ++i) {
    auto delay = next_timer();
    BOOST_REQUIRE(delay > caf::timespan{0});
    BOOST_CHECK(delay >= nominal[i] * 8 / 10);
    BOOST_CHECK(delay <= nominal[i] * 12 / 10);
    // Nothing happens before the timer is due...
    advance(delay - 1ms);
    BOOST_CHECK_EQUAL(uploaded(false).size(), i + 1);
    // ...and exactly one retry when it is.
    advance(1ms);
    BOOST_CHECK_EQUAL(uploaded(false).size(), i + 2);
  }
  auto st = stats();
  BOOST_CHECK_EQUAL(st.retries, 7u);
  BOOST_CHECK_EQUAL(st.failed, 7u);
  BOOST_CHECK(st.backing_off);
  http->down = false;
  BOOST_REQUIRE(fire_next_timer());
  st = stats();
  BOOST_CHECK_EQUAL(st.sent, 1u);
  BOOST_CHECK_EQUAL(st.spool_files, 0u);
  BOOST_CHECK(!st.backing_off);
  BOOST_CHECK(next_timer() < caf::timespan{0}); // no timer left
  // A new failure starts the schedule over.
  http->down = true;
  send(2);
  BOOST_CHECK(next_timer() <= 6s);
}

BOOST_FIXTURE_TEST_CASE(spool_bound_drops_the_oldest_and_keeps_order,
                        uploader_fixture) {
  rt::spool_limits lim;
  lim.max_files = 3;
  start(config(), lim);
  http->down = true;
  for (uint64_t i = 1; i <= 5; ++i)
    send(i);
  auto st = stats();
  BOOST_CHECK_EQUAL(st.spooled, 5u);
  BOOST_CHECK_EQUAL(st.dropped, 2u);
  BOOST_CHECK_EQUAL(st.spool_files, 3u);
  // While backing off, new profiles are spooled without a request each.
  BOOST_CHECK_EQUAL(uploaded(false).size(), 1u);
  http->down = false;
  BOOST_REQUIRE(fire_next_timer());
  BOOST_CHECK((uploaded() == std::vector<uint64_t>{3, 4, 5}));
  st = stats();
  BOOST_CHECK_EQUAL(st.sent, 3u);
  BOOST_CHECK_EQUAL(st.spool_files, 0u);
  // The metrics registry saw the same counts.
  BOOST_CHECK_EQUAL(metrics->value("gpa_uploads_total", {{"result", "sent"}}),
                    3);
  BOOST_CHECK_EQUAL(
      metrics->value("gpa_uploads_total", {{"result", "spooled"}}), 5);
  BOOST_CHECK_EQUAL(
      metrics->value("gpa_uploads_total", {{"result", "dropped"}}), 2);
  BOOST_CHECK_EQUAL(metrics->value("gpa_uploads_total", {{"result", "failed"}}),
                    1);
}

BOOST_FIXTURE_TEST_CASE(new_profiles_wait_behind_spooled_ones_and_gpid_flows,
                        uploader_fixture) {
  start();
  http->script = {0};
  send(1); // fails: spooled, back-off
  send(2); // behind 1
  send(3);
  BOOST_CHECK_EQUAL(uploaded(false).size(), 1u);
  BOOST_REQUIRE(fire_next_timer());
  send(4); // arrives after the spool drained: sent at once
  BOOST_CHECK((uploaded() == std::vector<uint64_t>{1, 2, 3, 4}));
  // Each upload carries the gpid of the previous answer.
  auto calls = http->uploads();
  BOOST_REQUIRE_EQUAL(calls.size(), 5u);
  BOOST_CHECK_EQUAL(calls[0].gpid, "");
  BOOST_CHECK_EQUAL(calls[1].gpid, "");
  BOOST_CHECK_EQUAL(calls[2].gpid, "101");
  BOOST_CHECK_EQUAL(calls[3].gpid, "102");
  BOOST_CHECK_EQUAL(calls[4].gpid, "103");
  BOOST_CHECK_EQUAL(stats().gpid, "104");
}

BOOST_FIXTURE_TEST_CASE(pyroscope_has_its_own_spool_and_back_off,
                        uploader_fixture) {
  auto cfg = config();
  cfg.studio.pyroscope_url = "https://pyroscope.test";
  cfg.studio.pyroscope_app = "app.cpu";
  cfg.studio.sample_rate_hz = 11;
  start(cfg);
  auto ingested = [&](bool ok_only) {
    std::vector<uint64_t> result;
    for (auto& c : http->ingests())
      if (!ok_only || c.status == 200)
        result.push_back(marker_of(c.body));
    return result;
  };
  // Pyroscope is down: its profiles wait in its spool, behind one failed
  // request and a back-off, while Performance Studio gets every profile at
  // once.
  http->ingest_down = true;
  for (uint64_t i = 1; i <= 3; ++i)
    send(i);
  BOOST_CHECK((uploaded() == std::vector<uint64_t>{1, 2, 3}));
  BOOST_CHECK_EQUAL(ingested(false).size(), 1u);
  auto st = stats();
  BOOST_CHECK_EQUAL(st.sent, 3u);
  BOOST_CHECK_EQUAL(st.spooled, 0u);
  BOOST_CHECK(!st.backing_off);
  BOOST_CHECK_EQUAL(st.pyroscope_failed, 1u);
  BOOST_CHECK_EQUAL(st.pyroscope_spooled, 3u);
  BOOST_CHECK_EQUAL(st.pyroscope_spool_files, 3u);
  BOOST_CHECK_EQUAL(py_spool->count(), 3u);
  // Studio's spool holds nothing: every profile went out.
  BOOST_CHECK_EQUAL(spool->count(), 0u);
  // Pyroscope returns: the three arrive oldest first, once each.
  http->ingest_down = false;
  BOOST_REQUIRE(fire_next_timer());
  BOOST_CHECK((ingested(true) == std::vector<uint64_t>{1, 2, 3}));
  st = stats();
  BOOST_CHECK_EQUAL(st.pyroscope_sent, 3u);
  BOOST_CHECK_EQUAL(st.pyroscope_spool_files, 0u);
  BOOST_CHECK(next_timer() < caf::timespan{0});
  BOOST_CHECK_EQUAL(
      metrics->value("gpa_pyroscope_uploads_total", {{"result", "sent"}}), 3);
  BOOST_CHECK_EQUAL(
      metrics->value("gpa_pyroscope_uploads_total", {{"result", "spooled"}}),
      3);
  BOOST_CHECK_EQUAL(metrics->value("gpa_uploads_total", {{"result", "sent"}}),
                    3);
  // A client error from Pyroscope is permanent: dropped, not retried, and
  // Performance Studio still gets the profile.
  http->script = {200, 400};
  send(4);
  st = stats();
  BOOST_CHECK_EQUAL(st.pyroscope_dropped, 1u);
  BOOST_CHECK_EQUAL(st.pyroscope_spooled, 3u);
  BOOST_CHECK_EQUAL(st.sent, 4u);
  BOOST_CHECK(next_timer() < caf::timespan{0});
}

BOOST_FIXTURE_TEST_CASE(client_errors_are_permanent_overload_is_not,
                        uploader_fixture) {
  start();
  http->script = {401};
  send(1);
  auto st = stats();
  BOOST_CHECK_EQUAL(st.dropped, 1u);
  BOOST_CHECK_EQUAL(st.spooled, 0u);
  BOOST_CHECK(!st.backing_off);
  BOOST_CHECK(next_timer() < caf::timespan{0});
  // 429, 503 and 408 are retried; the profile arrives.
  http->script = {429, 503, 408};
  send(2);
  for (int i = 0; i < 3; ++i)
    BOOST_REQUIRE(fire_next_timer());
  st = stats();
  BOOST_CHECK_EQUAL(st.sent, 1u);
  BOOST_CHECK_EQUAL(st.retries, 3u);
  BOOST_CHECK_EQUAL(st.dropped, 1u);
  BOOST_CHECK((uploaded() == std::vector<uint64_t>{2}));
}

BOOST_FIXTURE_TEST_CASE(session_recycled_on_schedule_error_and_pressure,
                        uploader_fixture) {
  auto cfg = config();
  cfg.studio.session_max_uploads = 2;
  start(cfg);
  // Health check + upload 1 fill the first session; 2 + 3 the second.
  send(1);
  send(2);
  send(3);
  BOOST_CHECK_EQUAL(http->resets, 2u);
  BOOST_CHECK_EQUAL(stats().connections_opened, 2u);
  // An error recycles at once.
  http->script = {500};
  send(4);
  BOOST_CHECK_EQUAL(http->resets, 3u);
  // Pressure: normal does nothing, warning recycles.
  pressure_event ev;
  ev.level = pressure_level::normal;
  caf::anon_send(up, pressure_atom_v, ev);
  run();
  BOOST_CHECK_EQUAL(http->resets, 3u);
  ev.level = pressure_level::warning;
  ev.actions_due = 1u << static_cast<unsigned>(pressure_level::warning);
  caf::anon_send(up, pressure_atom_v, ev);
  run();
  BOOST_CHECK_EQUAL(http->resets, 4u);
  BOOST_CHECK_EQUAL(stats().session_recycles, 4u);
}

BOOST_FIXTURE_TEST_CASE(previous_runs_spool_goes_first, uploader_fixture) {
  // What a previous run left in the spool.
  spool = rt::spool::in_memory({}, "studio");
  spool->push(upload::to_spool_record(make_profile(1)));
  spool->push("not a spool record"); // corrupt: dropped, not fatal
  spool->push(upload::to_spool_record(make_profile(2)));
  start();
  send(3);
  BOOST_CHECK((uploaded() == std::vector<uint64_t>{1, 2, 3}));
  auto st = stats();
  BOOST_CHECK_EQUAL(st.sent, 3u);
  BOOST_CHECK_EQUAL(st.dropped, 1u);
  BOOST_CHECK_EQUAL(st.spool_files, 0u);
  // The health check went first.
  BOOST_CHECK(http->calls[0].url.find("/api/v1/health_check")
              != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(write_ahead_the_profile_is_stored_before_it_is_sent,
                        uploader_fixture) {
  // The next sink (the output writer) gets the profile only after it is in
  // the spool, and the spool entry goes only once the backend accepted it.
  auto writer = sys.spawn([this](caf::event_based_actor*) -> caf::behavior {
    return {
        [this](write_atom, const profile& p) {
          seen_by_writer.push_back(p.snapshot_id);
          spool_when_written.push_back(spool->count());
        },
    };
  });
  auto cfg = config();
  cfg.next = caf::actor_cast<profile_sink_actor>(writer);
  http->down = true;
  start(cfg);
  // With the backend down it stays in the spool and still reaches the
  // writer.
  BOOST_CHECK(!send(1)); // an in-memory spool is not durable
  BOOST_CHECK_EQUAL(spool->count(), 1u);
  BOOST_CHECK((seen_by_writer == std::vector<uint64_t>{1}));
  BOOST_CHECK_EQUAL(spool_when_written.at(0), 1u);
  http->down = false;
  BOOST_REQUIRE(fire_next_timer());
  BOOST_CHECK_EQUAL(spool->count(), 0u);
  BOOST_CHECK((uploaded() == std::vector<uint64_t>{1}));
  caf::anon_send_exit(writer, caf::exit_reason::user_shutdown);
  run();
}

BOOST_FIXTURE_TEST_CASE(without_spools_profiles_wait_in_memory,
                        uploader_fixture) {
  uploader_effects fx;
  fx.http = http;
  fx.sender = std::make_shared<gpa::test::inline_work_queue>();
  up = caf::actor_cast<uploader_actor>(
      sys.spawn(uploader, std::move(fx), config()));
  run();
  http->script = {0};
  send(1);
  auto st = stats();
  BOOST_CHECK_EQUAL(st.spooled, 1u);
  BOOST_CHECK_EQUAL(st.spool_files, 1u);
  BOOST_REQUIRE(fire_next_timer());
  BOOST_CHECK((uploaded() == std::vector<uint64_t>{1}));
  BOOST_CHECK_EQUAL(stats().dropped, 0u);
}

BOOST_FIXTURE_TEST_CASE(shutdown_waits_for_the_upload_in_flight_only,
                        uploader_fixture) {
  // An inline sender finishes every send before the shutdown request is
  // read, so the answer comes at once and starts no further upload.
  start();
  http->down = true;
  send(1);
  auto r = request<bool>(up, shutdown_atom_v);
  run();
  BOOST_REQUIRE(r->value);
  BOOST_CHECK(*r->value);
  auto before = http->calls.size();
  // A retry timer that fires now sends nothing: the profile stays stored.
  fire_next_timer();
  BOOST_CHECK_EQUAL(http->calls.size(), before);
  BOOST_CHECK_EQUAL(spool->count(), 1u);
}

BOOST_AUTO_TEST_SUITE_END()

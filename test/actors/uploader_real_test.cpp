// The uploader in a real actor system, detached, with the libcurl client,
// against the test backend (test/upload/server.py) on 127.0.0.1: the
// protocol on the wire, keep-alive, outages and restarts without loss, the
// failure modes, Pyroscope, and no token in the logs.

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <random>

#include <dirent.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "actors/uploader.hpp"
#include "config/version.hpp"
#include "format/time.hpp"
#include "messages/registry.hpp"
#include "runtime/error.hpp"
#include "runtime/process_env.hpp"
#include "test/support/helpers.hpp"
#include "test/support/test_server.hpp"
#include "upload/format.hpp"

using namespace std::chrono_literals;
using namespace gpa;
using gpa::test::make_profile;
using gpa::test::marker_of;
using gpa::test::test_server;
using gpa::test::wait_until;

namespace {

std::string random_token() {
  std::random_device rd;
  char buf[40];
  std::snprintf(buf, sizeof(buf), "tok%08x%08x", rd(), rd());
  return buf;
}

/// One actor system with one detached uploader; stopping it is what an
/// agent restart does to the uploader.
struct running {
  caf::actor_system_config cfg;
  caf::actor_system sys;
  std::shared_ptr<rt::http_client> http;
  uploader_actor up;

  running(uploader_config ucfg, std::shared_ptr<rt::spool> spool,
          rt::http_client_options hopts,
          std::shared_ptr<rt::spool> pyroscope_spool = nullptr)
      : sys(init(cfg)), http(rt::make_curl_http_client(hopts)) {
    uploader_effects fx;
    fx.http = http;
    fx.studio_spool = std::move(spool);
    fx.pyroscope_spool = std::move(pyroscope_spool);
    fx.sender = rt::make_thread_work_queue();
    up = caf::actor_cast<uploader_actor>(
        sys.spawn<caf::detached>(uploader, std::move(fx), std::move(ucfg)));
  }

  ~running() {
    http->interrupt();
    caf::anon_send_exit(up, caf::exit_reason::user_shutdown);
  }

  /// Hands a profile to the uploader and waits until it is stored.
  void send(const profile& p) {
    caf::scoped_actor self{sys};
    self->request(up, 30s, write_atom_v, p)
        .receive([](bool) {},
                 [&](caf::error& err) {
                   BOOST_FAIL("write request failed: " + describe(err));
                 });
  }

  uploader_stats stats() {
    caf::scoped_actor self{sys};
    uploader_stats result;
    self->request(up, 30s, stats_atom_v)
        .receive(
            [&](uploader_stats& x) {
              result = std::move(x);
            },
            [&](caf::error& err) {
              BOOST_FAIL("stats request failed: " + describe(err));
            });
    return result;
  }

  static caf::actor_system_config& init(caf::actor_system_config& cfg) {
    add_message_types(cfg);
    return cfg;
  }
};

struct upload_fixture {
  std::string token = random_token();
  std::string service = "svc-test";
  std::shared_ptr<gpa::test::capture_sink> logged
      = gpa::test::capture_uploader_log();
  test_server server{token, service};
  rt::private_temp_dir temp{"/tmp"};
  std::string spool_dir = temp.path() + "/spool";
  rt::spool_limits limits;

  ~upload_fixture() {
    // Whatever a test did, the token never reached the log.
    BOOST_CHECK(logged->text().find(token) == std::string::npos);
  }

  uploader_config config() {
    agent_options opts;
    opts.upload.enabled = true;
    opts.upload.token = token;
    opts.upload.service_name = service;
    opts.upload.server_host = server.url();
    opts.upload.timeout = 10s;
    auto cfg = make_uploader_config(opts, "test-host", 1714550000000);
    cfg.backoff_initial = 100ms;
    cfg.backoff_max = 800ms;
    return cfg;
  }

  std::shared_ptr<rt::spool> open_spool() {
    auto sp = rt::spool::open(spool_dir, limits);
    BOOST_REQUIRE_MESSAGE(static_cast<bool>(sp),
                          (sp ? std::string{} : describe(sp.error())));
    return *sp;
  }

  std::unique_ptr<running> start(uploader_config cfg) {
    rt::http_client_options hopts;
    hopts.secrets = {token};
    std::shared_ptr<rt::spool> py;
    if (!cfg.studio.pyroscope_url.empty()) {
      // Pyroscope's spool where the agent puts it.
      auto sp = rt::spool::open(spool_dir + "/pyroscope", limits);
      BOOST_REQUIRE_MESSAGE(static_cast<bool>(sp),
                            (sp ? std::string{} : describe(sp.error())));
      py = *sp;
    }
    return std::make_unique<running>(std::move(cfg), open_spool(), hopts, py);
  }

  std::unique_ptr<running> start() {
    return start(config());
  }

  /// The recorded POSTs to /api/v2/profiles (all of them, any status).
  std::vector<const rapidjson::Value*>
  profile_posts(const rapidjson::Document& doc) {
    std::vector<const rapidjson::Value*> result;
    for (auto& r : doc.GetArray())
      if (std::string{r["path"].GetString()} == "/api/v2/profiles")
        result.push_back(&r);
    return result;
  }

  /// Snapshot markers of the accepted uploads, in arrival order.
  std::vector<uint64_t> accepted(const rapidjson::Document& doc) {
    std::vector<uint64_t> result;
    for (auto* r : profile_posts(doc))
      if ((*r)["status"].GetInt() == 200)
        result.push_back(marker_of((*r)["body"]["profile"].GetString()));
    return result;
  }

  /// Snapshot markers of the ingests Pyroscope accepted, in arrival order.
  std::vector<uint64_t> ingested(const rapidjson::Document& doc) {
    std::vector<uint64_t> result;
    for (auto& r : doc.GetArray())
      if (std::string{r["path"].GetString()} == "/ingest"
          && r["status"].GetInt() == 200)
        result.push_back(marker_of(r["body"].GetString()));
    return result;
  }

  /// A configuration that also sends to Pyroscope (the same test server).
  uploader_config config_with_pyroscope() {
    auto cfg = config();
    cfg.studio.pyroscope_url = server.url();
    cfg.studio.pyroscope_app = "myapp.cpu";
    cfg.studio.sample_rate_hz = 11;
    return cfg;
  }

  static std::vector<std::string> errors_of(const rapidjson::Value& r) {
    std::vector<std::string> result;
    for (auto& e : r["errors"].GetArray())
      result.emplace_back(e.GetString());
    return result;
  }
};

std::string str(const rapidjson::Value& v, const char* key) {
  return v.HasMember(key) && v[key].IsString() ? v[key].GetString() : "";
}

} // namespace

BOOST_AUTO_TEST_SUITE(uploader_real)

BOOST_FIXTURE_TEST_CASE(protocol_is_gprofilers_and_gpid_carries_over,
                        upload_fixture) {
  auto up = start();
  for (uint64_t i = 1; i <= 3; ++i)
    up->send(make_profile(i));
  BOOST_REQUIRE(wait_until([&] {
    return up->stats().sent == 3;
  }));
  auto doc = server.requests();
  auto& all = *doc;
  // The health check comes first, with the key and service.
  BOOST_REQUIRE(all.Size() >= 4);
  BOOST_CHECK_EQUAL(str(all[0], "path"), "/api/v1/health_check");
  BOOST_CHECK_EQUAL(all[0]["status"].GetInt(), 200);
  BOOST_CHECK(errors_of(all[0]).empty());
  auto posts = profile_posts(all);
  BOOST_REQUIRE_EQUAL(posts.size(), 3u);
  std::string previous_gpid;
  for (size_t i = 0; i < posts.size(); ++i) {
    auto& r = *posts[i];
    auto errs = errors_of(r);
    BOOST_CHECK_MESSAGE(errs.empty(),
                        "server found: " + (errs.empty() ? "" : errs[0]));
    BOOST_CHECK_EQUAL(r["status"].GetInt(), 200);
    auto& q = r["query"];
    BOOST_CHECK_EQUAL(str(q, "key"), token);
    BOOST_CHECK_EQUAL(str(q, "service"), service);
    BOOST_CHECK_EQUAL(str(q, "hostname"), "test-host");
    BOOST_CHECK_EQUAL(str(q, "version"), agent_version);
    auto& h = r["headers"];
    BOOST_CHECK_EQUAL(str(h, "gprofiler-api-key"), token);
    BOOST_CHECK_EQUAL(str(h, "gprofiler-service-name"), service);
    BOOST_CHECK_EQUAL(str(h, "content-encoding"), "gzip");
    BOOST_CHECK_EQUAL(str(h, "content-type"), "application/json");
    BOOST_CHECK_EQUAL(std::stoll(str(h, "content-length")),
                      r["body_bytes"].GetInt64());
    BOOST_CHECK(!h.HasMember("expect"));
    auto& b = r["body"];
    auto p = make_profile(i + 1);
    BOOST_CHECK_EQUAL(str(b, "profile"), p.col);
    BOOST_CHECK_EQUAL(
        str(b, "start_time"),
        format::iso8601(p.start_ms, format::time_precision::seconds));
    BOOST_CHECK_EQUAL(
        str(b, "end_time"),
        format::iso8601(p.end_ms, format::time_precision::seconds));
    BOOST_CHECK_EQUAL(str(b, "spawn_time"), "2024-05-01T07:53:20");
    BOOST_CHECK_EQUAL(str(b, "hostname"), "test-host");
    BOOST_CHECK_EQUAL(b["cpu_avg"].GetDouble(), 12.5);
    BOOST_CHECK_EQUAL(b["mem_avg"].GetDouble(), 40.25);
    // The first upload has no gpid; each next one carries the last answer.
    BOOST_CHECK_EQUAL(str(b, "gpid"), previous_gpid);
    previous_gpid = std::to_string(r["gpid_out"].GetInt64());
  }
  BOOST_CHECK_EQUAL(up->stats().gpid, previous_gpid);
}

BOOST_FIXTURE_TEST_CASE(one_connection_is_reused_then_recycled_on_schedule,
                        upload_fixture) {
  auto cfg = config();
  cfg.studio.session_max_uploads = 3;
  auto up = start(cfg);
  for (uint64_t i = 1; i <= 5; ++i)
    up->send(make_profile(i));
  BOOST_REQUIRE(wait_until([&] {
    return up->stats().sent == 5;
  }));
  auto doc = server.requests();
  // Health check + 2 uploads on the first connection, 3 on the second.
  std::vector<int64_t> conns;
  for (auto& r : doc->GetArray())
    conns.push_back(r["conn"].GetInt64());
  BOOST_REQUIRE_EQUAL(conns.size(), 6u);
  BOOST_CHECK(conns[0] == conns[1] && conns[1] == conns[2]);
  BOOST_CHECK(conns[3] != conns[2]);
  BOOST_CHECK(conns[3] == conns[4] && conns[4] == conns[5]);
  auto st = up->stats();
  BOOST_CHECK_EQUAL(st.connections_opened, 2u);
  BOOST_CHECK_EQUAL(st.session_recycles, 2u);
}

BOOST_FIXTURE_TEST_CASE(backend_down_for_three_snapshots_loses_none,
                        upload_fixture) {
  auto up = start();
  BOOST_REQUIRE(wait_until([&] {
    return server.requests()->Size() == 1;
  }));
  server.down();
  for (uint64_t i = 1; i <= 3; ++i)
    up->send(make_profile(i));
  BOOST_REQUIRE(wait_until([&] {
    return up->stats().spooled == 3;
  }));
  auto st = up->stats();
  BOOST_CHECK_EQUAL(st.sent, 0u);
  BOOST_CHECK_EQUAL(st.spool_files, 3u);
  BOOST_CHECK(st.backing_off);
  // Let it retry against the dead port at least twice.
  BOOST_REQUIRE(wait_until([&] {
    return up->stats().retries >= 3;
  }));
  server.up();
  BOOST_REQUIRE(wait_until([&] {
    return up->stats().sent == 3;
  }));
  BOOST_CHECK((accepted(*server.requests()) == std::vector<uint64_t>{1, 2, 3}));
  st = up->stats();
  BOOST_CHECK_EQUAL(st.spool_files, 0u);
  BOOST_CHECK_EQUAL(st.dropped, 0u);
  BOOST_CHECK(!st.backing_off);
}

BOOST_FIXTURE_TEST_CASE(agent_restart_during_outage_loses_none,
                        upload_fixture) {
  server.down();
  {
    auto first = start();
    first->send(make_profile(1));
    first->send(make_profile(2));
    BOOST_REQUIRE(wait_until([&] {
      return first->stats().spooled == 2;
    }));
  } // the actor system is gone: the agent stopped
  auto sp = open_spool();
  BOOST_REQUIRE_EQUAL(sp->count(), 2u);
  sp.reset();
  auto second = start();
  second->send(make_profile(3));
  BOOST_REQUIRE(wait_until([&] {
    return second->stats().spooled >= 1;
  }));
  server.up();
  BOOST_REQUIRE(wait_until([&] {
    return second->stats().sent == 3;
  }));
  BOOST_CHECK((accepted(*server.requests()) == std::vector<uint64_t>{1, 2, 3}));
  BOOST_CHECK_EQUAL(open_spool()->count(), 0u);
}

BOOST_FIXTURE_TEST_CASE(pyroscope_outage_with_restart_loses_none,
                        upload_fixture) {
  // Both backends down; the agent stops after two profiles and starts
  // again; the third comes; the backends return. Each backend gets all
  // three, in order, once.
  server.down();
  {
    auto first = start(config_with_pyroscope());
    first->send(make_profile(1));
    first->send(make_profile(2));
    BOOST_REQUIRE(wait_until([&] {
      auto st = first->stats();
      return st.spooled == 2 && st.pyroscope_spooled == 2;
    }));
  }
  auto second = start(config_with_pyroscope());
  second->send(make_profile(3));
  BOOST_REQUIRE(wait_until([&] {
    return second->stats().pyroscope_spooled >= 1;
  }));
  server.up();
  BOOST_REQUIRE(wait_until([&] {
    auto st = second->stats();
    return st.sent == 3 && st.pyroscope_sent == 3;
  }));
  auto doc = server.requests();
  BOOST_CHECK((accepted(*doc) == std::vector<uint64_t>{1, 2, 3}));
  BOOST_CHECK((ingested(*doc) == std::vector<uint64_t>{1, 2, 3}));
  auto st = second->stats();
  BOOST_CHECK_EQUAL(st.pyroscope_spool_files, 0u);
  BOOST_CHECK_EQUAL(st.pyroscope_dropped, 0u);
  BOOST_CHECK_EQUAL(st.spool_files, 0u);
}

BOOST_FIXTURE_TEST_CASE(server_error_500_is_retried, upload_fixture) {
  server.faults({"500"});
  auto up = start();
  up->send(make_profile(1));
  BOOST_REQUIRE(wait_until([&] {
    return up->stats().sent == 1;
  }));
  auto doc = server.requests();
  auto posts = profile_posts(*doc);
  BOOST_REQUIRE_EQUAL(posts.size(), 2u);
  BOOST_CHECK_EQUAL((*posts[0])["status"].GetInt(), 500);
  BOOST_CHECK_EQUAL((*posts[1])["status"].GetInt(), 200);
  auto st = up->stats();
  BOOST_CHECK_EQUAL(st.failed, 1u);
  BOOST_CHECK_EQUAL(st.retries, 1u);
  BOOST_CHECK_EQUAL(st.spooled, 1u);
  BOOST_CHECK_EQUAL(st.dropped, 0u);
}

BOOST_FIXTURE_TEST_CASE(too_slow_is_a_timeout_and_retried, upload_fixture) {
  // The server sits on the first upload for 5 s; the client gives up after
  // 1.5 s, spools it, and the retry goes through.
  server.configure(4 << 20, 5.0);
  server.faults({"slow"});
  auto cfg = config();
  cfg.studio.timeout = 1500ms;
  auto up = start(cfg);
  up->send(make_profile(1));
  BOOST_REQUIRE(wait_until([&] {
    return up->stats().sent == 1;
  }));
  auto posts = profile_posts(*server.requests());
  BOOST_REQUIRE(posts.size() >= 2u);
  BOOST_CHECK_EQUAL(str(*posts[0], "fault"), "slow");
  BOOST_CHECK_EQUAL((*posts.back())["status"].GetInt(), 200);
  BOOST_CHECK((accepted(*server.requests()) == std::vector<uint64_t>{1}));
  BOOST_CHECK(logged->text().find("timed out") != std::string::npos);
  auto st = up->stats();
  BOOST_CHECK(st.failed >= 1u);
  BOOST_CHECK_EQUAL(st.failed, posts.size() - 1);
}

BOOST_FIXTURE_TEST_CASE(connection_reset_is_retried, upload_fixture) {
  server.faults({"reset"});
  // No health check: the upload opens a fresh connection. (On a reused
  // connection that dies before any answer, libcurl itself re-sends the
  // request once on a new one, and the failure never reaches the uploader.)
  auto cfg = config();
  cfg.health_check = false;
  auto up = start(cfg);
  up->send(make_profile(1));
  BOOST_REQUIRE(wait_until([&] {
    return up->stats().sent == 1;
  }));
  auto posts = profile_posts(*server.requests());
  BOOST_REQUIRE_EQUAL(posts.size(), 2u);
  BOOST_CHECK_EQUAL(str(*posts[0], "fault"), "reset");
  BOOST_CHECK_EQUAL((*posts[1])["status"].GetInt(), 200);
  // The reset connection is not reused.
  BOOST_CHECK((*posts[0])["conn"].GetInt() != (*posts[1])["conn"].GetInt());
  BOOST_CHECK_EQUAL(up->stats().failed, 1u);
}

BOOST_FIXTURE_TEST_CASE(http_400_is_permanent_and_dropped, upload_fixture) {
  server.faults({"400"});
  auto up = start();
  up->send(make_profile(1));
  up->send(make_profile(2));
  BOOST_REQUIRE(wait_until([&] {
    return up->stats().sent == 1;
  }));
  auto st = up->stats();
  BOOST_CHECK_EQUAL(st.dropped, 1u);
  BOOST_CHECK_EQUAL(st.retries, 0u);
  BOOST_CHECK_EQUAL(st.spooled, 0u);
  BOOST_CHECK((accepted(*server.requests()) == std::vector<uint64_t>{2}));
  auto text = logged->text();
  BOOST_CHECK(text.find("refused for good") != std::string::npos);
  // The server echoed the key in its message: it is redacted in the log.
  BOOST_CHECK(text.find("invalid key ***") != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(http_413_folds_small_stacks_until_it_fits,
                        upload_fixture) {
  // A profile of many distinct stacks that compress badly: about 1 MB of
  // text, ~400 KB gzipped; the server takes at most 150 KB.
  server.configure(150000, 3.0);
  std::mt19937_64 rng{42};
  profile p = make_profile(1);
  uint64_t total = 7;
  for (int i = 0; i < 15000; ++i) {
    char line[128];
    auto count = 1 + rng() % 50;
    std::snprintf(line, sizeof(line), "%s;proc%d;f%016llx;g%016llx %llu\n",
                  i % 3 == 0 ? "" : "web", i % 5,
                  static_cast<unsigned long long>(rng()),
                  static_cast<unsigned long long>(rng()),
                  static_cast<unsigned long long>(count));
    p.col += line;
    total += count;
  }
  auto up = start();
  up->send(p);
  BOOST_REQUIRE(wait_until([&] {
    return up->stats().sent == 1;
  }));
  auto st = up->stats();
  BOOST_CHECK_EQUAL(st.folded, 1u);
  BOOST_CHECK_EQUAL(st.dropped, 0u);
  BOOST_CHECK(st.failed >= 1u); // at least one 413 taught it the limit
  auto doc = server.requests();
  auto posts = profile_posts(*doc);
  BOOST_REQUIRE(!posts.empty());
  auto& last = *posts.back();
  BOOST_REQUIRE_EQUAL(last["status"].GetInt(), 200);
  BOOST_CHECK(last["body_bytes"].GetInt64() <= 150000);
  for (size_t i = 0; i + 1 < posts.size(); ++i)
    BOOST_CHECK_EQUAL((*posts[i])["status"].GetInt(), 413);
  // Every sample is still there.
  std::string sent = last["body"]["profile"].GetString();
  uint64_t sum = 0;
  size_t pos = sent.find('\n') + 1;
  while (pos < sent.size()) {
    auto nl = sent.find('\n', pos);
    auto line = sent.substr(pos, nl - pos);
    sum += std::stoull(line.substr(line.rfind(' ') + 1));
    pos = nl + 1;
  }
  BOOST_CHECK_EQUAL(sum, total);
  BOOST_CHECK(sent.find(";proc1;[other] ") != std::string::npos);
  BOOST_CHECK(logged->text().find("folded") != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(http_413_below_the_floor_drops, upload_fixture) {
  server.configure(100, 3.0); // nothing fits
  auto up = start();
  up->send(make_profile(1));
  BOOST_REQUIRE(wait_until([&] {
    return up->stats().dropped == 1;
  }));
  auto st = up->stats();
  BOOST_CHECK_EQUAL(st.sent, 0u);
  BOOST_CHECK_EQUAL(st.spooled, 0u);
  BOOST_CHECK(logged->text().find("floor") != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(pyroscope_ingest_request, upload_fixture) {
  auto cfg = config();
  cfg.studio.pyroscope_url = server.url();
  cfg.studio.pyroscope_app = "myapp.cpu";
  cfg.studio.pyroscope_tags = "env=test,region=eu";
  cfg.studio.sample_rate_hz = 99;
  auto up = start(cfg);
  auto p = make_profile(7);
  up->send(p);
  BOOST_REQUIRE(wait_until([&] {
    auto st = up->stats();
    return st.sent == 1 && st.pyroscope_sent == 1;
  }));
  auto doc = server.requests();
  const rapidjson::Value* ingest = nullptr;
  for (auto& r : doc->GetArray())
    if (str(r, "path") == "/ingest")
      ingest = &r;
  BOOST_REQUIRE(ingest != nullptr);
  BOOST_CHECK(errors_of(*ingest).empty());
  auto& q = (*ingest)["query"];
  BOOST_CHECK_EQUAL(str(q, "name"), "myapp.cpu{env=test,region=eu}");
  BOOST_CHECK_EQUAL(str(q, "from"), std::to_string(p.start_ms / 1000));
  BOOST_CHECK_EQUAL(str(q, "until"), std::to_string(p.end_ms / 1000));
  BOOST_CHECK_EQUAL(str(q, "format"), "folded");
  BOOST_CHECK_EQUAL(str(q, "sampleRate"), "99");
  BOOST_CHECK_EQUAL(str(*ingest, "body"),
                    "app;main;snap_7 5\nnginx;ngx_worker;epoll_wait_[k] 2\n");
  // Pyroscope gets no Performance Studio secrets.
  BOOST_CHECK(!(*ingest)["headers"].HasMember("gprofiler-api-key"));
  BOOST_CHECK(!q.HasMember("key"));
}

BOOST_FIXTURE_TEST_CASE(token_never_logged_nor_in_spool_names, upload_fixture) {
  auto cfg = config();
  cfg.studio.timeout = 1000ms;
  server.configure(4 << 20, 2.0);
  server.down();
  auto up = start(cfg);
  up->send(make_profile(1));
  BOOST_REQUIRE(wait_until([&] {
    return up->stats().retries >= 2;
  }));
  // Spool file names are sequence numbers only.
  DIR* d = opendir(spool_dir.c_str());
  BOOST_REQUIRE(d != nullptr);
  while (auto* ent = readdir(d))
    BOOST_CHECK(std::string{ent->d_name}.find(token) == std::string::npos);
  closedir(d);
  server.faults({"500", "reset", "slow", "400"});
  server.up();
  up->send(make_profile(2));
  BOOST_REQUIRE(wait_until([&] {
    auto st = up->stats();
    return st.sent + st.dropped == 2;
  }));
  auto text = logged->text();
  BOOST_CHECK(text.find("cannot connect") != std::string::npos);
  BOOST_CHECK(text.find("HTTP 500") != std::string::npos);
  BOOST_CHECK(text.find("refused for good") != std::string::npos);
  BOOST_CHECK(text.find(token) == std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

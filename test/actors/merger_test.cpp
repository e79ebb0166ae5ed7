// The merger alone, on the deterministic scheduler: a snapshot's parts in,
// one profile out to the uploader (which stores it first) or, without
// uploads, to the output writer; the window's metrics from the monitor, or
// null without one.

#include <boost/test/unit_test.hpp>

#include <caf/send.hpp>

#include "actors/merger.hpp"
#include "test/support/fixture.hpp"

using namespace gpa;

namespace {

struct sink_log {
  std::vector<profile> profiles;
};

profile_sink_actor::behavior_type
recording_writer(profile_sink_actor::pointer, std::shared_ptr<sink_log> l) {
  return {
      [l](write_atom, profile& p) {
        l->profiles.push_back(std::move(p));
      },
  };
}

uploader_actor::behavior_type recording_uploader(uploader_actor::pointer,
                                                 std::shared_ptr<sink_log> l) {
  return {
      [l](write_atom, profile& p) {
        l->profiles.push_back(std::move(p));
        return true;
      },
      [](pressure_atom, const pressure_event&) {},
      [](shutdown_atom) {
        return true;
      },
      [](stats_atom) {
        return uploader_stats{};
      },
  };
}

/// A monitor that answers every window with 25 % CPU and 50 % memory and
/// counts the windows it was asked for.
memory_monitor_actor::behavior_type
counting_monitor(memory_monitor_actor::pointer, std::shared_ptr<int> asked) {
  return {
      [](subscribe_atom, pressure_listener_actor) {},
      [](subscribe_atom, sample_listener_actor) {},
      [](sample_atom) {
        return resource_sample{};
      },
      [asked](window_atom) {
        ++*asked;
        window_stats w;
        w.cpu_avg = 25;
        w.mem_avg = 50;
        return w;
      },
  };
}

merge_job job() {
  merge_job j;
  j.snapshot_id = 7;
  j.start_ms = 1714557600000;
  j.end_ms = 1714557660000;
  profile_part perf;
  perf.profiler = "perf";
  perf.processes.push_back({10, "java", "", {{"java;[unknown]", 6}}});
  perf.processes.push_back({11, "nginx", "", {{"nginx;epoll_wait_[k]", 2}}});
  perf.processes.push_back({12, "jsvc", "", {{"jsvc;main", 1}}});
  profile_part java;
  java.profiler = "java";
  java.processes.push_back({10, "java", "", {{"java;Main.run", 1}}});
  java.errors.push_back({12, "jsvc", "timed out", "jattach hung"});
  j.parts = {perf, java};
  return j;
}

struct merger_fixture : gpa::test::sim_fixture {
  std::shared_ptr<sink_log> written = std::make_shared<sink_log>();
  std::shared_ptr<sink_log> uploaded = std::make_shared<sink_log>();

  merge_summary merge(merger_config cfg) {
    cfg.header.host.hostname = "sim-host";
    cfg.header.agent_version = "0.1.0";
    auto m = sys.spawn(merger, cfg);
    auto r = request<merge_summary>(m, merge_atom_v, job());
    run();
    BOOST_REQUIRE(r->value);
    caf::anon_send_exit(m, caf::exit_reason::user_shutdown);
    run();
    return *r->value;
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(merger_sim)

BOOST_FIXTURE_TEST_CASE(runtime_stacks_replace_perfs_and_errors_stay,
                        merger_fixture) {
  merger_config cfg;
  cfg.writer = sys.spawn(recording_writer, written);
  auto summary = merge(cfg);
  BOOST_REQUIRE_EQUAL(written->profiles.size(), 1u);
  auto& p = written->profiles[0];
  BOOST_CHECK_EQUAL(p.snapshot_id, 7u);
  BOOST_CHECK_EQUAL(summary.snapshot_id, 7u);
  // java's one runtime sample is scaled to perf's 6; nginx keeps perf's 2;
  // jsvc keeps perf's sample, under the error frame.
  BOOST_CHECK_EQUAL(p.total_samples, 9u);
  BOOST_CHECK(p.col.rfind("# {", 0) == 0);
  BOOST_CHECK(p.col.find("\n0;;java;Main.run 6\n") != std::string::npos);
  BOOST_CHECK(p.col.find("[unknown]") == std::string::npos);
  BOOST_CHECK(p.col.find("\n0;;nginx;epoll_wait_[k] 2\n") != std::string::npos);
  // The error goes onto perf's stacks of the process, as gProfiler does.
  BOOST_CHECK(p.col.find("jsvc;[Profiling timed out: jattach hung];main 1")
              != std::string::npos);
  // No monitor: the window's metrics are unknown (null), not made up.
  BOOST_CHECK(p.col.find("\"cpu_avg\":null") != std::string::npos);
  BOOST_CHECK(p.cpu_avg < 0);
}

BOOST_FIXTURE_TEST_CASE(with_uploads_the_uploader_gets_it_first,
                        merger_fixture) {
  merger_config cfg;
  cfg.uploader = sys.spawn(recording_uploader, uploaded);
  cfg.writer = sys.spawn(recording_writer, written);
  merge(cfg);
  // The uploader stores it and hands it on to the writer itself: the merger
  // does not send it to the writer.
  BOOST_CHECK_EQUAL(uploaded->profiles.size(), 1u);
  BOOST_CHECK_EQUAL(written->profiles.size(), 0u);
}

BOOST_FIXTURE_TEST_CASE(metrics_from_the_monitor_unless_disabled,
                        merger_fixture) {
  auto asked = std::make_shared<int>(0);
  merger_config cfg;
  cfg.writer = sys.spawn(recording_writer, written);
  cfg.monitor = sys.spawn(counting_monitor, asked);
  merge(cfg);
  BOOST_CHECK_EQUAL(*asked, 1);
  BOOST_REQUIRE_EQUAL(written->profiles.size(), 1u);
  BOOST_CHECK_EQUAL(written->profiles[0].cpu_avg, 25);
  BOOST_CHECK(written->profiles[0].col.find(R"("metrics":{"cpu_avg":25.0,)")
              != std::string::npos);
  // --disable-metrics-collection: the monitor is not asked; null metrics
  // in the header and the profile (the upload sends null).
  cfg.collect_metrics = false;
  merge(cfg);
  BOOST_CHECK_EQUAL(*asked, 1);
  BOOST_REQUIRE_EQUAL(written->profiles.size(), 2u);
  auto& p = written->profiles[1];
  BOOST_CHECK(p.cpu_avg < 0 && p.mem_avg < 0);
  BOOST_CHECK(p.col.find(R"("metrics":{"cpu_avg":null,"mem_avg":null})")
              != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(cloud_metadata_as_it_is_when_the_profile_is_made,
                        merger_fixture) {
  auto cloud = std::make_shared<format::cloud_metadata>();
  merger_config cfg;
  cfg.writer = sys.spawn(recording_writer, written);
  cfg.cloud = [cloud] {
    return *cloud;
  };
  auto m = sys.spawn(merger, cfg);
  request<merge_summary>(m, merge_atom_v, job());
  run();
  cloud->provider = "gcp";
  cloud->info_json = R"({"zone":"us-central1-a"})";
  request<merge_summary>(m, merge_atom_v, job());
  run();
  caf::anon_send_exit(m, caf::exit_reason::user_shutdown);
  run();
  BOOST_REQUIRE_EQUAL(written->profiles.size(), 2u);
  auto& before = written->profiles[0].col;
  auto& after = written->profiles[1].col;
  BOOST_CHECK(before.find(R"("cloud_provider":"unknown")")
              != std::string::npos);
  BOOST_CHECK(before.find("cloud_info") == std::string::npos);
  BOOST_CHECK(after.find(R"("cloud_provider":"gcp")") != std::string::npos);
  BOOST_CHECK(after.find(R"("cloud_info":{"zone":"us-central1-a"})")
              != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

// The merger's enricher (runtime/process_enricher.*): looks each process up
// once, tells a reused pid apart by its start time, collects the container
// names of a snapshot and forgets processes that are gone.

#include <boost/test/unit_test.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/process_enricher.hpp"
#include "test/support/fake_proc.hpp"

using gpa::rt::enricher_parts;
using gpa::rt::make_process_enricher;

namespace {

struct counted_parts {
  std::map<int32_t, int> container_calls;
  std::map<int32_t, std::string> containers;

  enricher_parts parts(bool with_metadata = true) {
    enricher_parts p;
    p.container_name = [this](int32_t pid) {
      ++container_calls[pid];
      auto i = containers.find(pid);
      return i == containers.end() ? std::string{} : i->second;
    };
    p.app_id = [](int32_t pid) {
      return "app-" + std::to_string(pid);
    };
    if (with_metadata)
      p.app_metadata_json = [](int32_t pid) {
        return "{\"pid\": " + std::to_string(pid) + "}";
      };
    return p;
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(enricher)

BOOST_AUTO_TEST_CASE(looks_each_process_up_once_across_snapshots) {
  counted_parts c;
  c.containers[10] = "web";
  auto proc = std::make_unique<gpa::test::fake_proc>();
  proc->add(10, 1, 100);
  auto e = make_process_enricher(c.parts(), std::move(proc));
  for (int snapshot = 0; snapshot < 3; ++snapshot) {
    auto d = e->details(10);
    BOOST_CHECK_EQUAL(d.container, "web");
    BOOST_CHECK_EQUAL(d.appid, "app-10");
    BOOST_CHECK_EQUAL(d.app_metadata_json, "{\"pid\": 10}");
    e->details(10);
    e->end_snapshot();
  }
  BOOST_CHECK_EQUAL(c.container_calls[10], 1);
}

BOOST_AUTO_TEST_CASE(a_reused_pid_is_looked_up_again) {
  counted_parts c;
  c.containers[10] = "old";
  auto proc = std::make_unique<gpa::test::fake_proc>();
  auto* host = proc.get();
  host->add(10, 1, 100, "a", 500);
  auto e = make_process_enricher(c.parts(), std::move(proc));
  BOOST_CHECK_EQUAL(e->details(10).container, "old");
  // The process exits, another gets its pid.
  host->add(10, 1, 100, "b", 900);
  c.containers[10] = "new";
  BOOST_CHECK_EQUAL(e->details(10).container, "new");
  BOOST_CHECK_EQUAL(c.container_calls[10], 2);
}

BOOST_AUTO_TEST_CASE(a_process_gone_keeps_what_was_found_while_it_ran) {
  counted_parts c;
  c.containers[10] = "web";
  auto proc = std::make_unique<gpa::test::fake_proc>();
  auto* host = proc.get();
  host->add(10, 1, 100);
  auto e = make_process_enricher(c.parts(), std::move(proc));
  e->details(10);
  host->procs.erase(10);
  c.containers.erase(10);
  BOOST_CHECK_EQUAL(e->details(10).container, "web");
  BOOST_CHECK_EQUAL(c.container_calls[10], 1);
}

BOOST_AUTO_TEST_CASE(snapshot_names_are_sorted_distinct_and_reset) {
  counted_parts c;
  c.containers = {{10, "web"}, {11, "db"}, {12, "web"}, {13, ""}};
  auto proc = std::make_unique<gpa::test::fake_proc>();
  for (int32_t pid : {10, 11, 12, 13})
    proc->add(pid, 1, 100);
  auto e = make_process_enricher(c.parts(), std::move(proc));
  for (int32_t pid : {10, 11, 12, 13})
    e->details(pid);
  auto names = e->end_snapshot();
  BOOST_REQUIRE_EQUAL(names.size(), 2u);
  BOOST_CHECK_EQUAL(names[0], "db");
  BOOST_CHECK_EQUAL(names[1], "web");
  e->details(11);
  names = e->end_snapshot();
  BOOST_REQUIRE_EQUAL(names.size(), 1u);
  BOOST_CHECK_EQUAL(names[0], "db");
}

BOOST_AUTO_TEST_CASE(processes_not_seen_for_two_snapshots_leave_the_cache) {
  counted_parts c;
  c.containers = {{10, "web"}, {11, "db"}};
  auto proc = std::make_unique<gpa::test::fake_proc>();
  proc->add(10, 1, 100);
  proc->add(11, 1, 100);
  auto e = make_process_enricher(c.parts(), std::move(proc));
  e->details(10);
  e->details(11);
  e->end_snapshot();
  e->details(11);
  e->end_snapshot();
  e->details(11);
  e->end_snapshot();
  // 10 was last seen two snapshots ago: looked up afresh.
  e->details(10);
  e->details(11);
  BOOST_CHECK_EQUAL(c.container_calls[10], 2);
  BOOST_CHECK_EQUAL(c.container_calls[11], 1);
}

BOOST_AUTO_TEST_CASE(a_missing_container_name_is_asked_again_each_snapshot) {
  // The runtime had not listed the container yet (or did not answer):
  // the next snapshot asks again, once, and keeps the name once found.
  counted_parts c;
  auto proc = std::make_unique<gpa::test::fake_proc>();
  auto* host = proc.get();
  host->add(10, 1, 100);
  auto e = make_process_enricher(c.parts(), std::move(proc));
  BOOST_CHECK_EQUAL(e->details(10).container, "");
  BOOST_CHECK_EQUAL(e->details(10).container, "");
  BOOST_CHECK_EQUAL(c.container_calls[10], 1);
  BOOST_CHECK(e->end_snapshot().empty());
  c.containers[10] = "late";
  BOOST_CHECK_EQUAL(e->details(10).container, "late");
  BOOST_CHECK_EQUAL(e->details(10).container, "late");
  BOOST_CHECK_EQUAL(c.container_calls[10], 2);
  BOOST_CHECK(e->end_snapshot() == std::vector<std::string>{"late"});
  e->details(10);
  e->end_snapshot();
  BOOST_CHECK_EQUAL(c.container_calls[10], 2);
  // A process that is gone is not asked about.
  host->add(11, 1, 100);
  e->details(11);
  e->end_snapshot();
  host->procs.erase(11);
  c.containers[11] = "never";
  BOOST_CHECK_EQUAL(e->details(11).container, "");
  BOOST_CHECK_EQUAL(c.container_calls[11], 1);
}

BOOST_AUTO_TEST_CASE(turned_off_parts_are_not_called) {
  enricher_parts none;
  auto e
      = make_process_enricher(none, std::make_unique<gpa::test::fake_proc>());
  BOOST_CHECK(!e->container_names_enabled());
  BOOST_CHECK(!e->application_metadata_enabled());
  auto d = e->details(10);
  BOOST_CHECK(d.container.empty() && d.appid.empty()
              && d.app_metadata_json.empty());
  counted_parts c;
  auto with = make_process_enricher(c.parts(false),
                                    std::make_unique<gpa::test::fake_proc>());
  BOOST_CHECK(with->container_names_enabled());
  BOOST_CHECK(!with->application_metadata_enabled());
}

BOOST_AUTO_TEST_CASE(runtime_members_go_in_front_and_arrive_late) {
  counted_parts c;
  auto proc = std::make_unique<gpa::test::fake_proc>();
  auto* host = proc.get();
  host->add(10, 1, 100, "java", 500);
  host->add(11, 1, 100, "java", 600);
  auto parts = c.parts();
  int metadata_calls = 0;
  parts.app_metadata_json = [&metadata_calls](int32_t pid) {
    ++metadata_calls;
    return pid == 11 ? std::string{} : "{\"exe\":\"/j\"}";
  };
  auto extras = std::make_shared<gpa::rt::app_metadata_extras>();
  parts.extras = extras;
  auto e = make_process_enricher(std::move(parts), std::move(proc));
  // Nothing from the Java profiler yet: the common members.
  BOOST_CHECK_EQUAL(e->details(10).app_metadata_json, "{\"exe\":\"/j\"}");
  e->end_snapshot();
  // The profiler's members arrive: the cached process gets them, without
  // reading its common metadata again.
  extras->put(10, 500, "\"java_version\":\"17\"");
  BOOST_CHECK_EQUAL(e->details(10).app_metadata_json,
                    "{\"java_version\":\"17\",\"exe\":\"/j\"}");
  BOOST_CHECK_EQUAL(e->details(10).app_metadata_json,
                    "{\"java_version\":\"17\",\"exe\":\"/j\"}");
  extras->put(10, 500, "\"java_version\":\"18\"");
  BOOST_CHECK_EQUAL(e->details(10).app_metadata_json,
                    "{\"java_version\":\"18\",\"exe\":\"/j\"}");
  BOOST_CHECK_EQUAL(metadata_calls, 1);
  // Members of another process with the same pid are not this one's.
  extras->put(10, 499, "\"java_version\":\"old\"");
  BOOST_CHECK_EQUAL(extras->get(10, 500).first, 0u);
  BOOST_CHECK_EQUAL(e->details(10).app_metadata_json, "{\"exe\":\"/j\"}");
  // A process without common metadata gets none.
  extras->put(11, 600, "\"java_version\":\"17\"");
  BOOST_CHECK_EQUAL(e->details(11).app_metadata_json, "");
  // Gone processes leave the extras.
  extras->forget_if([](int32_t pid, uint64_t) {
    return pid == 11;
  });
  BOOST_CHECK_EQUAL(extras->size(), 1u);
}

BOOST_AUTO_TEST_CASE(members_join_any_object) {
  using gpa::rt::with_members;
  BOOST_CHECK_EQUAL(with_members("{}", "\"a\":1"), "{\"a\":1}");
  BOOST_CHECK_EQUAL(with_members("{\"b\":2}", "\"a\":1"), "{\"a\":1,\"b\":2}");
  BOOST_CHECK_EQUAL(with_members("{\"b\":2}", ""), "{\"b\":2}");
  BOOST_CHECK_EQUAL(with_members("", "\"a\":1"), "");
}

BOOST_AUTO_TEST_SUITE_END()

// The output writer's state on an in-memory file system: file names, the
// last_* links, rotation, and errors said once per episode.

#include <boost/test/unit_test.hpp>

#include "actors/output_writer.hpp"
#include "format/col.hpp"
#include "format/time.hpp"
#include "test/support/helpers.hpp"
#include "test/support/sim_world.hpp"

using namespace gpa;
using gpa::test::make_profile;
using gpa::test::occurrences;

namespace {

struct writer_fixture {
  std::shared_ptr<gpa::test::capture_sink> logged
      = gpa::test::capture_log("output");
  std::shared_ptr<gpa::test::fake_fs> fs
      = std::make_shared<gpa::test::fake_fs>();
  writer_state st;

  writer_fixture() {
    st.cfg.opts.dir = "/out";
    st.fs = fs;
    st.log = log::get("output");
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(writer)

BOOST_FIXTURE_TEST_CASE(writes_col_and_page_and_links, writer_fixture) {
  st.cfg.render_page = [](std::string_view col) {
    return "<html>" + std::string{col.substr(0, 3)};
  };
  auto report = st.write(make_profile(1));
  BOOST_CHECK(report.error.empty());
  auto stem = "/out/profile_"
              + format::iso8601(make_profile(1).end_ms,
                                format::time_precision::milliseconds);
  BOOST_CHECK_EQUAL(report.col_path, stem + ".col");
  BOOST_CHECK_EQUAL(fs->files.at(stem + ".col"), make_profile(1).col);
  BOOST_CHECK_EQUAL(fs->files.at(stem + ".html"), "<html># {");
  BOOST_CHECK_EQUAL(fs->files.at("/out/last_profile.col"),
                    "-> " + stem.substr(5) + ".col");
  BOOST_CHECK_EQUAL(st.counts.written, 1u);
}

BOOST_FIXTURE_TEST_CASE(rotation_keeps_the_newest, writer_fixture) {
  st.cfg.opts.rotating = true;
  st.cfg.opts.rotating_keep = 2;
  for (uint64_t i = 1; i <= 5; ++i)
    st.write(make_profile(i));
  auto cols = fs->list("/out", "profile_");
  BOOST_REQUIRE(cols);
  BOOST_REQUIRE_EQUAL(cols->size(), 2u);
  BOOST_CHECK(cols->back().name.find(format::iso8601(
                  make_profile(5).end_ms, format::time_precision::milliseconds))
              != std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(rotation_keeps_only_the_last_by_default,
                        writer_fixture) {
  // gProfiler's --rotating-output: "Keep only the last profile result".
  st.cfg.opts.rotating = true;
  st.cfg.render_page = [](std::string_view) {
    return std::string{"<html>"};
  };
  for (uint64_t i = 1; i <= 3; ++i)
    st.write(make_profile(i));
  auto files = fs->list("/out", "profile_");
  BOOST_REQUIRE(files);
  BOOST_REQUIRE_EQUAL(files->size(), 2u); // the last .col and its .html
  auto stem = "profile_"
              + format::iso8601(make_profile(3).end_ms,
                                format::time_precision::milliseconds);
  for (auto& f : *files)
    BOOST_CHECK_EQUAL(f.name.substr(0, stem.size()), stem);
}

BOOST_FIXTURE_TEST_CASE(an_error_is_logged_once_per_episode, writer_fixture) {
  // A full disk for ten windows: every write names another file, and still
  // one line says so, not ten.
  fs->full = true;
  for (uint64_t i = 1; i <= 10; ++i)
    BOOST_CHECK(!st.write(make_profile(i)).error.empty());
  BOOST_CHECK_EQUAL(st.counts.failed, 10u);
  BOOST_CHECK_EQUAL(occurrences(logged->text(), "cannot write profile"), 1u);
  // It works again: said once, with how many were lost.
  fs->full = false;
  BOOST_CHECK(st.write(make_profile(11)).error.empty());
  BOOST_CHECK_EQUAL(occurrences(logged->text(), "works again (10 profile(s)"),
                    1u);
  // A new episode is a new line.
  fs->full = true;
  st.write(make_profile(12));
  BOOST_CHECK_EQUAL(occurrences(logged->text(), "cannot write profile"), 2u);
}

BOOST_AUTO_TEST_SUITE_END()

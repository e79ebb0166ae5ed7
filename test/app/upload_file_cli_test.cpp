// `gprofiler-agent upload-file --file-path FILE` as a user runs it: the real
// binary against the test backend. Exit 0 and one line on success; exit 1
// and a message that says what failed otherwise.

#include <boost/test/unit_test.hpp>

#include <fstream>

#include "runtime/process_env.hpp"
#include "test/support/helpers.hpp"
#include "test/support/test_server.hpp"

#ifndef GPA_AGENT_BIN
#  error "GPA_AGENT_BIN must name the gprofiler-agent executable"
#endif

using gpa::test::run_output;
using gpa::test::run_process;
using gpa::test::test_server;

namespace {

struct cli_fixture {
  std::string token = "cli-secret-token-123";
  test_server server{token, "svc-cli"};
  gpa::rt::private_temp_dir temp{"/tmp"};

  std::string write(const std::string& name, const std::string& text) {
    auto path = temp.path() + "/" + name;
    std::ofstream{path} << text;
    return path;
  }

  run_output upload(const std::string& file) {
    return run_process({GPA_AGENT_BIN, "upload-file", "--file-path", file,
                        "--token", token, "--service-name", "svc-cli",
                        "--server-host", server.url(), "--log-file",
                        temp.path() + "/agent.log"});
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(upload_file_cli)

BOOST_FIXTURE_TEST_CASE(uploads_a_col_file_and_exits_0, cli_fixture) {
  auto col = gpa::test::col_header();
  // gProfiler's upload-file takes the window from the header when present.
  col.insert(col.find("\"profiling_mode\""),
             "\"start_time\": \"2024-05-01T10:00:00\", \"end_time\": "
             "\"2024-05-01T10:01:00\", ");
  col += ";python;main;work_[p] 7\n";
  auto out = upload(write("p.col", col));
  BOOST_CHECK_EQUAL(out.status, 0);
  BOOST_CHECK(out.out.find("uploaded ") != std::string::npos);
  BOOST_CHECK(out.out.find("gpid 1001") != std::string::npos);
  auto doc = server.requests();
  BOOST_REQUIRE_EQUAL(doc->Size(), 2u);
  auto& post = (*doc)[1];
  BOOST_CHECK_EQUAL(post["status"].GetInt(), 200);
  BOOST_CHECK(post["errors"].Empty());
  BOOST_CHECK_EQUAL(std::string{post["body"]["profile"].GetString()}, col);
  BOOST_CHECK_EQUAL(std::string{post["body"]["start_time"].GetString()},
                    "2024-05-01T10:00:00");
  BOOST_CHECK_EQUAL(post["body"]["cpu_avg"].GetDouble(), 1.5);
  BOOST_CHECK(out.err.find(token) == std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(server_down_exits_1_with_a_reason, cli_fixture) {
  server.down();
  auto out = upload(write("p.col", gpa::test::col_header() + ";a;b 1\n"));
  BOOST_CHECK_EQUAL(out.status, 1);
  BOOST_CHECK(out.err.find("upload of ") != std::string::npos);
  BOOST_CHECK(out.err.find("cannot connect") != std::string::npos);
  BOOST_CHECK(out.err.find(token) == std::string::npos);
  BOOST_CHECK(out.out.empty());
}

BOOST_FIXTURE_TEST_CASE(rejected_profile_exits_1, cli_fixture) {
  server.faults({"400"});
  auto out = upload(write("p.col", gpa::test::col_header() + ";a;b 1\n"));
  BOOST_CHECK_EQUAL(out.status, 1);
  BOOST_CHECK(out.err.find("HTTP 400") != std::string::npos);
  // The server echoed the key; the message shows it redacted.
  BOOST_CHECK(out.err.find(token) == std::string::npos);
}

BOOST_FIXTURE_TEST_CASE(not_a_col_file_exits_1_without_sending, cli_fixture) {
  auto out = upload(write("x.txt", "hello\n"));
  BOOST_CHECK_EQUAL(out.status, 1);
  BOOST_CHECK(out.err.find("is not a .col profile") != std::string::npos);
  auto missing = upload(temp.path() + "/missing.col");
  BOOST_CHECK_EQUAL(missing.status, 1);
  BOOST_CHECK(missing.err.find("cannot read") != std::string::npos);
  BOOST_CHECK_EQUAL(server.requests()->Size(), 0u);
}

BOOST_AUTO_TEST_SUITE_END()

// The configuration: defaults, each source overriding the one below it,
// and clear errors for every kind of mistake.

#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "config/checks.hpp"
#include "config/ini_file.hpp"
#include "config/load.hpp"
#include "config/option_table.hpp"

using gpa::config::config_error;
using gpa::config::invocation;
using env_map = std::map<std::string, std::string>;

namespace {

/// A config file in /tmp that is removed afterwards.
struct temp_file {
  std::string path;
  /// A file holding `content`, its name ending in `suffix` (".json": read
  /// as JSON whatever it holds).
  explicit temp_file(const std::string& content,
                     const std::string& suffix = "") {
    std::string name = "/tmp/gpa-config-XXXXXX" + suffix;
    int fd = ::mkstemps(name.data(), static_cast<int>(suffix.size()));
    BOOST_REQUIRE(fd >= 0);
    path = name;
    auto n = ::write(fd, content.data(), content.size());
    BOOST_REQUIRE_EQUAL(n, static_cast<ssize_t>(content.size()));
    ::close(fd);
  }
  ~temp_file() {
    std::remove(path.c_str());
  }
};

/// The limit the last read was given.
uint64_t last_read_limit = 0;

/// Stands in for main's bounded reader (rt::read_input_file, tested in
/// test/runtime and end to end in test/app/cli_test.py): reads the whole
/// file, remembers the limit it was given.
std::string read_file(const std::string& path, uint64_t max_bytes) {
  last_read_limit = max_bytes;
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw config_error("config file " + path + ": cannot read it");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

invocation parse(std::vector<std::string> args, env_map env = {}) {
  return gpa::config::parse(args, env, read_file);
}

/// The message of the config_error that `f` throws.
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const config_error& err) {
    return err.what();
  }
  BOOST_FAIL("expected a config_error");
  return {};
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

} // namespace

BOOST_AUTO_TEST_SUITE(config)

BOOST_AUTO_TEST_CASE(defaults_are_gprofilers) {
  auto inv = parse({});
  auto& o = inv.options;
  BOOST_CHECK_EQUAL(o.scheduler.duration.count(), 60);
  BOOST_CHECK_EQUAL(o.scheduler.frequency, 11);
  BOOST_CHECK(!o.scheduler.continuous);
  BOOST_CHECK_EQUAL(o.upload.server_host, "https://profiler.granulate.io");
  BOOST_CHECK_EQUAL(o.upload.timeout.count(), 120);
  BOOST_CHECK_EQUAL(o.perf.mode, "fp");
  BOOST_CHECK_EQUAL(o.log.file, "/var/log/gprofiler/gprofiler.log");
  BOOST_CHECK_EQUAL(o.log.rotate_max_size, 5 << 20);
  BOOST_CHECK_EQUAL(o.log.rotate_backup_count, 1);
  BOOST_CHECK_EQUAL(o.process.pid_file, "/var/run/gprofiler.pid");
}

BOOST_AUTO_TEST_CASE(flags_long_short_and_combined) {
  auto inv = parse({"-cd", "5", "--profiling-frequency=99", "-o", "/tmp/out",
                    "--pids", "12,34", "-v", "--no-java",
                    "--log-rotate-max-size", "2MB"});
  auto& o = inv.options;
  BOOST_CHECK(o.scheduler.continuous);
  BOOST_CHECK_EQUAL(o.scheduler.duration.count(), 5);
  BOOST_CHECK_EQUAL(o.scheduler.frequency, 99);
  BOOST_CHECK_EQUAL(o.output.dir, "/tmp/out");
  BOOST_REQUIRE_EQUAL(o.scheduler.pids.size(), 2u);
  BOOST_CHECK_EQUAL(o.scheduler.pids[1], 34);
  BOOST_CHECK(o.log.verbose);
  BOOST_CHECK_EQUAL(o.runtimes.java_mode, "disabled");
  BOOST_CHECK_EQUAL(o.log.rotate_max_size, 2 << 20);
  auto d7 = parse({"-d7"});
  BOOST_CHECK_EQUAL(d7.options.scheduler.duration.count(), 7);
}

BOOST_AUTO_TEST_CASE(each_source_overrides_the_one_below) {
  temp_file file{R"({"profiling_duration": 20, "profiling_frequency": 50,
                     "service_name": "from-file"})"};
  // File over defaults.
  auto a = parse({"--config", file.path});
  BOOST_CHECK_EQUAL(a.options.scheduler.duration.count(), 20);
  BOOST_CHECK_EQUAL(a.options.scheduler.frequency, 50);
  // Environment over file.
  auto b = parse({"--config", file.path},
                 {{"GPROFILER_PROFILING_DURATION", "30"},
                  {"GPROFILER_SERVICE_NAME", "from-env"}});
  BOOST_CHECK_EQUAL(b.options.scheduler.duration.count(), 30);
  BOOST_CHECK_EQUAL(b.options.scheduler.frequency, 50);
  BOOST_CHECK_EQUAL(b.options.upload.service_name, "from-env");
  // Flags over environment.
  auto c = parse({"--config", file.path, "-d", "40"},
                 {{"GPROFILER_PROFILING_DURATION", "30"}});
  BOOST_CHECK_EQUAL(c.options.scheduler.duration.count(), 40);
  // The file can come from the environment, too.
  auto d = parse({}, {{"GPROFILER_CONFIG", file.path}});
  BOOST_CHECK_EQUAL(d.options.scheduler.duration.count(), 20);
}

BOOST_AUTO_TEST_CASE(alias_flags_work_from_the_environment) {
  auto inv = parse(
      {}, {{"GPROFILER_NO_PERF", "true"}, {"GPROFILER_NO_PYTHON", "0"}});
  BOOST_CHECK_EQUAL(inv.options.perf.mode, "disabled");
  BOOST_CHECK_EQUAL(inv.options.runtimes.python_mode, "auto");
}

BOOST_AUTO_TEST_CASE(command_line_mistakes_name_the_flag) {
  BOOST_CHECK(contains(error_of([] {
                         parse({"--profiling-duratio", "5"});
                       }),
                       "did you mean --profiling-duration"));
  BOOST_CHECK(contains(error_of([] {
                         parse({"-d", "abc"});
                       }),
                       "-d: 'abc' must be"));
  BOOST_CHECK(contains(error_of([] {
                         parse({"-d", "0"});
                       }),
                       "must be >= 1"));
  BOOST_CHECK(contains(error_of([] {
                         parse({"--perf-mode", "lbr"});
                       }),
                       "must be one of fp dwarf smart disabled"));
  BOOST_CHECK(contains(error_of([] {
                         parse({"--output-dir"});
                       }),
                       "needs a value"));
  BOOST_CHECK(contains(error_of([] {
                         parse({"-x"});
                       }),
                       "unknown option -x"));
  BOOST_CHECK(contains(error_of([] {
                         parse({"--pids", "1,x"});
                       }),
                       "comma-separated"));
}

BOOST_AUTO_TEST_CASE(environment_mistakes_name_the_variable_not_the_secret) {
  auto msg = error_of([] {
    parse({}, {{"GPROFILER_PROFILING_FREQUENCY", "fast"}});
  });
  BOOST_CHECK(contains(msg, "GPROFILER_PROFILING_FREQUENCY"));
  auto inv = parse({}, {{"GPROFILER_NO_SUCH_THING", "1"}});
  BOOST_REQUIRE_EQUAL(inv.warnings.size(), 1u);
  BOOST_CHECK(contains(inv.warnings[0], "GPROFILER_NO_SUCH_THING"));
}

BOOST_AUTO_TEST_CASE(malformed_file_names_file_line_and_column) {
  temp_file file{"{\n  \"profiling_duration\": 5,\n  \"output_dir\" \"x\"\n}"};
  auto msg = error_of([&] {
    parse({"--config", file.path});
  });
  BOOST_CHECK(contains(msg, file.path));
  BOOST_CHECK(contains(msg, "line 3, column 16"));
}

BOOST_AUTO_TEST_CASE(schema_violations_name_pointer_and_rule) {
  temp_file unknown{R"({"profiling_duratio": 5})"};
  auto msg = error_of([&] {
    parse({"--config", unknown.path});
  });
  BOOST_CHECK(contains(msg, "/profiling_duratio"));
  BOOST_CHECK(contains(msg, "additionalProperties"));
  BOOST_CHECK(contains(msg, "did you mean 'profiling_duration'"));
  temp_file negative{R"({"profiling_duration": -5})"};
  msg = error_of([&] {
    parse({"--config", negative.path});
  });
  BOOST_CHECK(contains(msg, "/profiling_duration"));
  BOOST_CHECK(contains(msg, "minimum"));
  temp_file wrong_type{R"({"continuous": "yes"})"};
  msg = error_of([&] {
    parse({"--config", wrong_type.path});
  });
  BOOST_CHECK(contains(msg, "/continuous"));
  BOOST_CHECK(contains(msg, "'type'"));
  temp_file bad_element{R"({"pids": [1, "two"]})"};
  msg = error_of([&] {
    parse({"--config", bad_element.path});
  });
  BOOST_CHECK(contains(msg, "/pids/1"));
  temp_file bad_choice{R"({"perf_mode": "lbr"})"};
  msg = error_of([&] {
    parse({"--config", bad_choice.path});
  });
  BOOST_CHECK(contains(msg, "'enum'"));
  temp_file not_object{R"([1, 2])", ".json"};
  msg = error_of([&] {
    parse({"--config", not_object.path});
  });
  BOOST_CHECK(contains(msg, "one JSON object"));
  msg = error_of([] {
    parse({"--config", "/nonexistent/gpa.json"});
  });
  BOOST_CHECK(contains(msg, "/nonexistent/gpa.json"));
}

BOOST_AUTO_TEST_CASE(print_config_redacts_and_round_trips) {
  auto inv = parse({"-d", "9", "--token", "s3cr3t", "--pids", "3,4",
                    "--log-rotate-max-size", "1MB"});
  auto json = gpa::config::to_json(inv.options);
  BOOST_CHECK(!contains(json, "s3cr3t"));
  BOOST_CHECK(contains(json, "\"token\": \"<redacted>\""));
  // The output is a config file as it is: the placeholder stands for a
  // token given elsewhere, by flag or environment.
  temp_file file{json};
  auto expected
      = gpa::config::to_json(parse({"-d", "9", "--token", "other", "--pids",
                                    "3,4", "--log-rotate-max-size", "1MB"})
                                 .options);
  auto by_env = parse({"--config", file.path}, {{"GPROFILER_TOKEN", "other"}});
  BOOST_CHECK_EQUAL(by_env.options.upload.token, "other");
  BOOST_CHECK_EQUAL(gpa::config::to_json(by_env.options), expected);
  auto by_flag = parse({"--config", file.path, "--token", "other"});
  BOOST_CHECK_EQUAL(by_flag.options.upload.token, "other");
  BOOST_CHECK(by_flag.warnings.empty());
  // Without the real token, the placeholder is refused, not taken as the
  // token, and the message says where it is and how to give the real one.
  auto msg = error_of([&] {
    parse({"--config", file.path});
  });
  BOOST_CHECK(contains(msg, file.path));
  BOOST_CHECK(contains(msg, "/token"));
  BOOST_CHECK(contains(msg, "placeholder"));
  BOOST_CHECK(contains(msg, "GPROFILER_TOKEN"));
  // Given as the value itself on the command line, it is refused at once.
  BOOST_CHECK(contains(error_of([] {
                         parse({"--token", "<redacted>"});
                       }),
                       "placeholder"));
}

BOOST_AUTO_TEST_CASE(print_config_of_defaults_round_trips_without_warnings) {
  temp_file file{gpa::config::to_json(parse({}).options)};
  auto back = parse({"--config", file.path});
  BOOST_CHECK_EQUAL(gpa::config::to_json(back.options),
                    gpa::config::to_json(parse({}).options));
  BOOST_CHECK(back.warnings.empty());
}

// -- values that go on the wire ----------------------------------------------

BOOST_AUTO_TEST_CASE(header_values_refuse_control_characters) {
  // The injection of issue 12: a header smuggled in through --token.
  auto msg = error_of([] {
    parse({"--token", "T0k3n\r\nX-Injected: yes"});
  });
  BOOST_CHECK(contains(msg, "--token"));
  BOOST_CHECK(contains(msg, "carriage return"));
  BOOST_CHECK(!contains(msg, "T0k3n"));
  BOOST_CHECK(!contains(msg, "Injected"));
  // A token read from a file keeps its newline: refused, and said so.
  msg = error_of([] {
    parse({}, {{"GPROFILER_TOKEN", "T0k3n\n"}});
  });
  BOOST_CHECK(contains(msg, "GPROFILER_TOKEN"));
  BOOST_CHECK(contains(msg, "trailing newline"));
  BOOST_CHECK(!contains(msg, "T0k3n"));
  temp_file file{R"({"token": "T0k3n\r\n"})"};
  msg = error_of([&] {
    parse({"--config", file.path});
  });
  BOOST_CHECK(contains(msg, "/token"));
  BOOST_CHECK(!contains(msg, "T0k3n"));
  // The service name is a header too; it is shown, escaped on one line.
  msg = error_of([] {
    parse({"--service-name", "svc\n"});
  });
  BOOST_CHECK(contains(msg, "--service-name: 'svc\\n'"));
  BOOST_CHECK(!contains(msg, "\n"));
  for (auto bad : {std::string{"a\0b", 3}, std::string{"a\tb"},
                   std::string{"a\x7f"}, std::string{"a\x01"}})
    BOOST_CHECK(!gpa::config::header_value_error(bad).empty());
  BOOST_CHECK(gpa::config::header_value_error("svc-1 ü/x").empty());
}

BOOST_AUTO_TEST_CASE(server_urls_are_checked_at_start) {
  for (std::string bad :
       {"", "profiler.example.com", "ftp://h", "file:///etc/passwd",
        "http://h:99999", "http://h:0", "http://h:", "http://h:8x",
        "http://h#frag", "http://h/?x=1", "http://", "http://:80", "http://h h",
        "http://h\r\n", "https://[::1", "http://a/b c"}) {
    auto msg = error_of([&] {
      parse({"--server-host", bad});
    });
    BOOST_CHECK_MESSAGE(contains(msg, "--server-host"), msg);
    BOOST_CHECK_MESSAGE(!contains(msg, "\n"), msg);
  }
  for (std::string good :
       {"https://profiler.granulate.io", "http://127.0.0.1:8080",
        "HTTPS://Studio.Example.com/prefix/", "http://[::1]:9000",
        "https://user:pw@h:443"})
    BOOST_CHECK_NO_THROW(parse({"--server-host", good}));
  // Pyroscope's URL may be empty (off), and is checked otherwise.
  BOOST_CHECK_NO_THROW(parse({"--pyroscope-url", ""}));
  BOOST_CHECK(contains(error_of([] {
                         parse({"--pyroscope-url", "localhost:4040"});
                       }),
                       "--pyroscope-url"));
  temp_file file{R"({"server_host": "ftp://h"})"};
  BOOST_CHECK(contains(error_of([&] {
                         parse({"--config", file.path});
                       }),
                       "/server_host"));
}

BOOST_AUTO_TEST_CASE(url_passwords_never_show) {
  using gpa::config::redact_url;
  BOOST_CHECK_EQUAL(redact_url("https://u:pw@h:1/p?key=k#f"),
                    "https://u:***@h:1/p");
  BOOST_CHECK_EQUAL(redact_url("https://u@h/p"), "https://u@h/p");
  BOOST_CHECK_EQUAL(redact_url("u:pw@h/p:x@y"), "u:***@h/p:x@y");
  BOOST_CHECK_EQUAL(redact_url("http://h/a@b:c"), "http://h/a@b:c");
  // In errors about the URL itself.
  auto msg = error_of([] {
    parse({"--server-host", "https://user:hunter2@h:99999"});
  });
  BOOST_CHECK(!contains(msg, "hunter2"));
  BOOST_CHECK(contains(msg, "user:***@h"));
  msg = error_of([] {
    parse({"--server-host", "user:hunter2@h"});
  });
  BOOST_CHECK(!contains(msg, "hunter2"));
  // In --print-config (and so in the .col header's run arguments), as the
  // placeholder, which is refused fed back unless the URL comes from
  // elsewhere.
  auto json = gpa::config::to_json(
      parse({"--server-host", "https://user:hunter2@h"}).options);
  BOOST_CHECK(!contains(json, "hunter2"));
  BOOST_CHECK(contains(json, "https://user:<redacted>@h"));
  temp_file file{json};
  BOOST_CHECK(contains(error_of([&] {
                         parse({"--config", file.path});
                       }),
                       "/server_host holds the placeholder"));
  auto back = parse({"--config", file.path},
                    {{"GPROFILER_SERVER_HOST", "https://user:pw2@h"}});
  BOOST_CHECK_EQUAL(back.options.upload.server_host, "https://user:pw2@h");
}

BOOST_AUTO_TEST_CASE(plain_http_with_a_token_warns) {
  auto inv = parse({"-u", "--token", "t", "--service-name", "s",
                    "--server-host", "http://user:pw@studio.example:8080"});
  BOOST_REQUIRE_EQUAL(inv.warnings.size(), 1u);
  BOOST_CHECK(contains(inv.warnings[0], "plain http"));
  BOOST_CHECK(!contains(inv.warnings[0], "pw@"));
  // Loopback never leaves the host: no warning.
  for (auto host :
       {"http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"})
    BOOST_CHECK_MESSAGE(parse({"-u", "--token", "t", "--service-name", "s",
                               "--server-host", host})
                            .warnings.empty(),
                        host);
  BOOST_CHECK(
      parse({"-u", "--token", "t", "--service-name", "s"}).warnings.empty());
}

BOOST_AUTO_TEST_CASE(logs_are_shipped_by_gprofilers_rule) {
  using gpa::config::ships_logs;
  std::vector<std::string> up{"-u", "--token", "t", "--service-name", "s"};
  auto with = [&](std::vector<std::string> extra) {
    auto args = up;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  BOOST_CHECK(ships_logs(parse(up), {}));
  // Not uploading: nothing goes to any server.
  BOOST_CHECK(!ships_logs(parse({"-o", "/tmp/x"}), {}));
  BOOST_CHECK(!ships_logs(parse(with({"--dont-send-logs"})), {}));
  // gProfiler looks only at whether the variable is set, so "0" stops them
  // too; "1" also sets the flag.
  for (auto value : {"1", "0", "false"}) {
    env_map env{{"GPROFILER_DONT_SEND_LOGS", value}};
    BOOST_CHECK_MESSAGE(!ships_logs(parse(up, env), env), value);
  }
  BOOST_CHECK(!ships_logs(parse(with({"--profile-api-version", "v1"})), {}));
  auto file = parse({"upload-file", "--file-path", "x.col", "--token", "t",
                     "--service-name", "s"});
  BOOST_CHECK(ships_logs(file, {}));
}

BOOST_AUTO_TEST_CASE(api_server_is_a_checked_url) {
  BOOST_CHECK_EQUAL(parse({}).options.compat.api_server,
                    "https://api.granulate.io");
  BOOST_CHECK_EQUAL(parse({"--glogger-server", "https://logs.example"})
                        .options.compat.api_server,
                    "https://logs.example");
  for (auto flag : {"--api-server", "--glogger-server"}) {
    auto msg = error_of([&] {
      parse({flag, "logs.example:80"});
    });
    BOOST_CHECK_MESSAGE(contains(msg, flag) && contains(msg, "scheme"), msg);
  }
  // Supported now: no "not supported yet" warning.
  BOOST_CHECK(
      parse({"--api-server", "https://logs.example", "--dont-send-logs"})
          .warnings.empty());
  // The token goes to the API server too: plain http to another host warns.
  auto inv = parse({"-u", "--token", "t", "--service-name", "s", "--api-server",
                    "http://user:pw@logs.example"});
  BOOST_REQUIRE_EQUAL(inv.warnings.size(), 1u);
  BOOST_CHECK(contains(inv.warnings[0], "--api-server"));
  BOOST_CHECK(contains(inv.warnings[0], "plain http"));
  BOOST_CHECK(!contains(inv.warnings[0], "pw@"));
  BOOST_CHECK(parse({"-u", "--token", "t", "--service-name", "s",
                     "--api-server", "http://127.0.0.1:8080"})
                  .warnings.empty());
  BOOST_CHECK(parse({"-u", "--token", "t", "--service-name", "s",
                     "--api-server", "http://logs.example", "--dont-send-logs"})
                  .warnings.empty());
}

// -- the config file ---------------------------------------------------------

BOOST_AUTO_TEST_CASE(config_file_is_read_bounded_and_parsed_depth_checked) {
  temp_file small{R"({"profiling_duration": 5})"};
  parse({"--config", small.path});
  BOOST_CHECK_EQUAL(last_read_limit, uint64_t{1} << 20);
  // Nesting that overflowed RapidJSON's recursion (exit 139) is a mistake
  // of the file like any other.
  temp_file deep{std::string(100000, '[') + std::string(100000, ']'), ".json"};
  auto msg = error_of([&] {
    parse({"--config", deep.path});
  });
  BOOST_CHECK(contains(msg, deep.path));
  BOOST_CHECK(contains(msg, "nested deeper than 64"));
}

BOOST_AUTO_TEST_CASE(wrongly_typed_token_is_not_echoed) {
  for (std::string value :
       {"12345678", "[\"s3cr3t99\"]", "{\"t\": \"s3cr3t99\"}", "true"}) {
    temp_file file{"{\"token\": " + value + "}"};
    auto msg = error_of([&] {
      parse({"--config", file.path});
    });
    BOOST_CHECK(contains(msg, "/token"));
    BOOST_CHECK_MESSAGE(!contains(msg, "12345678") && !contains(msg, "s3cr3t"),
                        msg);
  }
}

BOOST_AUTO_TEST_CASE(spool_bounds_have_minimums) {
  BOOST_CHECK(contains(error_of([] {
                         parse({"--spool-max-size", "0"});
                       }),
                       "must be >= 1048576"));
  BOOST_CHECK(contains(error_of([] {
                         parse({"--spool-max-files", "0"});
                       }),
                       "must be >= 1"));
  auto inv = parse({"--spool-max-size", "1MB", "--spool-max-files", "1"});
  BOOST_CHECK_EQUAL(inv.options.upload.spool_max_bytes, 1 << 20);
  BOOST_CHECK_EQUAL(inv.options.upload.spool_max_files, 1);
}

BOOST_AUTO_TEST_CASE(unsupported_options_warn_once_and_say_so_in_help) {
  auto inv = parse(
      {"--rootless", "--python-pyperf-verbose", "--pyperf-user-stacks-pages",
       "4", "--no-python-versions", "--python-mode", "auto", "--no-java",
       "--no-nodejs", "--no-ruby", "--php-mode", "phpspy", "--dotnet-mode",
       "dotnet-trace", "--rbspy-path", "/x", "--php-proc-filter", "php"},
      {{"GPROFILER_PYTHON_SKIP_PYPERF_PROFILER_ABOVE", "100"}});
  std::string all;
  for (auto& w : inv.warnings)
    all += w + "\n";
  BOOST_CHECK_EQUAL(inv.warnings.size(), 4u);
  for (auto name :
       {"--rootless", "--python-pyperf-verbose", "--pyperf-user-stacks-pages",
        "--python-skip-pyperf-profiler-above"})
    BOOST_CHECK_MESSAGE(
        contains(all, std::string{name} + " is not supported yet"), all);
  BOOST_CHECK(contains(all, "GPROFILER_PYTHON_SKIP_PYPERF_PROFILER_ABOVE"));
  // Java, Node.js, Ruby, PHP, .NET and Python run.
  for (auto name : {"--no-java", "--no-nodejs", "--no-ruby", "--php-mode",
                    "--dotnet-mode", "--rbspy-path", "--php-proc-filter",
                    "--no-python-versions", "--python-mode"})
    BOOST_CHECK_MESSAGE(!contains(all, name), name);
  // In a file only a value other than the default counts as set.
  temp_file file{R"({"python_pyperf_verbose": true, "php_mode": "disabled"})"};
  auto from_file = parse({"--config", file.path});
  BOOST_REQUIRE_EQUAL(from_file.warnings.size(), 1u);
  BOOST_CHECK(contains(from_file.warnings[0], "--python-pyperf-verbose"));
  BOOST_CHECK(parse({"-o", "/tmp"}).warnings.empty());
  auto help = gpa::config::help_text();
  BOOST_CHECK(contains(help, "Verbose PyPerf logs (not supported yet)"));
}

// --app-id-args-filter appends; a pattern std::regex cannot use is kept (the
// Java app id is then dropped, as gProfiler's re.search raising drops it)
// and warned about once; the app id flags are supported (no warning).
BOOST_AUTO_TEST_CASE(app_id_flags) {
  auto inv = parse({"--app-id-args-filter", "^-Xm", "--app-id-args-filter",
                    "(?P<name>x)", "--disable-application-identifiers",
                    "--disable-application-metadata",
                    "--java-collect-spark-app-name-as-appid"});
  std::vector<std::string> want = {"^-Xm", "(?P<name>x)"};
  auto& got = inv.options.compat.app_id_args_filter;
  BOOST_CHECK_EQUAL_COLLECTIONS(got.begin(), got.end(), want.begin(),
                                want.end());
  BOOST_CHECK(inv.options.compat.disable_application_identifiers);
  BOOST_CHECK(inv.options.compat.disable_application_metadata);
  BOOST_CHECK(inv.options.compat.java_collect_spark_app_name_as_appid);
  BOOST_REQUIRE_EQUAL(inv.warnings.size(), 1u);
  BOOST_CHECK(contains(inv.warnings[0], "'(?P<name>x)' is not a regular "
                                        "expression"));
  BOOST_CHECK(parse({"--app-id-args-filter", "^-D"}).warnings.empty());
  auto help = gpa::config::help_text();
  for (auto flag : {"--disable-application-identifiers", "--app-id-args-filter",
                    "--disable-application-metadata",
                    "--java-collect-spark-app-name-as-appid"}) {
    auto at = help.find(flag);
    BOOST_REQUIRE(at != std::string::npos);
    // The entry ends where a line starts the next option ("  -x" or
    // "      --x"); its help text continues on deeper-indented lines.
    auto next = help.find('\n', at);
    while (next != std::string::npos) {
      auto text = help.find_first_not_of(' ', next + 1);
      if (text == std::string::npos
          || (text - next - 1 <= 6 && help[text] == '-'))
        break;
      next = help.find('\n', next + 1);
    }
    auto entry = help.substr(at, next - at);
    BOOST_CHECK_MESSAGE(!contains(entry, "not supported"), entry);
  }
}

BOOST_AUTO_TEST_CASE(metadata_flags_work_and_do_not_warn) {
  auto defaults = parse({}).options.metadata;
  BOOST_CHECK(!defaults.disable_metadata_collection);
  BOOST_CHECK(!defaults.disable_metrics_collection);
  BOOST_CHECK_EQUAL(defaults.external_metadata, "");
  BOOST_CHECK_EQUAL(defaults.dmi_dir, "/sys/class/dmi/id");
  BOOST_CHECK_EQUAL(defaults.aws_metadata_url, "http://169.254.169.254");
  BOOST_CHECK_EQUAL(defaults.gcp_metadata_url,
                    "http://metadata.google.internal");
  BOOST_CHECK_EQUAL(defaults.azure_metadata_url, "http://169.254.169.254");
  auto inv
      = parse({"--disable-metadata-collection", "--disable-metrics-collection",
               "--external-metadata", "/run/meta.json", "--dmi-dir", "/tmp/dmi",
               "--aws-metadata-url", "http://127.0.0.1:8001"},
              {{"GPROFILER_GCP_METADATA_URL", "http://127.0.0.1:8002"},
               {"GPROFILER_AZURE_METADATA_URL", "http://127.0.0.1:8003/"}});
  auto& m = inv.options.metadata;
  BOOST_CHECK(m.disable_metadata_collection);
  BOOST_CHECK(m.disable_metrics_collection);
  BOOST_CHECK_EQUAL(m.external_metadata, "/run/meta.json");
  BOOST_CHECK_EQUAL(m.dmi_dir, "/tmp/dmi");
  BOOST_CHECK_EQUAL(m.aws_metadata_url, "http://127.0.0.1:8001");
  BOOST_CHECK_EQUAL(m.gcp_metadata_url, "http://127.0.0.1:8002");
  BOOST_CHECK_EQUAL(m.azure_metadata_url, "http://127.0.0.1:8003/");
  // Built: no "not supported yet" warning, none in --help.
  BOOST_CHECK(inv.warnings.empty());
  auto help = gpa::config::help_text();
  for (auto flag : {"--disable-metadata-collection",
                    "--disable-metrics-collection", "--external-metadata"}) {
    auto at = help.find(flag);
    BOOST_REQUIRE(at != std::string::npos);
    // Its entry: up to the next line that starts an option.
    auto end = at;
    do
      end = help.find('\n', end + 1);
    while (end != std::string::npos
           && help.compare(help.find_first_not_of(' ', end + 1), 1, "-") != 0);
    auto line = help.substr(at, end - at);
    BOOST_CHECK_MESSAGE(!contains(line, "not supported"), line);
  }
  // The metadata service URLs are checked like every server URL.
  for (auto flag :
       {"--aws-metadata-url", "--gcp-metadata-url", "--azure-metadata-url"}) {
    auto msg = error_of([&] {
      parse({flag, "169.254.169.254"});
    });
    BOOST_CHECK_MESSAGE(contains(msg, flag), msg);
  }
}

BOOST_AUTO_TEST_CASE(rules_between_options) {
  BOOST_CHECK(contains(error_of([] {
                         gpa::config::validate(parse({"-u", "-o", "/tmp"}));
                       }),
                       "--token and --service-name"));
  BOOST_CHECK(contains(error_of([] {
                         gpa::config::validate(parse({}));
                       }),
                       "nothing to do"));
  BOOST_CHECK(contains(error_of([] {
                         gpa::config::validate(parse(
                             {"-o", "/tmp", "--agent-rss-warning-mb", "500"}));
                       }),
                       "thresholds must rise"));
  BOOST_CHECK_NO_THROW(gpa::config::validate(
      parse({"-u", "--token", "t", "--service-name", "s"})));
}

// --php-proc-filter is a pgrep pattern (phpspy hands it to pgrep, the agent
// finds the same processes with it); phpspy needs windows of 3 s at least,
// as gProfiler says.
BOOST_AUTO_TEST_CASE(php_options) {
  auto o = parse({"--php-mode", "phpspy", "--php-proc-filter", "^php(-fpm)?$"})
               .options;
  BOOST_CHECK_EQUAL(o.runtimes.php_mode, "phpspy");
  BOOST_CHECK_EQUAL(o.compat.php_proc_filter, "^php(-fpm)?$");
  BOOST_CHECK_EQUAL(parse({}).options.compat.php_proc_filter, "php-fpm");
  for (auto [value, why] :
       {std::pair{"-f php-fpm", "pgrep options are not supported"},
        std::pair{"php(", "not a valid extended regular expression"},
        std::pair{"", "must not be empty"},
        std::pair{"php\nfpm", "control characters"}}) {
    auto msg = error_of([v = value] {
      parse({"--php-proc-filter", v});
    });
    BOOST_CHECK_MESSAGE(
        contains(msg, "--php-proc-filter") && contains(msg, why), msg);
  }
  BOOST_CHECK(
      contains(error_of([] {
                 gpa::config::validate(
                     parse({"-o", "/tmp", "--php-mode", "phpspy", "-d", "2"}));
               }),
               "Minimum duration for PHPSpyProfiler is 3 (given 2)"));
  BOOST_CHECK_NO_THROW(gpa::config::validate(
      parse({"-o", "/tmp", "--php-mode", "phpspy", "-d", "3"})));
  BOOST_CHECK_NO_THROW(gpa::config::validate(parse({"-o", "/tmp", "-d", "2"})));
}

BOOST_AUTO_TEST_CASE(help_lists_every_option) {
  auto help = gpa::config::help_text();
  for (auto& spec : gpa::config::option_table())
    BOOST_CHECK_MESSAGE(contains(help, "--" + spec.name + " ")
                            || contains(help, "--" + spec.name + "\n"),
                        "--help misses --" << spec.name);
}

// gProfiler's spellings reach the same fields through every source.
BOOST_AUTO_TEST_CASE(container_runtime_sockets) {
  // The defaults are where Docker, containerd and CRI-O listen.
  auto o = parse({}).options.containers;
  BOOST_CHECK_EQUAL(o.docker_socket, "/var/run/docker.sock");
  BOOST_CHECK((o.cri_sockets
               == std::vector<std::string>{"/run/containerd/containerd.sock",
                                           "/var/run/crio/crio.sock"}));
  // The first --cri-socket replaces the defaults, the next ones add.
  o = parse({"--docker-socket", "/tmp/d.sock", "--cri-socket", "/tmp/a.sock",
             "--cri-socket", "/tmp/b.sock"})
          .options.containers;
  BOOST_CHECK_EQUAL(o.docker_socket, "/tmp/d.sock");
  BOOST_CHECK((o.cri_sockets
               == std::vector<std::string>{"/tmp/a.sock", "/tmp/b.sock"}));
  // Empty: do not ask.
  o = parse({"--docker-socket", "", "--cri-socket", ""}).options.containers;
  BOOST_CHECK_EQUAL(o.docker_socket, "");
  BOOST_CHECK((o.cri_sockets == std::vector<std::string>{""}));
  // From a JSON file and the environment.
  temp_file file{R"({"docker_socket": "/srv/docker.sock",
                     "cri_socket": ["/srv/containerd.sock"]})",
                 ".json"};
  o = parse({"--config", file.path}).options.containers;
  BOOST_CHECK_EQUAL(o.docker_socket, "/srv/docker.sock");
  BOOST_CHECK(
      (o.cri_sockets == std::vector<std::string>{"/srv/containerd.sock"}));
  o = parse({}, {{"GPROFILER_DOCKER_SOCKET", "/e/docker.sock"}})
          .options.containers;
  BOOST_CHECK_EQUAL(o.docker_socket, "/e/docker.sock");
  // Absolute, short enough for a unix socket, no control characters.
  BOOST_CHECK(contains(error_of([] {
                         parse({"--docker-socket", "docker.sock"});
                       }),
                       "--docker-socket: 'docker.sock' must be an absolute "
                       "path"));
  BOOST_CHECK(contains(
      error_of([] {
        parse({"--cri-socket", "/ok.sock", "--cri-socket", "run/crio.sock"});
      }),
      "must be an absolute path"));
  BOOST_CHECK(contains(error_of([] {
                         parse({"--cri-socket", "/" + std::string(107, 's')});
                       }),
                       "at most 107 bytes"));
  BOOST_CHECK(contains(error_of([] {
                         parse({"--docker-socket", "/a\nb"});
                       }),
                       "control characters"));
  temp_file bad{R"({"cri_socket": ["/ok.sock", "relative.sock"]})", ".json"};
  BOOST_CHECK(contains(error_of([&] {
                         parse({"--config", bad.path});
                       }),
                       "must be an absolute path"));
}

BOOST_AUTO_TEST_CASE(gprofiler_legacy_values_and_rules) {
  // "none" is stored as "disabled", from a flag, the environment or a file.
  BOOST_CHECK_EQUAL(parse({"--perf-mode", "none"}).options.perf.mode,
                    "disabled");
  BOOST_CHECK_EQUAL(parse({}, {{"GPROFILER_NODEJS_MODE", "none"}})
                        .options.runtimes.nodejs_mode,
                    "disabled");
  temp_file file{R"({"perf_mode": "none", "app_id_args_filter": ["a", "b"],
                     "pids": [7]})"};
  auto from_file = parse({"--config", file.path});
  BOOST_CHECK_EQUAL(from_file.options.perf.mode, "disabled");
  BOOST_CHECK_EQUAL(from_file.options.compat.app_id_args_filter.size(), 2u);
  // The first --pids replaces the file's list, the next ones add to it.
  auto pids = parse({"--config", file.path, "--pids", "1,2", "--pids", "3"});
  BOOST_CHECK_EQUAL(pids.options.scheduler.pids.size(), 3u);
  // A rule about a given flag looks at what was given, not at defaults.
  BOOST_CHECK_NO_THROW(
      gpa::config::validate(parse({"-o", "/tmp", "--mode", "allocation"})));
  BOOST_CHECK(
      contains(error_of([] {
                 gpa::config::validate(
                     parse({"-o", "/tmp", "--mode", "allocation", "-f", "11"}));
               }),
               "only allowed in cpu profiling"));
  BOOST_CHECK(contains(error_of([] {
                         gpa::config::validate(
                             parse({"-o", "/tmp", "--pids", "1",
                                    "--profile-spawned-"
                                    "processes"}));
                       }),
                       "--pids is not allowed"));
  BOOST_CHECK(contains(error_of([] {
                         gpa::config::validate(parse({"-o", "/tmp", "-f", "101",
                                                      "--perf-mode", "dwarf"}));
                       }),
                       "can't be larger than 100"));
}

BOOST_AUTO_TEST_SUITE_END()

// -- gProfiler's config file: configargparse's format, the default file ------

BOOST_AUTO_TEST_SUITE(config_files)

namespace {

/// The one setting of a one-line file.
gpa::config::ini_setting one(const std::string& line) {
  auto r = gpa::config::parse_ini(line);
  BOOST_REQUIRE_MESSAGE(r.error.empty(), line << ": " << r.error);
  BOOST_REQUIRE_EQUAL(r.settings.size(), 1u);
  return r.settings[0];
}

invocation parse_with_default(std::vector<std::string> args, env_map env,
                              const std::string& default_config) {
  return gpa::config::parse(args, env, read_file, default_config);
}

} // namespace

BOOST_AUTO_TEST_CASE(syntax_of_configargparse) {
  // Comments, sections, YAML document markers and blank lines are skipped.
  auto r = gpa::config::parse_ini("# c\n; c\n[gprofiler]\n---\n  \n\t# c\n");
  BOOST_CHECK(r.error.empty());
  BOOST_CHECK(r.settings.empty());
  // The separators: =, :, whitespace; the key may keep its "--".
  for (auto line : {"profiling-duration = 5", "profiling-duration=5",
                    "profiling-duration: 5", "profiling-duration:5",
                    "profiling-duration 5", "  profiling-duration\t5  "}) {
    auto x = one(line);
    BOOST_CHECK_EQUAL(x.key, "profiling-duration");
    BOOST_CHECK_EQUAL(x.value, "5");
  }
  BOOST_CHECK_EQUAL(one("--pids 1,2").key, "--pids");
  // A bare key is true; "key =" is empty.
  BOOST_CHECK_EQUAL(one("continuous").value, "true");
  BOOST_CHECK_EQUAL(one("output-dir =").value, "");
  // Values keep inner spaces, '#' and ':' without a space before them, and
  // lose one pair of quotes and a trailing comment.
  BOOST_CHECK_EQUAL(one("service-name my service").value, "my service");
  BOOST_CHECK_EQUAL(one("server-host = http://h:8080/a#b").value,
                    "http://h:8080/a#b");
  BOOST_CHECK_EQUAL(one("service-name = x # note").value, "x");
  BOOST_CHECK_EQUAL(one("service-name = x ; note").value, "x");
  BOOST_CHECK_EQUAL(one("service-name = \"a # b\" # note").value, "a # b");
  BOOST_CHECK_EQUAL(one("service-name = 'q'").value, "q");
  BOOST_CHECK_EQUAL(one("service-name = \"open").value, "\"open");
  // As in configargparse, a comment right after the separator is the value.
  BOOST_CHECK_EQUAL(one("service-name = # x").value, "# x");
  // Lists: JSON, else split at commas and trimmed.
  auto list = one("pids = [1, 2 ,3]");
  BOOST_CHECK(list.is_list);
  BOOST_CHECK((list.items == std::vector<std::string>{"1", "2", "3"}));
  BOOST_CHECK((one("x = [a, b ]").items == std::vector<std::string>{"a", "b"}));
  BOOST_CHECK(
      (one("x = [\"a,b\", 3]").items == std::vector<std::string>{"a,b", "3"}));
  BOOST_CHECK(one("x = []").items.empty());
  // Line numbers count \n, \r\n and \r endings; a byte-order mark is skipped.
  r = gpa::config::parse_ini("\xEF\xBB\xBF# c\r\na = 1\rb = 2\n\nc = 3");
  BOOST_REQUIRE_EQUAL(r.settings.size(), 3u);
  BOOST_CHECK_EQUAL(r.settings[0].key, "a");
  BOOST_CHECK_EQUAL(r.settings[0].line, 2u);
  BOOST_CHECK_EQUAL(r.settings[1].line, 3u);
  BOOST_CHECK_EQUAL(r.settings[2].line, 5u);
  // Lines that are no setting: no key, a comment glued to the key.
  r = gpa::config::parse_ini("a = 1\n\n= 5\n");
  BOOST_CHECK_EQUAL(r.error_line, 3u);
  BOOST_CHECK(contains(r.error, "instead of a key"));
  r = gpa::config::parse_ini("continuous# on\n");
  BOOST_CHECK_EQUAL(r.error_line, 1u);
  BOOST_CHECK(contains(r.error, "needs a space"));
}

BOOST_AUTO_TEST_CASE(ini_file_sets_options) {
  temp_file file{"# as gProfiler reads it\n"
                 "[gprofiler]\n"
                 "profiling-duration = 7\n"
                 "--profiling-frequency: 11\n"
                 "continuous\n"
                 "service-name \"my svc\"  ; the service\n"
                 "pids = [1, 2,3]\n"
                 "no-verify = yes\n"
                 "rotating-output = off\n"
                 "no-perf = true\n"
                 "spool-max-size = 2MB\n"
                 "profiling-duration = 8\n"};
  auto inv = parse({"--config", file.path});
  auto& o = inv.options;
  BOOST_CHECK_EQUAL(o.scheduler.duration.count(), 8); // the last line wins
  BOOST_CHECK_EQUAL(o.scheduler.frequency, 11);
  BOOST_CHECK(o.scheduler.continuous);
  BOOST_CHECK_EQUAL(o.upload.service_name, "my svc");
  BOOST_CHECK((o.scheduler.pids == std::vector<int64_t>{1, 2, 3}));
  BOOST_CHECK(o.upload.no_verify);
  BOOST_CHECK(!o.output.rotating);
  BOOST_CHECK_EQUAL(o.perf.mode, "disabled");
  BOOST_CHECK_EQUAL(o.upload.spool_max_bytes, 2 << 20);
  // "no-perf = false" sets nothing, as configargparse passes no flag.
  temp_file off{"no-perf = false\n"};
  BOOST_CHECK(parse({"--config", off.path}).options.perf.mode
              == parse({}).options.perf.mode);
  // A file whose first character is '{' is JSON, whatever its name; one
  // named .json is JSON whatever it holds.
  temp_file json{"  {\"profiling_duration\": 9}"};
  BOOST_CHECK_EQUAL(
      parse({"--config", json.path}).options.scheduler.duration.count(), 9);
  temp_file named{"profiling-duration = 9\n", ".json"};
  BOOST_CHECK(contains(error_of([&] {
                         parse({"--config", named.path});
                       }),
                       "malformed JSON"));
}

BOOST_AUTO_TEST_CASE(ini_errors_name_file_and_line) {
  auto error = [](const std::string& content) {
    temp_file file{content};
    auto msg = error_of([&] {
      parse({"--config", file.path});
    });
    BOOST_CHECK_MESSAGE(contains(msg, "config file " + file.path + ": line "),
                        msg);
    return msg;
  };
  auto msg = error("profiling-duration = 5\n\nprofiling_frequency = 11\n");
  BOOST_CHECK_MESSAGE(contains(msg, "line 3: unknown option "
                                    "'profiling_frequency' (did you mean "
                                    "'profiling-frequency'?)"),
                      msg);
  msg = error("# x\nprofiling-duration = five\n");
  BOOST_CHECK_MESSAGE(contains(msg, "line 2: profiling-duration: 'five' must "
                                    "be a whole number"),
                      msg);
  msg = error("continuous = maybe\n");
  BOOST_CHECK_MESSAGE(contains(msg, "line 1: continuous: 'maybe' must be "
                                    "true or false"),
                      msg);
  msg = error("profiling-duration = [1, 2]\n");
  BOOST_CHECK_MESSAGE(contains(msg, "not a list"), msg);
  msg = error("pids = [1, x]\n");
  BOOST_CHECK_MESSAGE(contains(msg, "line 1: pids: 'x'"), msg);
  msg = error("a = 1\n: 5\n");
  BOOST_CHECK_MESSAGE(contains(msg, "line 2: expected a setting"), msg);
  msg = error("config = other.ini\n");
  BOOST_CHECK_MESSAGE(contains(msg, "--config cannot be set in a config file"),
                      msg);
  msg = error("perf-mode = lbr\n");
  BOOST_CHECK_MESSAGE(contains(msg, "must be one of"), msg);
  // A bad token is not echoed, nor a key's control characters.
  msg = error("token = s3cr3t\x01x\n");
  BOOST_CHECK_MESSAGE(!contains(msg, "s3cr3t"), msg);
  msg = error("bad\x1b[31mkey = 1\n");
  BOOST_CHECK_MESSAGE(!contains(msg, "\x1b"), msg);
  // A placeholder is named with the line that set it.
  temp_file redacted{"token = <redacted>\n"};
  msg = error_of([&] {
    parse({"--config", redacted.path});
  });
  BOOST_CHECK_MESSAGE(contains(msg, redacted.path
                                        + ": line 1 holds the "
                                          "placeholder"),
                      msg);
}

BOOST_AUTO_TEST_CASE(precedence_default_file_named_file_env_flags) {
  temp_file def{"profiling-duration = 1\nprofiling-frequency = 2\n"
                "service-name = def\nmax-children = 4\n"};
  temp_file named{"{\"profiling_frequency\": 3, \"service_name\": \"named\","
                  " \"max_children\": 5}"};
  auto inv = parse_with_default({}, {}, def.path);
  BOOST_CHECK_EQUAL(inv.options.scheduler.duration.count(), 1);
  BOOST_CHECK_EQUAL(inv.options.scheduler.frequency, 2);
  inv = parse_with_default({"--config", named.path}, {}, def.path);
  BOOST_CHECK_EQUAL(inv.options.scheduler.duration.count(), 1);
  BOOST_CHECK_EQUAL(inv.options.scheduler.frequency, 3);
  inv = parse_with_default(
      {"--config", named.path},
      {{"GPROFILER_SERVICE_NAME", "env"}, {"GPROFILER_MAX_CHILDREN", "6"}},
      def.path);
  BOOST_CHECK_EQUAL(inv.options.upload.service_name, "env");
  BOOST_CHECK_EQUAL(inv.options.reaper.max_children, 6);
  inv = parse_with_default({"--config", named.path, "--max-children", "7"},
                           {{"GPROFILER_MAX_CHILDREN", "6"}}, def.path);
  BOOST_CHECK_EQUAL(inv.options.reaper.max_children, 7);
  // A bad default file is as much a mistake as a named one.
  temp_file bad{"profiling-duration = 0\n"};
  auto msg = error_of([&] {
    parse_with_default({}, {}, bad.path);
  });
  BOOST_CHECK(contains(msg, bad.path + ": line 1"));
  // --help and --version read no file.
  BOOST_CHECK(parse_with_default({"--help"}, {}, bad.path).help);
}

BOOST_AUTO_TEST_CASE(every_option_by_environment_and_ini_key) {
  // configargparse names the variable of each flag GPROFILER_ + the first
  // long flag without dashes, '-' as '_', upper-cased; its file key is the
  // flag without dashes. Both reach every option the same way.
  auto defaults = gpa::config::to_json(parse({}).options);
  for (auto& spec : gpa::config::option_table()) {
    if (spec.meta)
      continue;
    std::string name = spec.name;
    std::string expected_env = "GPROFILER_";
    for (auto c : name)
      expected_env += c == '-' ? '_' : static_cast<char>(std::toupper(c));
    BOOST_CHECK_EQUAL(spec.env_name(), expected_env);
    // A valid value other than the default.
    auto current
        = spec.alias_of.empty()
              ? gpa::config::format_value(spec, spec.get(gpa::agent_options{}))
              : std::string{};
    std::string text;
    switch (spec.kind) {
      case gpa::config::value_kind::flag:
        text = current == "true" ? "false" : "true";
        break;
      case gpa::config::value_kind::integer:
      case gpa::config::value_kind::bytes:
        text = std::to_string(spec.min > 0 ? spec.min : 1);
        if (text == current)
          text = std::to_string(spec.min > 0 ? spec.min + 1 : 2);
        break;
      case gpa::config::value_kind::choice:
        text = spec.choices[0] != current || spec.choices.size() < 2
                   ? spec.choices[0]
                   : spec.choices[1];
        break;
      case gpa::config::value_kind::int_list: text = "7"; break;
      default:
        text = spec.rule == gpa::config::text_rule::choice_list
                   ? spec.choices[0]
               : spec.rule == gpa::config::text_rule::url
                       || spec.rule == gpa::config::text_rule::optional_url
                   ? "https://example.com:1"
               : spec.rule == gpa::config::text_rule::socket_path
                   ? "/run/x1.sock"
                   : "x1";
    }
    auto by_env = parse({}, {{spec.env_name(), text}});
    temp_file ini{name + " = " + text + "\n"};
    auto by_ini = parse({"--config", ini.path});
    auto env_json = gpa::config::to_json(by_env.options);
    // (An alias such as --no-php may set what is the default already.)
    auto target = spec.alias_of.empty()
                      ? &spec
                      : gpa::config::find_option(spec.alias_of);
    bool no_op = !spec.alias_of.empty() && !spec.alias_value.empty()
                 && gpa::config::format_value(*target,
                                              target->get(gpa::agent_options{}))
                        == spec.alias_value;
    BOOST_CHECK_MESSAGE(no_op || env_json != defaults,
                        spec.env_name() << "=" << text << " had no effect");
    BOOST_CHECK_MESSAGE(gpa::config::to_json(by_ini.options) == env_json,
                        name << " = " << text << " differs from "
                             << spec.env_name());
  }
}

BOOST_AUTO_TEST_CASE(environment_takes_configargparse_lists) {
  auto inv = parse({}, {{"GPROFILER_PIDS", "[1, 2]"}});
  BOOST_CHECK((inv.options.scheduler.pids == std::vector<int64_t>{1, 2}));
  inv = parse({}, {{"GPROFILER_PIDS", "3,4"}});
  BOOST_CHECK((inv.options.scheduler.pids == std::vector<int64_t>{3, 4}));
}

BOOST_AUTO_TEST_SUITE_END()

// The configuration: defaults, each source overriding the one below it,
// and clear errors for every kind of mistake.

#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <unistd.h>

#include "config/load.hpp"
#include "config/option_table.hpp"

using gpa::config::config_error;
using gpa::config::invocation;
using env_map = std::map<std::string, std::string>;

namespace {

/// A config file in /tmp that is removed afterwards.
struct temp_file {
  std::string path;
  explicit temp_file(const std::string& content) {
    char name[] = "/tmp/gpa-config-XXXXXX";
    int fd = ::mkstemp(name);
    path = name;
    auto n = ::write(fd, content.data(), content.size());
    BOOST_REQUIRE_EQUAL(n, static_cast<ssize_t>(content.size()));
    ::close(fd);
  }
  ~temp_file() {
    std::remove(path.c_str());
  }
};

invocation parse(std::vector<std::string> args, env_map env = {}) {
  return gpa::config::parse(args, env);
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
  temp_file not_object{R"([1, 2])"};
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
  // The output is itself a valid config file, except for the placeholder.
  auto without_token = json;
  auto pos = without_token.find("\"<redacted>\"");
  without_token.replace(pos, 12, "\"\"");
  temp_file file{without_token};
  auto back = parse({"--config", file.path});
  BOOST_CHECK_EQUAL(gpa::config::to_json(back.options),
                    gpa::config::to_json(parse({"-d", "9", "--pids", "3,4",
                                                "--log-rotate-max-size", "1MB"})
                                             .options));
  // Feeding the placeholder back is refused, not taken as the token.
  temp_file redacted{json};
  BOOST_CHECK(contains(error_of([&] {
                         parse({"--config", redacted.path});
                       }),
                       "placeholder"));
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

BOOST_AUTO_TEST_CASE(help_lists_every_option) {
  auto help = gpa::config::help_text();
  for (auto& spec : gpa::config::option_table())
    BOOST_CHECK_MESSAGE(contains(help, "--" + spec.name + " ")
                            || contains(help, "--" + spec.name + "\n"),
                        "--help misses --" << spec.name);
}

BOOST_AUTO_TEST_SUITE_END()

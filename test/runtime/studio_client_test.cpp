// Performance Studio's control plane (runtime/studio_client.*): the
// heartbeat and completion bodies against gProfiler's fields, the heartbeat
// answer with each documented field and hostile answers (wrong types, huge
// ids, deep nesting, truncation, unknown command types) (unit); the command
// ledger's file: round trip, the newest 1000 ids, symbolic links and
// garbage (unit); and the client against the stand-in Studio
// (test/support/server.py) on 127.0.0.1: commands, completions, error
// statuses, a server that is down, and the token kept out of every error
// (real).

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include <sys/stat.h>
#include <unistd.h>

#include <rapidjson/document.h>

#include "format/time.hpp"
#include "runtime/error.hpp"
#include "runtime/studio_client.hpp"
#include "test/support/test_server.hpp"

using namespace gpa;
using namespace std::chrono_literals;

namespace {

rapidjson::Document parse(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  BOOST_REQUIRE_MESSAGE(!doc.HasParseError() && doc.IsObject(), text);
  return doc;
}

std::vector<std::string> keys_of(const rapidjson::Value& obj) {
  std::vector<std::string> keys;
  for (auto& m : obj.GetObject())
    keys.emplace_back(m.name.GetString());
  std::sort(keys.begin(), keys.end());
  return keys;
}

std::vector<std::string> strings_of(const rapidjson::Value& arr) {
  std::vector<std::string> out;
  for (auto& v : arr.GetArray())
    out.emplace_back(v.GetString());
  return out;
}

/// Why `r` failed ("" if it did not).
template <class T>
std::string why(const caf::expected<T>& r) {
  return r ? std::string{} : describe(r.error());
}

/// The command of `body`, which must parse.
rt::studio_command command_of(const std::string& body) {
  auto r = rt::parse_heartbeat_answer(body);
  BOOST_REQUIRE_MESSAGE(r, body << ": " << why(r));
  BOOST_REQUIRE_MESSAGE(r->has_value(), body << ": no command");
  return **r;
}

/// The error of `body`, which must not parse.
std::string error_of(const std::string& body) {
  auto r = rt::parse_heartbeat_answer(body);
  BOOST_REQUIRE_MESSAGE(!r, body.substr(0, 200) << ": parsed");
  return message_of(r.error());
}

/// An answer carrying one command with `config` as its combined_config.
std::string answer_with(const std::string& config,
                        const std::string& type = "\"start\"",
                        const std::string& id = "\"cmd-1\"") {
  return R"({"success": true, "message": "m", "profiling_command": )"
         R"({"command_type": )"
         + type + R"(, "combined_config": )" + config + R"(}, "command_id": )"
         + id + "}";
}

#define CHECK_ERROR(body, part)                                                \
  do {                                                                         \
    auto msg_ = error_of(body);                                                \
    BOOST_CHECK_MESSAGE(msg_.find(part) != std::string::npos,                  \
                        "error '" << msg_ << "' does not name '" << part       \
                                  << "'");                                     \
    BOOST_CHECK_LT(msg_.size(), 400u);                                         \
  } while (false)

/// A fresh directory, removed with everything in it at the end.
struct temp_dir {
  std::string path;
  temp_dir() {
    char tmpl[] = "/tmp/gpa-ledger-test.XXXXXX";
    BOOST_REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out{path, std::ios::binary};
  out << text;
}

std::string read_file(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  return {std::istreambuf_iterator<char>{in}, {}};
}

} // namespace

// -- bodies and answers
// ----------------------------------------------------------

BOOST_AUTO_TEST_SUITE(studio_protocol)

BOOST_AUTO_TEST_CASE(heartbeat_body_has_gprofilers_fields) {
  rt::heartbeat_info info;
  info.hostname = "web-01";
  info.ip_address = "10.0.0.7";
  info.service_name = "svc";
  info.received_ids = {"a", "b"};
  info.executed_ids = {"a"};
  info.now_ms = 1714557600123;
  auto doc = parse(rt::heartbeat_body(info));
  BOOST_CHECK(
      (keys_of(doc)
       == std::vector<std::string>{
           "executed_command_ids", "hostname", "ip_address", "last_command_id",
           "received_command_ids", "service_name", "status", "timestamp"}));
  BOOST_CHECK_EQUAL(doc["hostname"].GetString(), "web-01");
  BOOST_CHECK_EQUAL(doc["ip_address"].GetString(), "10.0.0.7");
  BOOST_CHECK_EQUAL(doc["service_name"].GetString(), "svc");
  BOOST_CHECK_EQUAL(doc["status"].GetString(), "active");
  // No command yet: null, as gProfiler's None.
  BOOST_CHECK(doc["last_command_id"].IsNull());
  BOOST_CHECK_EQUAL(doc["timestamp"].GetString(), "2024-05-01T10:00:00.123Z");
  BOOST_CHECK_EQUAL(
      format::parse_iso8601(doc["timestamp"].GetString()).value_or(0),
      info.now_ms);
  BOOST_CHECK((strings_of(doc["received_command_ids"])
               == std::vector<std::string>{"a", "b"}));
  BOOST_CHECK((strings_of(doc["executed_command_ids"])
               == std::vector<std::string>{"a"}));

  info.last_command_id = "b";
  info.received_ids.clear();
  info.executed_ids.clear();
  doc = parse(rt::heartbeat_body(info));
  BOOST_CHECK_EQUAL(doc["last_command_id"].GetString(), "b");
  BOOST_CHECK(doc["received_command_ids"].IsArray()
              && doc["received_command_ids"].Empty());
}

BOOST_AUTO_TEST_CASE(heartbeat_body_is_valid_json_whatever_the_text) {
  rt::heartbeat_info info;
  info.hostname = "bad\xff\xfe\"host\n";
  info.service_name = "s\\\x01";
  auto text = rt::heartbeat_body(info);
  auto doc = parse(text);
  // Invalid bytes become U+FFFD; quotes, backslashes and control characters
  // are escaped.
  BOOST_CHECK_EQUAL(doc["hostname"].GetString(),
                    "bad\xef\xbf\xbd\xef\xbf\xbd\"host\n");
  BOOST_CHECK_EQUAL(doc["service_name"].GetString(), "s\\\x01");
}

BOOST_AUTO_TEST_CASE(completion_body_has_gprofilers_fields) {
  auto doc = parse(rt::completion_body("cmd-1", "web-01", "completed", 65, ""));
  BOOST_CHECK((keys_of(doc)
               == std::vector<std::string>{"command_id", "error_message",
                                           "execution_time", "hostname",
                                           "results_path", "status"}));
  BOOST_CHECK_EQUAL(doc["command_id"].GetString(), "cmd-1");
  BOOST_CHECK_EQUAL(doc["hostname"].GetString(), "web-01");
  BOOST_CHECK_EQUAL(doc["status"].GetString(), "completed");
  BOOST_CHECK(doc["execution_time"].IsInt64());
  BOOST_CHECK_EQUAL(doc["execution_time"].GetInt64(), 65);
  BOOST_CHECK(doc["error_message"].IsNull());
  BOOST_CHECK(doc["results_path"].IsNull());

  doc = parse(rt::completion_body("cmd-2", "h", "failed", 0, "perf: boom"));
  BOOST_CHECK_EQUAL(doc["status"].GetString(), "failed");
  BOOST_CHECK_EQUAL(doc["error_message"].GetString(), "perf: boom");

  // A long message is cut, and stays valid UTF-8 where the cut splits a
  // character.
  std::string long_msg(999, 'x');
  long_msg += "\xc3\xa9 and more";
  doc = parse(rt::completion_body("cmd-3", "h", "failed", 1, long_msg));
  std::string got = doc["error_message"].GetString();
  BOOST_CHECK_EQUAL(got, std::string(999, 'x') + "\xef\xbf\xbd");
}

BOOST_AUTO_TEST_CASE(answers_without_a_command) {
  for (
      auto body :
      {R"({"success": true, "message": "Heartbeat received. No new commands."})",
       R"({"success": true, "message": "m", "profiling_command": null, "command_id": null})",
       R"({"success": true, "profiling_command": {}})"}) {
    auto r = rt::parse_heartbeat_answer(body);
    BOOST_REQUIRE_MESSAGE(r, body);
    BOOST_CHECK_MESSAGE(!r->has_value(), body);
  }
}

BOOST_AUTO_TEST_CASE(readmes_example_answer) {
  // docs/HEARTBEAT_SYSTEM_README.md's answer, as it stands.
  auto cmd = command_of(R"({
  "success": true,
  "message": "Heartbeat received. New profiling command available.",
  "profiling_command": {
    "command_type": "start",
    "combined_config": {
      "duration": 60,
      "frequency": 11,
      "profiling_mode": "cpu",
      "pids": ""
    }
  },
  "command_id": "cmd-uuid"
})");
  BOOST_CHECK_EQUAL(cmd.id, "cmd-uuid");
  BOOST_CHECK_EQUAL(cmd.type, "start");
  BOOST_CHECK(!cmd.continuous);
  BOOST_CHECK_EQUAL(cmd.duration_s.value_or(0), 60);
  BOOST_CHECK_EQUAL(cmd.frequency.value_or(0), 11);
  BOOST_CHECK_EQUAL(cmd.profiling_mode, "cpu");
  BOOST_CHECK(cmd.pids.empty());
  BOOST_CHECK_EQUAL(cmd.stop_level, "host");
  BOOST_CHECK(cmd.target_hostnames.empty());
}

BOOST_AUTO_TEST_CASE(every_field) {
  // The README's "combined config example", with pids and hosts; unknown
  // fields (enable_perfspect, command_type, profiler_configs) are ignored.
  auto cmd = command_of(answer_with(
      R"({"duration": 120, "frequency": 99, "continuous": true,
          "command_type": "start", "profiling_mode": "allocation",
          "enable_perfspect": true, "profiler_configs": {"perf": "disabled"},
          "pids": [1234, 5678], "target_hostnames": ["web-01", "web-02"]})",
      "\"start\"", "\"6f1c2a9e-7b1d-4c8e-9a55-0d2f3b4c5d6e\""));
  BOOST_CHECK_EQUAL(cmd.id, "6f1c2a9e-7b1d-4c8e-9a55-0d2f3b4c5d6e");
  BOOST_CHECK(cmd.continuous);
  BOOST_CHECK_EQUAL(cmd.duration_s.value_or(0), 120);
  BOOST_CHECK_EQUAL(cmd.frequency.value_or(0), 99);
  BOOST_CHECK_EQUAL(cmd.profiling_mode, "allocation");
  BOOST_CHECK((cmd.pids == std::vector<int64_t>{1234, 5678}));
  BOOST_CHECK(
      (cmd.target_hostnames == std::vector<std::string>{"web-01", "web-02"}));

  // Studio's process-level stop: the pids merged into one string.
  cmd = command_of(answer_with(
      R"({"stop_level": "process", "pids": "1234, 5678,2147483647"})",
      "\"stop\""));
  BOOST_CHECK_EQUAL(cmd.type, "stop");
  BOOST_CHECK_EQUAL(cmd.stop_level, "process");
  BOOST_CHECK((cmd.pids == std::vector<int64_t>{1234, 5678, 2147483647}));
  BOOST_CHECK(!cmd.duration_s && !cmd.frequency);

  // A host-level stop, its pids null.
  cmd = command_of(
      answer_with(R"({"stop_level": "host", "pids": null})", "\"stop\""));
  BOOST_CHECK_EQUAL(cmd.stop_level, "host");
  BOOST_CHECK(cmd.pids.empty());

  // Absent command_type: gProfiler's default "start"; absent or null
  // combined_config: all defaults; null fields: absent.
  cmd = command_of(
      R"({"success": true, "profiling_command": {"combined_config": null}, "command_id": "x"})");
  BOOST_CHECK_EQUAL(cmd.type, "start");
  BOOST_CHECK(!cmd.continuous && !cmd.duration_s && cmd.pids.empty());
  cmd = command_of(answer_with(
      R"({"duration": null, "frequency": null, "continuous": null,
          "target_hostnames": null, "profiling_mode": null,
          "stop_level": null})"));
  BOOST_CHECK(!cmd.duration_s && !cmd.frequency && !cmd.continuous);
  BOOST_CHECK_EQUAL(cmd.stop_level, "host");
  BOOST_CHECK_EQUAL(cmd.profiling_mode, "");
}

BOOST_AUTO_TEST_CASE(unknown_command_type_is_named) {
  CHECK_ERROR(answer_with("{}", "\"restart\""), "\"restart\"");
  CHECK_ERROR(answer_with("{}", "\"restart\""), "command_type");
  CHECK_ERROR(answer_with("{}", "\"\""), "command_type \"\"");
  CHECK_ERROR(answer_with("{}", "\"START\""), "\"START\"");
  // Quoted with its control characters escaped and its length bounded.
  CHECK_ERROR(
      answer_with("{}", "\"x\\u001b[31m" + std::string(5000, 'y') + "\""),
      "\"x\\x1b[31myyy");
}

BOOST_AUTO_TEST_CASE(wrong_types_name_the_field) {
  CHECK_ERROR(R"({"success": "yes"})", "\"success\" is a string");
  CHECK_ERROR(R"({"success": 1})", "\"success\" is a number");
  CHECK_ERROR(R"({"message": "ok"})", "no \"success\"");
  CHECK_ERROR(R"({"success": true, "profiling_command": "start"})",
              "\"profiling_command\" is a string");
  CHECK_ERROR(R"({"success": true, "profiling_command": [1]})",
              "\"profiling_command\" is an array");
  CHECK_ERROR(
      R"({"success": true, "profiling_command": {"command_type": "start"}})",
      "no \"command_id\"");
  CHECK_ERROR(answer_with("{}", "\"start\"", "42"),
              "\"command_id\" is a number");
  CHECK_ERROR(answer_with("{}", "\"start\"", "[\"a\"]"),
              "\"command_id\" is an array");
  CHECK_ERROR(answer_with("{}", "7"), "command_type is a number");
  CHECK_ERROR(answer_with("[]"), "combined_config is an array");
  CHECK_ERROR(answer_with("\"duration=60\""), "combined_config is a string");
  CHECK_ERROR(answer_with(R"({"continuous": "true"})"),
              "combined_config.continuous is a string");
  CHECK_ERROR(answer_with(R"({"continuous": 1})"),
              "combined_config.continuous is a number");
  CHECK_ERROR(answer_with(R"({"duration": "60"})"),
              "combined_config.duration is a string");
  CHECK_ERROR(answer_with(R"({"duration": 0})"),
              "combined_config.duration is 0");
  CHECK_ERROR(answer_with(R"({"duration": -5})"),
              "combined_config.duration is -5");
  CHECK_ERROR(answer_with(R"({"duration": 1.5})"),
              "combined_config.duration is 1.5");
  CHECK_ERROR(answer_with(R"({"duration": 1e300})"),
              "combined_config.duration is");
  CHECK_ERROR(answer_with(R"({"frequency": 99999999999})"),
              "combined_config.frequency is 99999999999");
  CHECK_ERROR(answer_with(R"({"frequency": {}})"),
              "combined_config.frequency is an object");
  CHECK_ERROR(answer_with(R"({"stop_level": "cluster"})", "\"stop\""),
              "combined_config.stop_level \"cluster\"");
  CHECK_ERROR(answer_with(R"({"stop_level": 1})", "\"stop\""),
              "combined_config.stop_level is a number");
  CHECK_ERROR(answer_with(R"({"profiling_mode": 5})"),
              "combined_config.profiling_mode is a number");
  CHECK_ERROR(
      answer_with(R"({"profiling_mode": ")" + std::string(65, 'c') + "\"}"),
      "combined_config.profiling_mode is 65 bytes long");
  CHECK_ERROR(answer_with(R"({"target_hostnames": "web-01"})"),
              "combined_config.target_hostnames is a string");
  CHECK_ERROR(answer_with(R"({"target_hostnames": ["a", 3]})"),
              "combined_config.target_hostnames[1] is a number");
  CHECK_ERROR(answer_with(R"({"target_hostnames": [")" + std::string(256, 'h')
                          + "\"]}"),
              "combined_config.target_hostnames[0] is 256 bytes long");
}

BOOST_AUTO_TEST_CASE(pids_must_be_positive_32_bit) {
  CHECK_ERROR(answer_with(R"({"pids": {}})"),
              "combined_config.pids is an object");
  CHECK_ERROR(answer_with(R"({"pids": 1234})"),
              "combined_config.pids is a number");
  CHECK_ERROR(answer_with(R"({"pids": [1, "2"]})"),
              "combined_config.pids[1] is a string");
  CHECK_ERROR(answer_with(R"({"pids": [0]})"), "combined_config.pids[0] is 0");
  CHECK_ERROR(answer_with(R"({"pids": [-5]})"),
              "combined_config.pids[0] is -5");
  CHECK_ERROR(answer_with(R"({"pids": [2147483648]})"),
              "combined_config.pids[0] is 2147483648");
  CHECK_ERROR(answer_with(R"({"pids": [1.0]})"),
              "combined_config.pids[0] is 1.0");
  CHECK_ERROR(answer_with(R"({"pids": [null]})"),
              "combined_config.pids[0] is null");
  CHECK_ERROR(answer_with(R"({"pids": "1,x"})"), "item 2 \"x\"");
  CHECK_ERROR(answer_with(R"({"pids": "1,,2"})"), "item 2 \"\"");
  CHECK_ERROR(answer_with(R"({"pids": "1,"})"), "item 2 \"\"");
  CHECK_ERROR(answer_with(R"({"pids": ",1"})"), "item 1 \"\"");
  CHECK_ERROR(answer_with(R"({"pids": "0"})"), "item 1 \"0\"");
  CHECK_ERROR(answer_with(R"({"pids": "-3"})"), "item 1 \"-3\"");
  CHECK_ERROR(answer_with(R"({"pids": "2147483648"})"),
              "item 1 \"2147483648\"");
  CHECK_ERROR(answer_with(R"({"pids": "99999999999999999999"})"),
              "item 1 \"99999999999999999999\"");
  CHECK_ERROR(answer_with(R"({"pids": "1 2"})"), "item 1 \"1 2\"");
  CHECK_ERROR(answer_with(R"({"pids": "+5"})"), "item 1 \"+5\"");
  // "" and blanks: none.
  BOOST_CHECK(command_of(answer_with(R"({"pids": "  "})")).pids.empty());
  BOOST_CHECK(command_of(answer_with(R"({"pids": []})")).pids.empty());

  // At most 10,000 of them.
  std::string list = "[";
  std::string text;
  for (int i = 1; i <= 10'000; ++i) {
    list += (i > 1 ? "," : "") + std::to_string(i);
    text += (i > 1 ? "," : "") + std::to_string(i);
  }
  BOOST_CHECK_EQUAL(
      command_of(answer_with(R"({"pids": )" + list + "]}")).pids.size(),
      10'000u);
  BOOST_CHECK_EQUAL(
      command_of(answer_with(R"({"pids": ")" + text + "\"}")).pids.size(),
      10'000u);
  CHECK_ERROR(answer_with(R"({"pids": )" + list + ",1]}"),
              "combined_config.pids has 10001 items");
  CHECK_ERROR(answer_with(R"({"pids": ")" + text + ",1\"}"),
              "combined_config.pids has more than 10000");
}

BOOST_AUTO_TEST_CASE(command_ids_are_bounded) {
  auto id128 = std::string(128, 'a');
  BOOST_CHECK_EQUAL(
      command_of(answer_with("{}", "\"start\"", "\"" + id128 + "\"")).id,
      id128);
  BOOST_CHECK_EQUAL(
      command_of(answer_with("{}", "\"start\"", "\"A-z_0.9:x\"")).id,
      "A-z_0.9:x");
  CHECK_ERROR(answer_with("{}", "\"start\"", "\"" + id128 + "a\""),
              "129 characters long (at most 128)");
  CHECK_ERROR(
      answer_with("{}", "\"start\"", "\"" + std::string(1'000'000, 'z') + "\""),
      "1000000 characters long");
  CHECK_ERROR(answer_with("{}", "\"start\"", "\"\""), "\"command_id\" is not "
                                                      "a command id: it is "
                                                      "empty");
  CHECK_ERROR(answer_with("{}", "\"start\"", "\"a b\""), "\" \" at 1");
  CHECK_ERROR(answer_with("{}", "\"start\"", "\"../../etc/passwd\""),
              "\"/\" at 2");
  CHECK_ERROR(answer_with("{}", "\"start\"", "\"a\\nb\""), "\"\\x0a\" at 1");
  CHECK_ERROR(answer_with("{}", "\"start\"", "\"caf\xc3\xa9\""),
              "\"\\xc3\" at 3");

  BOOST_CHECK_EQUAL(rt::command_id_error("cmd-uuid"), "");
  BOOST_CHECK_NE(rt::command_id_error(std::string_view{"a\0b", 3}), "");
}

BOOST_AUTO_TEST_CASE(deep_nesting_does_not_crash) {
  const size_t depth = 100'000;
  auto arrays = std::string(depth, '[') + std::string(depth, ']');
  CHECK_ERROR(R"({"success": true, "x": )" + arrays + "}", "nested deeper");
  CHECK_ERROR(answer_with(R"({"pids": )" + arrays + "}"), "nested deeper");
  std::string objects;
  for (size_t i = 0; i < depth; ++i)
    objects += R"({"a":)";
  objects += "1" + std::string(depth, '}');
  CHECK_ERROR(objects, "nested deeper");
  // Unclosed: deep and truncated at once.
  CHECK_ERROR(std::string(depth, '['), "nested deeper");
  // Brackets inside a string do not nest.
  auto cmd = command_of(
      answer_with(R"({"profiling_mode": ")" + std::string(60, '[') + "\"}"));
  BOOST_CHECK_EQUAL(cmd.profiling_mode, std::string(60, '['));
}

BOOST_AUTO_TEST_CASE(truncated_and_non_json_answers) {
  auto full = answer_with(
      R"({"duration": 60, "pids": [1, 2], "target_hostnames": ["h"]})");
  BOOST_REQUIRE(rt::parse_heartbeat_answer(full));
  // Every proper prefix is an error, never a command.
  for (size_t n = 0; n < full.size(); ++n) {
    auto r = rt::parse_heartbeat_answer(std::string_view{full}.substr(0, n));
    BOOST_CHECK_MESSAGE(!r, "prefix of " << n << " bytes parsed");
  }
  CHECK_ERROR(full.substr(0, full.size() / 2), "not JSON");
  CHECK_ERROR("", "not JSON");
  CHECK_ERROR("<html>502 Bad Gateway</html>", "not JSON");
  CHECK_ERROR(std::string("{\"success\": true}\0garbage", 25), "not JSON");
  CHECK_ERROR("[]", "it is an array, not a JSON object");
  CHECK_ERROR("null", "it is null");
  CHECK_ERROR("42", "it is a number");
  CHECK_ERROR("\"x\"", "it is a string");
}

BOOST_AUTO_TEST_CASE(success_false_is_an_error_with_the_message) {
  CHECK_ERROR(R"({"success": false, "message": "Internal error\u001b[2J"})",
              "\"success\" is false: Internal error [2J");
  CHECK_ERROR(R"({"success": false})", "\"success\" is false: (no message)");
  // Even with a command: Studio said it failed.
  CHECK_ERROR(R"({"success": false, "message": "m", "profiling_command":
                  {"command_type": "start"}, "command_id": "c"})",
              "\"success\" is false");
}

BOOST_AUTO_TEST_SUITE_END()

// -- the ledger
// ------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(command_ledger)

BOOST_AUTO_TEST_CASE(missing_file_is_an_empty_ledger) {
  temp_dir dir;
  auto ledger = rt::command_ledger::open(dir.path + "/ledger");
  BOOST_REQUIRE(ledger);
  BOOST_CHECK(ledger->ids().empty());
  BOOST_CHECK(!ledger->contains("a"));
  // Opening writes nothing.
  BOOST_CHECK(!std::filesystem::exists(dir.path + "/ledger"));
}

BOOST_AUTO_TEST_CASE(round_trip_across_open) {
  temp_dir dir;
  auto path = dir.path + "/ledger";
  {
    auto ledger = rt::command_ledger::open(path);
    BOOST_REQUIRE(ledger);
    for (auto id : {"cmd-3", "cmd-1", "6f1c2a9e-7b1d-4c8e-9a55-0d2f3b4c5d6e"})
      BOOST_REQUIRE(ledger->add(id));
    // An id already known changes nothing.
    BOOST_REQUIRE(ledger->add("cmd-1"));
    BOOST_CHECK_EQUAL(ledger->ids().size(), 3u);
  }
  auto again = rt::command_ledger::open(path);
  BOOST_REQUIRE(again);
  BOOST_CHECK((again->ids()
               == std::vector<std::string>{
                   "cmd-3", "cmd-1", "6f1c2a9e-7b1d-4c8e-9a55-0d2f3b4c5d6e"}));
  BOOST_CHECK(again->contains("cmd-1"));
  BOOST_CHECK(!again->contains("cmd-2"));
  BOOST_CHECK_EQUAL(read_file(path), "gpa-command-ledger 1\ncmd-3\ncmd-1\n"
                                     "6f1c2a9e-7b1d-4c8e-9a55-0d2f3b4c5d6e\n");
  struct stat st {};
  BOOST_REQUIRE(::lstat(path.c_str(), &st) == 0);
  BOOST_CHECK(S_ISREG(st.st_mode));
  BOOST_CHECK_EQUAL(st.st_mode & 0777, 0600u);
  // No temporary file is left behind.
  size_t entries = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir.path))
    ++entries;
  BOOST_CHECK_EQUAL(entries, 1u);
}

BOOST_AUTO_TEST_CASE(keeps_the_newest_1000) {
  temp_dir dir;
  auto path = dir.path + "/ledger";
  auto ledger = rt::command_ledger::open(path);
  BOOST_REQUIRE(ledger);
  for (int i = 0; i < 1005; ++i)
    BOOST_REQUIRE(ledger->add("id-" + std::to_string(i)));
  BOOST_CHECK_EQUAL(ledger->ids().size(), 1000u);
  BOOST_CHECK_EQUAL(ledger->ids().front(), "id-5");
  BOOST_CHECK_EQUAL(ledger->ids().back(), "id-1004");
  BOOST_CHECK(!ledger->contains("id-4"));
  BOOST_CHECK(ledger->contains("id-5"));
  auto again = rt::command_ledger::open(path);
  BOOST_REQUIRE(again);
  BOOST_CHECK(again->ids() == ledger->ids());

  // A file with more (written by hand) keeps its newest 1000 too.
  std::string text = "gpa-command-ledger 1\n";
  for (int i = 0; i < 1500; ++i)
    text += "x" + std::to_string(i) + "\n";
  write_file(path, text);
  again = rt::command_ledger::open(path);
  BOOST_REQUIRE(again);
  BOOST_CHECK_EQUAL(again->ids().size(), 1000u);
  BOOST_CHECK_EQUAL(again->ids().front(), "x500");
  BOOST_CHECK(!again->contains("x499"));
}

BOOST_AUTO_TEST_CASE(a_symlink_is_refused_and_not_followed) {
  temp_dir dir;
  auto path = dir.path + "/ledger";
  auto target = dir.path + "/precious";
  // The target is a valid ledger: reading through the link would succeed.
  const std::string precious = "gpa-command-ledger 1\nplanted\n";
  write_file(target, precious);
  BOOST_REQUIRE(::symlink(target.c_str(), path.c_str()) == 0);
  auto ledger = rt::command_ledger::open(path);
  BOOST_REQUIRE(!ledger);
  auto msg = message_of(ledger.error());
  BOOST_CHECK_MESSAGE(msg.find(path) != std::string::npos, msg);
  BOOST_CHECK_MESSAGE(msg.find("symbolic link") != std::string::npos, msg);

  // A link planted after open(): add() replaces it, never writes through it.
  ::unlink(path.c_str());
  auto fresh = rt::command_ledger::open(path);
  BOOST_REQUIRE(fresh);
  BOOST_REQUIRE(::symlink(target.c_str(), path.c_str()) == 0);
  BOOST_REQUIRE(fresh->add("cmd-1"));
  BOOST_CHECK_EQUAL(read_file(target), precious);
  struct stat st {};
  BOOST_REQUIRE(::lstat(path.c_str(), &st) == 0);
  BOOST_CHECK(S_ISREG(st.st_mode));
  BOOST_CHECK_EQUAL(read_file(path), "gpa-command-ledger 1\ncmd-1\n");

  // A dangling link: refused as well.
  ::unlink(path.c_str());
  BOOST_REQUIRE(::symlink((dir.path + "/nowhere").c_str(), path.c_str()) == 0);
  BOOST_CHECK(!rt::command_ledger::open(path));
  BOOST_CHECK(!std::filesystem::exists(dir.path + "/nowhere"));
}

BOOST_AUTO_TEST_CASE(garbage_is_an_error_naming_path_and_what) {
  temp_dir dir;
  auto path = dir.path + "/ledger";
  auto expect = [&](const std::string& text, const std::string& part) {
    write_file(path, text);
    auto ledger = rt::command_ledger::open(path);
    BOOST_REQUIRE_MESSAGE(!ledger, "'" << text.substr(0, 60) << "' opened");
    auto msg = message_of(ledger.error());
    BOOST_CHECK_MESSAGE(msg.find(path) != std::string::npos, msg);
    BOOST_CHECK_MESSAGE(msg.find(part) != std::string::npos,
                        "'" << msg << "' does not name '" << part << "'");
    BOOST_CHECK_LT(msg.size(), 400u);
  };
  expect("hello\n", "not a command ledger (its first line is \"hello\"");
  expect(std::string("\x7f"
                     "ELF\x02\x01\x01\0\0\0",
                     10),
         "not a command ledger");
  expect("", "it is empty");
  expect("gpa-command-ledger 2\nx\n", "not a command ledger");
  expect("gpa-command-ledger 1\nok\nnot ok\n", "line 3 is not a command id");
  expect("gpa-command-ledger 1\n\n", "line 2 is not a command id: it is empty");
  expect("gpa-command-ledger 1\n" + std::string(200, 'a') + "\n",
         "line 2 is not a command id: it is 200 characters long");
  expect("gpa-command-ledger 1\n" + std::string(300 * 1024, 'a'),
         "larger than a ledger can be");
  // Without its last newline, a ledger is still read.
  write_file(path, "gpa-command-ledger 1\na\nb");
  auto ok = rt::command_ledger::open(path);
  BOOST_REQUIRE(ok);
  BOOST_CHECK((ok->ids() == std::vector<std::string>{"a", "b"}));
}

BOOST_AUTO_TEST_CASE(special_files_are_refused_without_blocking) {
  temp_dir dir;
  auto fifo = dir.path + "/fifo";
  BOOST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  auto r = rt::command_ledger::open(fifo);
  BOOST_REQUIRE(!r);
  BOOST_CHECK_MESSAGE(message_of(r.error()).find("FIFO") != std::string::npos,
                      message_of(r.error()));
  r = rt::command_ledger::open(dir.path);
  BOOST_REQUIRE(!r);
  BOOST_CHECK_MESSAGE(message_of(r.error()).find(dir.path) != std::string::npos,
                      message_of(r.error()));
  BOOST_CHECK(!rt::command_ledger::open(""));
}

BOOST_AUTO_TEST_CASE(add_refuses_bad_ids_and_reports_write_failures) {
  temp_dir dir;
  auto ledger = rt::command_ledger::open(dir.path + "/ledger");
  BOOST_REQUIRE(ledger);
  auto bad = ledger->add("a/b");
  BOOST_REQUIRE(!bad);
  BOOST_CHECK(!ledger->contains("a/b"));
  BOOST_CHECK(!ledger->add(std::string(129, 'a')));
  BOOST_CHECK(!std::filesystem::exists(dir.path + "/ledger"));

  // The directory is gone: an error naming the ledger, and the id is still
  // remembered for this run.
  auto path = dir.path + "/gone/ledger";
  auto orphan = rt::command_ledger::open(path);
  BOOST_REQUIRE(orphan);
  auto r = orphan->add("cmd-1");
  BOOST_REQUIRE(!r);
  BOOST_CHECK_MESSAGE(message_of(r.error()).find(path) != std::string::npos,
                      message_of(r.error()));
  BOOST_CHECK(orphan->contains("cmd-1"));
}

BOOST_AUTO_TEST_SUITE_END()

// -- the client against the stand-in Studio
// ---------------------------------------------

namespace {

const std::string token = "tok-5ecret-0123456789";
const std::string service = "svc-control";

/// A client of `server` with `tok` (the secret of its HTTP client too).
rt::studio_client client_of(test::test_server& server,
                            const std::string& tok = token) {
  rt::http_client_options opts;
  opts.secrets = {tok};
  return rt::studio_client{rt::make_curl_http_client(opts), server.url() + "/",
                           tok};
}

rt::heartbeat_info info_of(const std::string& host) {
  rt::heartbeat_info info;
  info.hostname = host;
  info.ip_address = "127.0.0.1";
  info.service_name = service;
  info.now_ms = 1714557600000;
  return info;
}

/// Statuses the server answered, in order, for requests to `path`.
std::vector<int> statuses(test::test_server& server, const std::string& path) {
  std::vector<int> out;
  auto recs = server.requests();
  for (auto& r : recs->GetArray())
    if (r["path"].GetString() == path)
      out.push_back(r["status"].GetInt());
  return out;
}

std::string
must_fail(const caf::expected<std::optional<rt::studio_command>>& r) {
  BOOST_REQUIRE_MESSAGE(!r, "the heartbeat succeeded");
  auto msg = describe(r.error());
  BOOST_CHECK_MESSAGE(msg.find(token) == std::string::npos, msg);
  BOOST_CHECK_MESSAGE(msg.find("5ecret") == std::string::npos, msg);
  return msg;
}

} // namespace

BOOST_AUTO_TEST_SUITE(studio_client_real)

BOOST_AUTO_TEST_CASE(a_queued_command_arrives_parsed) {
  test::test_server server{token, service};
  auto client = client_of(server);
  // Nothing queued: a heartbeat without a command.
  auto none = client.heartbeat(info_of("web-01"));
  BOOST_REQUIRE_MESSAGE(none, why(none));
  BOOST_CHECK(!none->has_value());

  auto id = server.queue_command(
      R"({"command_type": "start", "hostname": "web-01", "combined_config":
          {"duration": 30, "frequency": 7, "continuous": false,
           "profiling_mode": "cpu", "pids": "11,22",
           "target_hostnames": ["web-01"], "enable_perfspect": false}})");
  // Another host's heartbeat does not get it.
  auto other = client.heartbeat(info_of("web-02"));
  BOOST_REQUIRE(other);
  BOOST_CHECK(!other->has_value());

  auto got = client.heartbeat(info_of("web-01"));
  BOOST_REQUIRE_MESSAGE(got, why(got));
  BOOST_REQUIRE(got->has_value());
  auto& cmd = **got;
  BOOST_CHECK_EQUAL(cmd.id, id);
  BOOST_CHECK_EQUAL(cmd.type, "start");
  BOOST_CHECK_EQUAL(cmd.duration_s.value_or(0), 30);
  BOOST_CHECK_EQUAL(cmd.frequency.value_or(0), 7);
  BOOST_CHECK(!cmd.continuous);
  BOOST_CHECK_EQUAL(cmd.profiling_mode, "cpu");
  BOOST_CHECK((cmd.pids == std::vector<int64_t>{11, 22}));
  BOOST_CHECK((cmd.target_hostnames == std::vector<std::string>{"web-01"}));

  // Handed out once, as Studio marks it sent.
  auto after = client.heartbeat(info_of("web-01"));
  BOOST_REQUIRE(after);
  BOOST_CHECK(!after->has_value());

  // The server checked every request (a 422 or 401 would show here), and
  // the heartbeats it kept are gProfiler's.
  BOOST_CHECK((statuses(server, "/api/metrics/heartbeat")
               == std::vector<int>{200, 200, 200, 200}));
  auto beats = server.heartbeats();
  BOOST_REQUIRE_EQUAL(beats->Size(), 4u);
  auto& first = (*beats)[0];
  BOOST_CHECK_EQUAL(first["hostname"].GetString(), "web-01");
  BOOST_CHECK_EQUAL(first["service_name"].GetString(), service);
  BOOST_CHECK(first["last_command_id"].IsNull());
  BOOST_CHECK_EQUAL(first["timestamp"].GetString(), "2024-05-01T10:00:00.000Z");
  // Sent as a bearer token over one kept-alive connection.
  auto recs = server.requests();
  BOOST_CHECK_EQUAL((*recs)[0]["headers"]["authorization"].GetString(),
                    "Bearer " + token);
  BOOST_CHECK_EQUAL((*recs)[0]["conn"].GetInt(), (*recs)[3]["conn"].GetInt());
}

BOOST_AUTO_TEST_CASE(repeated_commands_and_last_command_id) {
  test::test_server server{token, service};
  auto client = client_of(server);
  auto id = server.queue_command(
      R"({"command_id": "stop-7", "command_type": "stop", "deliver": "always",
          "combined_config": {"stop_level": "process", "pids": [42]}})");
  BOOST_CHECK_EQUAL(id, "stop-7");
  // Handed out again and again (the agent deduplicates by id) ...
  for (int i = 0; i < 2; ++i) {
    auto got = client.heartbeat(info_of("any-host"));
    BOOST_REQUIRE(got && got->has_value());
    BOOST_CHECK_EQUAL((*got)->id, "stop-7");
    BOOST_CHECK_EQUAL((*got)->type, "stop");
    BOOST_CHECK_EQUAL((*got)->stop_level, "process");
    BOOST_CHECK((*got)->pids == std::vector<int64_t>{42});
  }
  // ... but never to the agent that says it has it.
  auto info = info_of("any-host");
  info.last_command_id = "stop-7";
  info.received_ids = {"stop-7"};
  info.executed_ids = {"stop-7"};
  auto got = client.heartbeat(info);
  BOOST_REQUIRE(got);
  BOOST_CHECK(!got->has_value());
  auto beats = server.heartbeats();
  auto& last = (*beats)[beats->Size() - 1];
  BOOST_CHECK_EQUAL(last["last_command_id"].GetString(), "stop-7");
  BOOST_CHECK_EQUAL(last["executed_command_ids"][0].GetString(), "stop-7");
}

BOOST_AUTO_TEST_CASE(completions_are_recorded) {
  test::test_server server{token, service};
  auto client = client_of(server);
  auto id = server.queue_command(R"({"command_type": "start"})");
  auto got = client.heartbeat(info_of("web-01"));
  BOOST_REQUIRE(got && got->has_value());
  auto r = client.report_completion(id, "web-01", "completed", 65, "");
  BOOST_REQUIRE_MESSAGE(r, why(r));
  r = client.report_completion(id, "web-01", "failed", 3,
                               "perf failed: \"no such event\"");
  BOOST_REQUIRE_MESSAGE(r, why(r));
  auto done = server.completions();
  BOOST_REQUIRE_EQUAL(done->Size(), 2u);
  auto& a = (*done)[0];
  BOOST_CHECK_EQUAL(a["command_id"].GetString(), id);
  BOOST_CHECK_EQUAL(a["hostname"].GetString(), "web-01");
  BOOST_CHECK_EQUAL(a["status"].GetString(), "completed");
  BOOST_CHECK_EQUAL(a["execution_time"].GetInt(), 65);
  BOOST_CHECK(a["error_message"].IsNull());
  BOOST_CHECK(a["results_path"].IsNull());
  auto& b = (*done)[1];
  BOOST_CHECK_EQUAL(b["status"].GetString(), "failed");
  BOOST_CHECK_EQUAL(b["error_message"].GetString(),
                    "perf failed: \"no such event\"");

  // A command never handed to this host: Studio's 404, named.
  r = client.report_completion("never-sent", "web-01", "completed", 0, "");
  BOOST_REQUIRE(!r);
  BOOST_CHECK_MESSAGE(describe(r.error()).find("HTTP 404") != std::string::npos,
                      describe(r.error()));
  // Bad arguments are not sent at all.
  auto before = server.requests()->Size();
  BOOST_CHECK(!client.report_completion(id, "web-01", "done", 0, ""));
  BOOST_CHECK(!client.report_completion("a b", "web-01", "failed", 0, ""));
  BOOST_CHECK_EQUAL(server.requests()->Size(), before);
  BOOST_CHECK_EQUAL(server.completions()->Size(), 2u);
}

BOOST_AUTO_TEST_CASE(error_statuses_are_named_without_the_token) {
  test::test_server server{token, service};
  // A wrong token: the server's 401 echoes it; the error names the status
  // and not the token.
  const std::string wrong = "wr0ng-t0ken-abcdefghij";
  auto bad = client_of(server, wrong);
  auto r = bad.heartbeat(info_of("h"));
  BOOST_REQUIRE(!r);
  auto msg = describe(r.error());
  BOOST_CHECK_MESSAGE(msg.find("HTTP 401") != std::string::npos, msg);
  BOOST_CHECK_MESSAGE(msg.find(wrong) == std::string::npos, msg);
  BOOST_CHECK_MESSAGE(msg.find("Invalid token") != std::string::npos, msg);
  auto c = bad.report_completion("x", "h", "completed", 0, "");
  BOOST_REQUIRE(!c);
  BOOST_CHECK(describe(c.error()).find("HTTP 401") != std::string::npos);
  BOOST_CHECK(describe(c.error()).find(wrong) == std::string::npos);

  // A connection reset before any answer, on a fresh connection (on a
  // reused one, libcurl itself sends the request again once).
  auto client = client_of(server);
  server.control_faults({"reset"});
  msg = must_fail(client.heartbeat(info_of("h")));
  BOOST_CHECK_MESSAGE(msg.find("heartbeat failed: POST") != std::string::npos,
                      msg);

  server.control_faults({"500", "garbage", "deep"});
  msg = must_fail(client.heartbeat(info_of("h")));
  BOOST_CHECK_MESSAGE(msg.find("HTTP 500") != std::string::npos, msg);
  BOOST_CHECK_MESSAGE(msg.find("Internal server error") != std::string::npos,
                      msg);
  msg = must_fail(client.heartbeat(info_of("h")));
  BOOST_CHECK_MESSAGE(msg.find("not JSON") != std::string::npos, msg);
  msg = must_fail(client.heartbeat(info_of("h")));
  BOOST_CHECK_MESSAGE(msg.find("nested deeper") != std::string::npos, msg);
  // And the next one goes through again.
  auto ok = client.heartbeat(info_of("h"));
  BOOST_REQUIRE_MESSAGE(ok, why(ok));
}

BOOST_AUTO_TEST_CASE(server_down_is_an_error) {
  test::test_server server{token, service};
  auto client = client_of(server);
  BOOST_REQUIRE(client.heartbeat(info_of("h")));
  server.down();
  auto msg = must_fail(client.heartbeat(info_of("h")));
  BOOST_CHECK_MESSAGE(msg.find("heartbeat failed") != std::string::npos, msg);
  BOOST_CHECK_MESSAGE(msg.find("127.0.0.1") != std::string::npos, msg);
  auto c = client.report_completion("x", "h", "completed", 0, "");
  BOOST_REQUIRE(!c);
  BOOST_CHECK(describe(c.error()).find(token) == std::string::npos);
  server.up();
  auto ok = client.heartbeat(info_of("h"));
  BOOST_REQUIRE_MESSAGE(ok, why(ok));
}

BOOST_AUTO_TEST_CASE(interrupt_ends_a_request_in_flight) {
  test::test_server server{token, service};
  server.configure(4 * 1024 * 1024, 20.0);
  server.control_faults({"slow"});
  auto client = client_of(server);
  auto start = std::chrono::steady_clock::now();
  std::thread stopper{[&] {
    // Once the server holds the request.
    test::wait_until([&] {
      return !statuses(server, "/api/metrics/heartbeat").empty();
    });
    client.interrupt();
  }};
  auto r = client.heartbeat(info_of("h"));
  stopper.join();
  BOOST_REQUIRE(!r);
  BOOST_CHECK(std::chrono::steady_clock::now() - start < 15s);
  // Every later request fails at once.
  auto again = client.heartbeat(info_of("h"));
  BOOST_REQUIRE(!again);
  BOOST_CHECK_MESSAGE(describe(again.error()).find("interrupted")
                          != std::string::npos,
                      describe(again.error()));
}

BOOST_AUTO_TEST_SUITE_END()

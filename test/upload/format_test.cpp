// The upload formats as pure functions: times, URLs, the JSON body, the size
// rule, Pyroscope's folded text, the spool record, gzip and redaction.

#include <boost/test/unit_test.hpp>

#include <limits>
#include <map>

#include <rapidjson/document.h>

#include "format/col_reader.hpp"
#include "format/time.hpp"
#include "runtime/error.hpp"
#include "runtime/gzip.hpp"
#include "runtime/http_client.hpp"
#include "test/support/helpers.hpp"
#include "test/support/test_server.hpp"
#include "upload/format.hpp"

using namespace gpa;
using namespace gpa::upload;

namespace {

/// Sum of counts per "<prefix>;<comm>" key, and in total.
std::map<std::string, uint64_t>
counts_per_process(const std::string& col, size_t key_fields, uint64_t& total) {
  std::map<std::string, uint64_t> result;
  total = 0;
  size_t pos = 0;
  while (pos < col.size()) {
    auto nl = col.find('\n', pos);
    auto line = col.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty() || line[0] == '#')
      continue;
    auto sp = line.rfind(' ');
    auto n = std::stoull(line.substr(sp + 1));
    auto stack = line.substr(0, sp);
    // The key: the first `key_fields` fields.
    size_t cut = std::string::npos;
    size_t from = 0;
    for (size_t i = 0; i < key_fields; ++i) {
      cut = stack.find(';', from);
      if (cut == std::string::npos)
        break;
      from = cut + 1;
    }
    result[cut == std::string::npos ? stack : stack.substr(0, cut)] += n;
    total += n;
  }
  return result;
}

} // namespace

BOOST_AUTO_TEST_SUITE(upload_format)

BOOST_AUTO_TEST_CASE(iso_times_are_gprofilers) {
  BOOST_CHECK_EQUAL(format::iso8601(0, format::time_precision::seconds),
                    "1970-01-01T00:00:00");
  BOOST_CHECK_EQUAL(
      format::iso8601(1714557600999, format::time_precision::seconds),
      "2024-05-01T10:00:00");
  BOOST_CHECK_EQUAL(
      format::iso8601(1714557600999, format::time_precision::milliseconds),
      "2024-05-01T10:00:00.999Z");
  BOOST_CHECK_EQUAL(format::iso8601(-1, format::time_precision::milliseconds),
                    "1969-12-31T23:59:59.999Z");
  BOOST_CHECK_EQUAL(*format::parse_iso8601("2024-05-01T10:00:00"),
                    1714557600000);
  BOOST_CHECK_EQUAL(*format::parse_iso8601("2024-05-01T10:00:00.250Z"),
                    1714557600250);
  BOOST_CHECK(!format::parse_iso8601("2024-05-01 10:00:00"));
  BOOST_CHECK(!format::parse_iso8601("2024-05-01T10:00:00+02:00"));
}

BOOST_AUTO_TEST_CASE(urls_encode_every_query_value) {
  studio_identity id;
  id.server_host = "https://ps.example.com/";
  id.token = "a b&c=d";
  id.service_name = "svc/1";
  id.hostname = "h";
  id.version = "0.1.0";
  BOOST_CHECK_EQUAL(profiles_url(id, 1714557600000),
                    "https://ps.example.com/api/v2/profiles?key=a%20b%26c%3Dd"
                    "&service=svc%2F1&hostname=h"
                    "&timestamp=2024-05-01T10%3A00%3A00&version=0.1.0");
  BOOST_CHECK_EQUAL(health_check_url(id, 0),
                    "https://ps.example.com/api/v1/health_check?key=a%20b%26c"
                    "%3Dd&service=svc%2F1&hostname=h"
                    "&timestamp=1970-01-01T00%3A00%3A00");
  BOOST_CHECK_EQUAL(
      pyroscope_url("http://p:4040", "app.cpu", "env=x", 10, 70, 11),
      "http://p:4040/ingest?name=app.cpu%7Benv%3Dx%7D&from=10"
      "&until=70&format=folded&sampleRate=11");
  BOOST_CHECK_EQUAL(pyroscope_url("http://p:4040", "app", "", 1, 2, 3),
                    "http://p:4040/ingest?name=app&from=1&until=2"
                    "&format=folded&sampleRate=3");
}

BOOST_AUTO_TEST_CASE(body_has_exactly_gprofilers_fields) {
  auto p = test::make_profile(3);
  p.col += "bad\xff utf8;x 1\n";
  studio_identity id;
  id.hostname = "host-1";
  id.spawn_time_ms = 1714550000000;
  std::string out;
  studio_body(p, p.col, id, "1001", out);
  rapidjson::Document doc;
  doc.Parse(out.data(), out.size());
  BOOST_REQUIRE(!doc.HasParseError() && doc.IsObject());
  BOOST_CHECK_EQUAL(doc.MemberCount(), 8u);
  BOOST_CHECK_EQUAL(doc["start_time"].GetString(),
                    std::string{"2024-05-01T10:03:00"});
  BOOST_CHECK_EQUAL(doc["end_time"].GetString(),
                    std::string{"2024-05-01T10:04:00"});
  BOOST_CHECK_EQUAL(doc["spawn_time"].GetString(),
                    std::string{"2024-05-01T07:53:20"});
  BOOST_CHECK_EQUAL(doc["hostname"].GetString(), std::string{"host-1"});
  BOOST_CHECK_EQUAL(doc["gpid"].GetString(), std::string{"1001"});
  BOOST_CHECK_EQUAL(doc["cpu_avg"].GetDouble(), 12.5);
  BOOST_CHECK_EQUAL(doc["mem_avg"].GetDouble(), 40.25);
  std::string prof = doc["profile"].GetString();
  // Invalid UTF-8 became U+FFFD; everything else is the text as it was.
  BOOST_CHECK(prof.find("bad\xEF\xBF\xBD utf8;x 1\n") != std::string::npos);
  BOOST_CHECK_EQUAL(prof.substr(0, p.col.size() - 12),
                    p.col.substr(0, p.col.size() - 12));
}

BOOST_AUTO_TEST_CASE(unknown_metrics_are_sent_as_null) {
  // No reading, or --disable-metrics-collection: gProfiler sends None.
  auto p = test::make_profile(3);
  p.cpu_avg = -1;
  p.mem_avg = std::numeric_limits<double>::quiet_NaN();
  studio_identity id;
  std::string out;
  studio_body(p, p.col, id, "", out);
  rapidjson::Document doc;
  doc.Parse(out.data(), out.size());
  BOOST_REQUIRE(!doc.HasParseError() && doc.IsObject());
  BOOST_CHECK(doc["cpu_avg"].IsNull());
  BOOST_CHECK(doc["mem_avg"].IsNull());
  p.cpu_avg = 0;
  studio_body(p, p.col, id, "", out);
  doc.Parse(out.data(), out.size());
  BOOST_CHECK_EQUAL(doc["cpu_avg"].GetDouble(), 0.0);
}

BOOST_AUTO_TEST_CASE(gpid_and_messages_from_responses) {
  BOOST_CHECK_EQUAL(parse_gpid(R"({"message":"ok","gpid":42})"), "42");
  BOOST_CHECK_EQUAL(parse_gpid(R"({"message":"ok","gpid":"43"})"), "43");
  BOOST_CHECK_EQUAL(parse_gpid(R"({"message":"ok"})"), "");
  BOOST_CHECK_EQUAL(parse_gpid("<html>"), "");
  BOOST_CHECK_EQUAL(response_message(R"({"message":"bad key"})"), "bad key");
  BOOST_CHECK_EQUAL(response_message(R"({"message":{"a":1}})"), R"({"a":1})");
  BOOST_CHECK_EQUAL(response_message("line1\nline2"), "line1line2");
  BOOST_CHECK_EQUAL(response_message(""), "(empty response)");
}

BOOST_AUTO_TEST_CASE(deeply_nested_answers_are_not_parsed) {
  // The server, or anyone on an http:// path, writes the answer: nesting
  // that would overflow a recursive parser's stack is refused unread.
  for (size_t depth : {size_t{100000}, size_t{1000000}}) {
    auto deep = R"({"message": "ok", "gpid": 7, "x": )"
                + std::string(depth, '[') + std::string(depth, ']') + "}";
    BOOST_CHECK_EQUAL(parse_gpid(deep), "");
    // The message falls back to the start of the body.
    BOOST_CHECK_EQUAL(response_message(deep), deep.substr(0, 300));
    // Truncated (a response cap cuts it): still refused, no crash.
    BOOST_CHECK_EQUAL(parse_gpid(deep.substr(0, deep.size() / 2)), "");
  }
  // 64 levels are still read.
  auto ok = R"({"gpid": 8, "x": )" + std::string(63, '[') + std::string(63, ']')
            + "}";
  BOOST_CHECK_EQUAL(parse_gpid(ok), "8");
}

BOOST_AUTO_TEST_CASE(prefix_fields_follow_the_header) {
  using format::read_col_header;
  BOOST_CHECK_EQUAL(read_col_header(test::col_header(false)).prefix_fields(),
                    1u);
  BOOST_CHECK_EQUAL(read_col_header(test::col_header(true)).prefix_fields(),
                    2u);
  // No header: folded text, the comm comes first.
  BOOST_CHECK_EQUAL(read_col_header("no header\n").prefix_fields(), 0u);
}

BOOST_AUTO_TEST_CASE(fold_keeps_every_count_per_process) {
  std::string col = test::col_header();
  for (int i = 0; i < 100; ++i)
    col += "c" + std::to_string(i % 2) + ";proc" + std::to_string(i % 3)
           + ";frame_" + std::to_string(i) + ";leaf " + std::to_string(i + 1)
           + "\n";
  uint64_t before_total = 0;
  auto before = counts_per_process(col, 2, before_total);
  fold_stats st;
  auto folded = fold_small_stacks(col, col.size() / 2, &st);
  BOOST_CHECK(folded.size() <= col.size() / 2);
  BOOST_CHECK(st.folded_lines > 0);
  uint64_t after_total = 0;
  auto after = counts_per_process(folded, 2, after_total);
  BOOST_CHECK_EQUAL(after_total, before_total);
  BOOST_CHECK(after == before);
  // The header stays first; the largest stacks stay; one [other] per process.
  BOOST_CHECK_EQUAL(folded.substr(0, test::col_header().size()),
                    test::col_header());
  BOOST_CHECK(folded.find("c1;proc0;frame_99;leaf 100\n") != std::string::npos);
  BOOST_CHECK(folded.find("c0;proc0;frame_0;leaf 1\n") == std::string::npos);
  BOOST_CHECK(folded.find("c0;proc0;[other] ") != std::string::npos);
  BOOST_CHECK_EQUAL(st.other_lines, 6u); // 2 containers x 3 comms
  // Folding again merges into the same [other] lines.
  auto twice = fold_small_stacks(folded, folded.size() / 2, &st);
  uint64_t twice_total = 0;
  BOOST_CHECK(counts_per_process(twice, 2, twice_total) == before);
  size_t others = 0;
  for (auto pos = twice.find("[other]"); pos != std::string::npos;
       pos = twice.find("[other]", pos + 1))
    ++others;
  BOOST_CHECK_EQUAL(others, 6u);
}

BOOST_AUTO_TEST_CASE(fold_respects_application_metadata_prefix) {
  // With application metadata the key is "<index>;<container>;<comm>".
  std::string col = test::col_header(true);
  col += "0;ctr;java;main;" + std::string(100, 'x') + " 500\n";
  for (int i = 0; i < 30; ++i) {
    col += "0;ctr;java;main;small_" + std::to_string(i) + " 1\n";
    col += "1;;py;run;small_" + std::to_string(i) + " 2\n";
  }
  uint64_t before_total = 0;
  auto before = counts_per_process(col, 3, before_total);
  auto folded = fold_small_stacks(col, col.size() / 2);
  BOOST_CHECK(folded.size() <= col.size() / 2);
  BOOST_CHECK(folded.find("0;ctr;java;[other] ") != std::string::npos);
  BOOST_CHECK(folded.find("1;;py;[other] ") != std::string::npos);
  BOOST_CHECK(folded.find(std::string(100, 'x') + " 500\n")
              != std::string::npos);
  uint64_t after_total = 0;
  BOOST_CHECK(counts_per_process(folded, 3, after_total) == before);
  BOOST_CHECK_EQUAL(after_total, before_total);
}

BOOST_AUTO_TEST_CASE(folded_for_pyroscope_has_no_prefix_and_merges) {
  std::string col = test::col_header() + "c1;app;f;g 2\nc2;app;f;g 3\n"
                    + ";bash;main 1\nnot a stack line\n";
  BOOST_CHECK_EQUAL(col_to_folded(col), "app;f;g 5\nbash;main 1\n");
  std::string meta = test::col_header(true) + "3;c1;app;f 2\n";
  BOOST_CHECK_EQUAL(col_to_folded(meta), "app;f 2\n");
}

BOOST_AUTO_TEST_CASE(spool_record_round_trip) {
  auto p = test::make_profile(12);
  p.cpu_avg = 0.1;
  auto back = from_spool_record(to_spool_record(p));
  BOOST_REQUIRE(back);
  BOOST_CHECK_EQUAL(back->snapshot_id, 12u);
  BOOST_CHECK_EQUAL(back->start_ms, p.start_ms);
  BOOST_CHECK_EQUAL(back->end_ms, p.end_ms);
  BOOST_CHECK_EQUAL(back->total_samples, p.total_samples);
  BOOST_CHECK_EQUAL(back->cpu_avg, 0.1);
  BOOST_CHECK_EQUAL(back->mem_avg, p.mem_avg);
  BOOST_CHECK_EQUAL(back->col, p.col);
  BOOST_CHECK(!from_spool_record("garbage"));
  BOOST_CHECK(!from_spool_record("gpa-spool 2 1 2 3 4 5 6\nx"));
}

BOOST_AUTO_TEST_CASE(gzip_round_trip_and_limits) {
  std::string text;
  for (int i = 0; i < 100000; ++i)
    text += "line " + std::to_string(i) + "\n";
  auto gz = rt::gzip_compress(text);
  BOOST_REQUIRE(gz);
  BOOST_CHECK(gz->size() < text.size() / 3);
  BOOST_CHECK_EQUAL(static_cast<unsigned char>((*gz)[0]), 0x1F);
  BOOST_CHECK_EQUAL(static_cast<unsigned char>((*gz)[1]), 0x8B);
  auto back = rt::gzip_decompress(*gz);
  BOOST_REQUIRE(back);
  BOOST_CHECK(*back == text);
  BOOST_CHECK(!rt::gzip_decompress(*gz, 1000));
  BOOST_CHECK(!rt::gzip_decompress(gz->substr(0, gz->size() / 2)));
  auto empty = rt::gzip_compress("");
  BOOST_REQUIRE(empty);
  BOOST_CHECK_EQUAL(*rt::gzip_decompress(*empty), "");
}

BOOST_AUTO_TEST_CASE(redact_hides_secrets_and_key_values) {
  BOOST_CHECK_EQUAL(rt::redact("GET http://h/x?key=abc&service=s failed", {}),
                    "GET http://h/x?key=***&service=s failed");
  BOOST_CHECK_EQUAL(rt::redact("invalid key s3cr3t here", {"s3cr3t"}),
                    "invalid key *** here");
  BOOST_CHECK_EQUAL(rt::redact("monkey=1", {}), "monkey=1");
  BOOST_CHECK_EQUAL(rt::redact("a?key=", {}), "a?key=***");
}

BOOST_AUTO_TEST_CASE(redact_replaces_short_secrets_only_as_whole_words) {
  // A 3-letter token used to turn every "get" into "g***".
  BOOST_CHECK_EQUAL(rt::redact("target get: et invalid", {"et"}),
                    "target get: *** invalid");
  BOOST_CHECK_EQUAL(rt::redact("token 'et' at end et", {"et"}),
                    "token '***' at end ***");
  BOOST_CHECK_EQUAL(rt::redact("Couldn't connect to http://h", {"t"}),
                    "Couldn't connect to http://h");
  // Long secrets are replaced wherever they occur.
  BOOST_CHECK_EQUAL(rt::redact("xS3cr3tT0kenx", {"S3cr3tT0ken"}), "x***x");
}

BOOST_AUTO_TEST_CASE(curl_client_never_sends_a_broken_header) {
  // The configuration refuses such values; the client is the second line:
  // the request does not leave the agent at all.
  test::test_server server{"T", "S"};
  auto http = rt::make_curl_http_client({});
  for (auto bad : {std::string{"T\r\nX-Injected: yes"}, std::string{"T\n"},
                   std::string{"T\0", 2}}) {
    rt::http_request req;
    req.url = server.url() + "/api/v1/health_check?key=T";
    req.headers.emplace_back("GPROFILER-API-KEY", bad);
    auto resp = http->send(req);
    BOOST_REQUIRE(!resp);
    auto text = describe(resp.error());
    BOOST_CHECK(text.find("not sent") != std::string::npos);
    BOOST_CHECK(text.find("Injected") == std::string::npos);
  }
  rt::http_request bad_name;
  bad_name.url = server.url() + "/api/v1/health_check";
  bad_name.headers.emplace_back("X-A: b\r\nX-Injected", "yes");
  BOOST_CHECK(!http->send(bad_name));
  // A sound request still goes through: the server saw only that one.
  rt::http_request good;
  good.url = server.url() + "/api/v1/health_check";
  good.headers.emplace_back("GPROFILER-API-KEY", "T");
  BOOST_REQUIRE(http->send(good));
  auto doc = server.requests();
  BOOST_REQUIRE_EQUAL(doc->Size(), 1u);
  BOOST_CHECK((*doc)[0]["headers"].FindMember("x-injected")
              == (*doc)[0]["headers"].MemberEnd());
}

BOOST_AUTO_TEST_CASE(transport_errors_mask_the_url_password) {
  auto http = rt::make_curl_http_client({});
  rt::http_request req;
  // Port 1 on loopback: nothing listens, the connection is refused.
  req.url = "http://user:hunter2@127.0.0.1:1/api/v2/profiles?key=k";
  auto resp = http->send(req);
  BOOST_REQUIRE(!resp);
  auto text = describe(resp.error());
  BOOST_CHECK_MESSAGE(text.find("hunter2") == std::string::npos, text);
  BOOST_CHECK_MESSAGE(text.find("user:***@127.0.0.1:1") != std::string::npos,
                      text);
}

BOOST_AUTO_TEST_SUITE_END()

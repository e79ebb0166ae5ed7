// Unit tests of the one .col reader: the typed header (depth-checked), the
// stack lines' fields for each layout, chunked reading, and hostile input.

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "format/col_reader.hpp"
#include "format/flamegraph_tree.hpp"
#include "format/json.hpp"

using namespace gpa::format;

namespace {

// Every line of `text` as "kind|prefix|container|comm|frames|count", read in
// chunks of `chunk` bytes (0: whole).
std::vector<std::string> lines_of(const std::string& text, size_t chunk = 0,
                                  size_t max_line
                                  = col_reader::default_max_line) {
  std::vector<std::string> out;
  col_reader r{max_line};
  auto f = [&](const col_line& l) {
    static const char* kinds[] = {"header", "stack", "blank", "malformed"};
    out.push_back(std::string{kinds[static_cast<int>(l.kind)]} + "|"
                  + std::string{l.prefix} + "|" + std::string{l.container} + "|"
                  + std::string{l.comm} + "|" + std::string{l.frames} + "|"
                  + std::to_string(l.count));
  };
  if (chunk == 0) {
    r.read(text, f);
  } else {
    for (size_t at = 0; at < text.size(); at += chunk)
      r.feed(std::string_view{text}.substr(at, chunk), f);
    r.finish(f);
  }
  return out;
}

std::string nested(size_t depth, char open = '[', char close = ']') {
  return std::string(depth, open) + std::string(depth, close);
}

} // namespace

BOOST_AUTO_TEST_SUITE(col_reader_rules)

BOOST_AUTO_TEST_CASE(header_is_typed) {
  auto h = read_col_header(
      R"(# {"application_metadata_enabled": false, "start_time": )"
      R"("2024-05-01T10:00:00", "end_time": "2024-05-01T10:01:00", )"
      R"("metrics": {"cpu_avg": 1.5, "mem_avg": "x"}, "metadata": )"
      R"({"hostname": "h1"}})"
      "\n0;;a 1\n");
  BOOST_CHECK(h.present);
  BOOST_CHECK(h.error.empty());
  BOOST_CHECK(!h.refused);
  BOOST_CHECK_EQUAL(h.prefix_fields(), 1u);
  BOOST_CHECK_EQUAL(h.start_time.value_or(""), "2024-05-01T10:00:00");
  BOOST_CHECK_EQUAL(h.end_time.value_or(""), "2024-05-01T10:01:00");
  BOOST_CHECK_EQUAL(h.cpu_avg.value_or(-1), 1.5);
  BOOST_CHECK(!h.mem_avg); // not a number
  BOOST_REQUIRE(!h.facts.empty());
  BOOST_CHECK_EQUAL(h.facts[0].first, "hostname");
  BOOST_CHECK_EQUAL(h.facts[0].second, "h1");
  // Absent key: gProfiler's layout with the index. No header: folded.
  BOOST_CHECK_EQUAL(read_col_header("# {}\n").prefix_fields(), 2u);
  BOOST_CHECK_EQUAL(read_col_header("a;b 1\n").prefix_fields(), 0u);
  BOOST_CHECK(!read_col_header("a;b 1\n").present);
  // Not JSON, not an object: an error, not refused.
  auto bad = read_col_header("# {\"a\": \n");
  BOOST_CHECK(bad.present);
  BOOST_CHECK(!bad.refused);
  BOOST_CHECK(bad.error.find("not valid JSON") != std::string::npos);
  BOOST_CHECK(read_col_header("# [1]\n").error.find("not a JSON object")
              != std::string::npos);
}

BOOST_AUTO_TEST_CASE(deeply_nested_headers_are_refused_unread) {
  // 100,000 levels did not crash RapidJSON on an 8 MB stack; about 130,000
  // did (exit 139), and 1,000,000 always does. All are refused now.
  for (size_t depth : {size_t{100000}, size_t{1000000}}) {
    for (auto text : {nested(depth), nested(depth, '{', '}'),
                      "{\"a\": " + nested(depth) + "}"}) {
      auto h = read_col_header("# " + text + "\n0;;a;b 1\n");
      BOOST_CHECK(h.present);
      BOOST_CHECK(h.refused);
      BOOST_CHECK_MESSAGE(h.error.find("nested deeper than 64 levels")
                              != std::string::npos,
                          h.error);
      rapidjson::Document doc;
      BOOST_CHECK(!parse_json(doc, text).empty());
    }
    // The flame graph reads no further and says why.
    flame_tree t{"# " + nested(depth) + "\n0;;a;b 1\n"};
    BOOST_CHECK(t.header_refused());
    BOOST_CHECK(t.header_error().find("nested deeper") != std::string::npos);
  }
  // Brackets inside strings do not count; 64 levels are fine.
  auto ok = read_col_header("# {\"s\": \"" + std::string(1000, '[') + "\", "
                            + "\"x\": " + nested(63) + "}\n");
  BOOST_CHECK(ok.error.empty());
  BOOST_CHECK(!ok.refused);
}

BOOST_AUTO_TEST_CASE(stack_lines_per_layout) {
  std::string meta = "# {\"application_metadata_enabled\": true}\n";
  BOOST_CHECK(lines_of(meta + "0;web;java;main;work 30\n1;;py 5\n")
              == (std::vector<std::string>{"header|||||0",
                                           "stack|0;web|web|java|main;work|30",
                                           "stack|1;||py||5"}));
  std::string plain = "# {\"application_metadata_enabled\": false}\n";
  BOOST_CHECK(
      lines_of(plain + "web;java;main 7\n;bash 1\n")
      == (std::vector<std::string>{"header|||||0", "stack|web|web|java|main|7",
                                   "stack|||bash||1"}));
  BOOST_CHECK(lines_of("java;main;work 3\r\n")
              == (std::vector<std::string>{"stack|||java|main;work|3"}));
}

BOOST_AUTO_TEST_CASE(malformed_and_blank_lines) {
  std::string meta = "# {}\n";
  auto got = lines_of(meta
                      + "no count\n"
                        "0;;a x\n"
                        "0;;a -3\n"
                        "0;;a 9999999999999\n" // over 10^12
                        "x;;a 2\n"             // index not a number
                        "0;web 2\n"            // no comm field
                        "\n  \n# comment\n"
                        "0;;a 0\n"); // zero is a count
  BOOST_CHECK(got
              == (std::vector<std::string>{
                  "header|||||0", "malformed|||||0", "malformed|||||0",
                  "malformed|||||0", "malformed|||||0", "malformed|||||0",
                  "malformed|||||0", "blank|||||0", "blank|||||0",
                  "blank|||||0", "stack|0;||a||0"}));
  uint64_t n = 0;
  BOOST_CHECK(parse_col_count("1000000000000", n));
  BOOST_CHECK(!parse_col_count("1000000000001", n));
  BOOST_CHECK(!parse_col_count("", n));
}

BOOST_AUTO_TEST_CASE(chunks_cut_anywhere_read_the_same) {
  std::string text = "# {\"application_metadata_enabled\": true}\n"
                     "0;web;java;main;work 30\n"
                     "bad line\n"
                     "1;;py;x 5\n"
                     "0;;last;line 2"; // no final newline
  auto whole = lines_of(text);
  BOOST_CHECK_EQUAL(whole.size(), 5u);
  for (size_t chunk = 1; chunk <= text.size(); ++chunk)
    BOOST_CHECK_MESSAGE(lines_of(text, chunk) == whole, "chunk " << chunk);
}

BOOST_AUTO_TEST_CASE(over_long_lines_are_malformed_and_not_kept) {
  std::string text = "a;b 1\n" + std::string(1000, 'x') + " 2\nc;d 3\n";
  auto got = lines_of(text, 7, 100);
  BOOST_CHECK(got
              == (std::vector<std::string>{"stack|||a|b|1", "malformed|||||0",
                                           "stack|||c|d|3"}));
  // An over-long header is refused.
  col_reader r{100};
  r.read("# {" + std::string(200, ' ') + "}\na;b 1\n", [](const col_line&) {});
  BOOST_CHECK(r.header().present);
  BOOST_CHECK(r.header().refused);
  BOOST_CHECK(r.header().error.find("longer than 100 bytes")
              != std::string::npos);
}

BOOST_AUTO_TEST_CASE(flame_tree_fed_in_chunks_matches_whole) {
  std::string text = "# {\"metadata\": {\"hostname\": \"h\"}}\n";
  for (int i = 0; i < 500; ++i)
    text += "0;c" + std::to_string(i % 3) + ";comm" + std::to_string(i % 7)
            + ";f" + std::to_string(i % 11) + ";g" + std::to_string(i) + " "
            + std::to_string(i + 1) + "\n";
  flame_tree whole{text};
  for (size_t chunk : {size_t{1}, size_t{13}, size_t{4096}}) {
    flame_tree t{tree_options{}};
    for (size_t at = 0; at < text.size(); at += chunk)
      t.feed(std::string_view{text}.substr(at, chunk));
    t.finish();
    BOOST_CHECK_EQUAL(t.to_json(), whole.to_json());
  }
}

BOOST_AUTO_TEST_SUITE_END()

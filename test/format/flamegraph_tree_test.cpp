// Unit tests of the flame-graph data: reading .col and folded text into the
// trie, pruning, the JSON the viewer reads, and escaping of hostile names.

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "format/flamegraph_tree.hpp"

using namespace gpa::format;

namespace {

// The viewer's JSON, parsed, with helpers to walk it.
struct parsed {
  rapidjson::Document doc;

  explicit parsed(const std::string& json) {
    doc.Parse(json.c_str(), json.size());
    BOOST_REQUIRE_MESSAGE(!doc.HasParseError(), "JSON parses: " << json);
    BOOST_REQUIRE(doc.IsObject());
  }

  std::string name(const rapidjson::Value& node) const {
    auto& n = doc["names"][node[0].GetUint()];
    return {n.GetString(), n.GetStringLength()};
  }

  uint64_t total() const {
    return doc["total"].GetUint64();
  }

  // Calls f(path, node) for every node; path is "container|comm;frame;...".
  void each(const std::function<void(const std::string&,
                                     const rapidjson::Value&)>& f) const {
    for (auto& g : doc["groups"].GetArray()) {
      auto container = doc["names"][g[0].GetUint()].GetString();
      std::vector<std::pair<std::string, const rapidjson::Value*>> todo;
      todo.emplace_back(std::string{container} + "|" + name(g[1]), &g[1]);
      while (!todo.empty()) {
        auto [path, node] = todo.back();
        todo.pop_back();
        f(path, *node);
        for (rapidjson::SizeType i = 2; i < node->Size(); ++i)
          todo.emplace_back(path + ";" + name((*node)[i]), &(*node)[i]);
      }
    }
  }

  // Samples of each path, as the JSON says.
  std::map<std::string, uint64_t> totals() const {
    std::map<std::string, uint64_t> out;
    each([&](const std::string& p, const rapidjson::Value& n) {
      out[p] += n[1].GetUint64();
    });
    return out;
  }

  // Whether some node is named `n`.
  bool has_name(const std::string& n) const {
    bool found = false;
    each([&](const std::string&, const rapidjson::Value& v) {
      found = found || name(v) == n;
    });
    return found;
  }
};

// Every node holds at least its children's samples; the groups hold all.
void check_conserved(const parsed& p) {
  uint64_t groups = 0;
  for (auto& g : p.doc["groups"].GetArray())
    groups += g[1][1].GetUint64();
  BOOST_CHECK_EQUAL(groups, p.total());
  p.each([&](const std::string& path, const rapidjson::Value& n) {
    uint64_t children = 0;
    for (rapidjson::SizeType i = 2; i < n.Size(); ++i)
      children += n[i][1].GetUint64();
    BOOST_CHECK_MESSAGE(children <= n[1].GetUint64(), path << ": children "
                                                           << children << " > "
                                                           << n[1].GetUint64());
  });
}

const std::string col_header
    = R"(# {"metadata": {"hostname": "h1", "agent_version": "0.1.0", )"
      R"("run_arguments": {"service_name": "svc"}}, "metrics": {"cpu_avg": )"
      R"(12.5, "mem_avg": 40}, "application_metadata_enabled": true, )"
      R"("profiling_mode": "cpu", "start_time": "2024-01-01T00:00:00Z", )"
      R"("end_time": "2024-01-01T00:01:00Z", "unknown": [1, {"x": null}]})";

} // namespace

BOOST_AUTO_TEST_SUITE(flamegraph_tree)

BOOST_AUTO_TEST_CASE(col_lines_build_the_trie) {
  flame_tree t{col_header + "\n"
               + "0;web;java;main;work 30\n"
                 "0;web;java;main;idle 10\n"
                 "1;;python3;run_[p] 5\n"};
  BOOST_CHECK(t.is_col());
  BOOST_CHECK_EQUAL(t.total_samples(), 45u);
  BOOST_CHECK_EQUAL(t.stack_lines(), 3u);
  BOOST_CHECK_EQUAL(t.skipped_lines(), 0u);
  parsed p{t.to_json()};
  auto totals = p.totals();
  BOOST_CHECK_EQUAL(totals["web|java"], 40u);
  BOOST_CHECK_EQUAL(totals["web|java;main"], 40u);
  BOOST_CHECK_EQUAL(totals["web|java;main;work"], 30u);
  BOOST_CHECK_EQUAL(totals["web|java;main;idle"], 10u);
  BOOST_CHECK_EQUAL(totals["|python3;run_[p]"], 5u);
  BOOST_CHECK_EQUAL(totals.size(), 6u);
  check_conserved(p);
}

BOOST_AUTO_TEST_CASE(folded_input_has_no_index_or_container) {
  flame_tree folded{"java;main;work 30\njava;main;idle 10\npython3;run 5\n"};
  flame_tree col{col_header + "\n0;;java;main;work 30\n0;;java;main;idle 10\n"
                 + "0;;python3;run 5\n"};
  BOOST_CHECK(!folded.is_col());
  BOOST_CHECK_EQUAL(folded.skipped_lines(), 0u);
  BOOST_CHECK_EQUAL(folded.total_samples(), 45u);
  BOOST_CHECK(parsed{folded.to_json()}.totals()
              == parsed{col.to_json()}.totals());
}

BOOST_AUTO_TEST_CASE(col_without_application_metadata_starts_with_container) {
  flame_tree t{"# {\"application_metadata_enabled\": false}\n"
               "web;java;main 7\n"};
  BOOST_CHECK_EQUAL(t.skipped_lines(), 0u);
  BOOST_CHECK_EQUAL(parsed{t.to_json()}.totals()["web|java;main"], 7u);
}

BOOST_AUTO_TEST_CASE(malformed_lines_are_skipped_and_counted) {
  flame_tree t{col_header + "\n"
               + "0;;java;ok 4\n"
                 "no count at all\n"          // 1: last token not a number
                 "0;;java;f notanumber\n"     // 2
                 "0;;java;f -3\n"             // 3: signed
                 "0;;java;f 0\n"              // 4: zero samples
                 "0;;java;f 99999999999999\n" // 5: over 10^12
                 "x;;java;f 2\n"              // 6: index not a number
                 "0;web 2\n"                  // 7: no comm field
                 "0;;;; 2\n"                  // 8: only empty frames
                 "\n   \n# a comment\n"       // not counted
                 "0;;java;ok 1\r\n"};         // CRLF is fine
  BOOST_CHECK_EQUAL(t.skipped_lines(), 8u);
  BOOST_CHECK_EQUAL(t.stack_lines(), 2u);
  BOOST_CHECK_EQUAL(t.total_samples(), 5u);
  parsed p{t.to_json()};
  BOOST_CHECK_EQUAL(p.doc["skipped_lines"].GetUint64(), 8u);
  BOOST_CHECK_EQUAL(p.totals()["|java;ok"], 5u);
}

BOOST_AUTO_TEST_CASE(empty_frames_are_dropped) {
  flame_tree t{"comm;a;;b; 3\n"};
  auto totals = parsed{t.to_json()}.totals();
  BOOST_CHECK_EQUAL(totals["|comm;a;b"], 3u);
  BOOST_CHECK_EQUAL(totals.size(), 3u);
}

BOOST_AUTO_TEST_CASE(frames_with_spaces_keep_them) {
  flame_tree t{"java;long Spin.f(long);void A.b(int, int) 2\n"};
  BOOST_CHECK_EQUAL(parsed{t.to_json()}
                        .totals()["|java;long Spin.f(long);void A.b(int, int)"],
                    2u);
}

BOOST_AUTO_TEST_CASE(profiler_errors_are_collected) {
  flame_tree t{col_header + "\n"
               + "0;;node;[Profiling timed out: perf-map] 1\n"
                 "0;;node;[Profiling timed out: perf-map] 1\n"
                 "0;;py;[Profiling failed: py-spy: denied] 3\n"
                 "0;;[Profiling failed: whole profiler] 1\n"};
  auto errors = t.errors();
  BOOST_REQUIRE_EQUAL(errors.size(), 3u);
  BOOST_CHECK_EQUAL(errors[0].comm, "py");
  BOOST_CHECK_EQUAL(errors[0].text, "[Profiling failed: py-spy: denied]");
  BOOST_CHECK_EQUAL(errors[0].samples, 3u);
  BOOST_CHECK_EQUAL(errors[1].comm, "node");
  BOOST_CHECK_EQUAL(errors[1].samples, 2u);
  BOOST_CHECK_EQUAL(errors[2].comm, "");
  BOOST_CHECK_EQUAL(errors[2].text, "[Profiling failed: whole profiler]");
  // The error stacks stay in the graph.
  BOOST_CHECK_EQUAL(t.total_samples(), 6u);
  parsed p{t.to_json()};
  BOOST_CHECK_EQUAL(p.doc["errors"].Size(), 3u);
  BOOST_CHECK_EQUAL(p.doc["errors"][0]["samples"].GetUint64(), 3u);
}

BOOST_AUTO_TEST_CASE(distinct_errors_are_capped) {
  std::string text;
  for (int i = 0; i < 10; ++i)
    text += "c;[Profiling failed: " + std::to_string(i) + "] 1\n";
  tree_options opts;
  opts.max_errors = 4;
  flame_tree t{text, opts};
  BOOST_CHECK_EQUAL(t.errors().size(), 4u);
  BOOST_CHECK_EQUAL(t.dropped_errors(), 6u);
  BOOST_CHECK_EQUAL(t.total_samples(), 10u);
}

BOOST_AUTO_TEST_CASE(deep_stacks_are_cut_and_keep_their_samples) {
  std::string line = "deep";
  for (int i = 0; i < 5000; ++i)
    line += ";f" + std::to_string(i);
  tree_options opts;
  opts.max_depth = 100;
  flame_tree t{line + " 9\nshallow;x 1\n", opts};
  BOOST_CHECK_EQUAL(t.truncated_stacks(), 1u);
  BOOST_CHECK_EQUAL(t.total_samples(), 10u);
  parsed p{t.to_json()};
  size_t deepest = 0;
  p.each([&](const std::string& path, const rapidjson::Value& n) {
    deepest = std::max(
        deepest,
        static_cast<size_t>(std::count(path.begin(), path.end(), ';')) + 1);
    if (p.name(n) == "[truncated]")
      BOOST_CHECK_EQUAL(n[1].GetUint64(), 9u);
  });
  BOOST_CHECK_EQUAL(deepest, 100u);
  BOOST_CHECK(p.has_name("[truncated]"));
  check_conserved(p);
}

BOOST_AUTO_TEST_CASE(header_metadata_is_read_tolerantly) {
  flame_tree t{col_header + "\n0;;a;b 1\n"};
  std::map<std::string, std::string> meta(t.meta().begin(), t.meta().end());
  BOOST_CHECK_EQUAL(meta["hostname"], "h1");
  BOOST_CHECK_EQUAL(meta["service_name"], "svc");
  BOOST_CHECK_EQUAL(meta["start_time"], "2024-01-01T00:00:00Z");
  BOOST_CHECK_EQUAL(meta["end_time"], "2024-01-01T00:01:00Z");
  BOOST_CHECK_EQUAL(meta["cpu_avg"], "12.5");
  BOOST_CHECK_EQUAL(meta["mem_avg"], "40");
  BOOST_CHECK_EQUAL(meta["profiling_mode"], "cpu");
  BOOST_CHECK(t.header_error().empty());
  // Missing keys are left out; wrong types are ignored.
  flame_tree bare{"# {\"metadata\": {\"hostname\": 42, \"agent_version\": "
                  "[1]}, \"metrics\": \"none\"}\n0;;a 1\n"};
  std::map<std::string, std::string> m2(bare.meta().begin(), bare.meta().end());
  BOOST_CHECK_EQUAL(m2["hostname"], "42");
  BOOST_CHECK_EQUAL(m2.count("agent_version"), 0u);
  BOOST_CHECK_EQUAL(m2.count("cpu_avg"), 0u);
  BOOST_CHECK_EQUAL(bare.total_samples(), 1u);
}

BOOST_AUTO_TEST_CASE(a_broken_header_is_reported_and_lines_still_read) {
  flame_tree t{"# {\"metadata\": \n0;;a;b 2\n"};
  BOOST_CHECK(t.is_col());
  BOOST_CHECK(!t.header_error().empty());
  BOOST_CHECK_EQUAL(t.total_samples(), 2u);
  parsed p{t.to_json()};
  BOOST_CHECK(!std::string{p.doc["header_error"].GetString()}.empty());
}

BOOST_AUTO_TEST_CASE(pruning_merges_small_frames_and_keeps_counts) {
  // main: 1000 samples; "hot" 900; 20 tiny callees of 5 samples each.
  std::string text = "app;main;hot 900\n";
  for (int i = 0; i < 20; ++i)
    text += "app;main;tiny" + std::to_string(i) + " 5\n";
  tree_options opts;
  opts.prune_fraction = 0.01; // 10 samples
  flame_tree t{text, opts};
  BOOST_CHECK_EQUAL(t.prune_threshold(), 10u);
  parsed p{t.to_json()};
  auto totals = p.totals();
  BOOST_CHECK_EQUAL(totals["|app;main"], 1000u);
  BOOST_CHECK_EQUAL(totals["|app;main;hot"], 900u);
  BOOST_CHECK_EQUAL(totals["|app;main;[pruned]"], 100u);
  BOOST_CHECK(!p.has_name("tiny3"));
  BOOST_CHECK_EQUAL(totals.size(), 4u);
  BOOST_CHECK_EQUAL(t.emitted_nodes(), 4u);
  check_conserved(p);
  // Unused names are not written.
  for (auto& n : p.doc["names"].GetArray())
    BOOST_CHECK(std::string{n.GetString()}.rfind("tiny", 0) != 0);
}

BOOST_AUTO_TEST_CASE(no_pruning_keeps_every_frame) {
  std::string text = "app;main;hot 900\napp;main;tiny 1\n";
  tree_options opts;
  opts.prune_fraction = 0;
  flame_tree t{text, opts};
  auto totals = parsed{t.to_json()}.totals();
  BOOST_CHECK_EQUAL(totals["|app;main;tiny"], 1u);
  BOOST_CHECK_EQUAL(totals.count("|app;main;[pruned]"), 0u);
}

BOOST_AUTO_TEST_CASE(random_profiles_conserve_counts_through_pruning) {
  // Many stacks over a small vocabulary: the sum along every path of the
  // pruned JSON equals the sum of the input lines through that path, for
  // every path that survived.
  std::mt19937 rng{42};
  std::map<std::string, uint64_t> expected;
  std::string text = col_header + "\n";
  uint64_t total = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string comm = "c" + std::to_string(rng() % 5);
    std::string container = rng() % 3 == 0 ? "k8s" : "";
    std::string path = container + "|" + comm;
    std::string line = "0;" + container + ";" + comm;
    auto depth = 1 + rng() % 12;
    uint64_t count = 1 + rng() % 50;
    expected[path] += count;
    for (unsigned d = 0; d < depth; ++d) {
      auto f = "f" + std::to_string(rng() % (d < 3 ? 3 : 40));
      line += ";" + f;
      path += ";" + f;
      expected[path] += count;
    }
    text += line + " " + std::to_string(count) + "\n";
    total += count;
  }
  flame_tree t{text}; // default 0.01% pruning
  parsed p{t.to_json()};
  BOOST_CHECK_EQUAL(p.total(), total);
  check_conserved(p);
  size_t compared = 0;
  for (auto& [path, n] : p.totals()) {
    if (path.find("[pruned]") != std::string::npos)
      continue;
    BOOST_CHECK_MESSAGE(expected[path] == n,
                        path << ": " << n << " vs " << expected[path]);
    ++compared;
  }
  BOOST_CHECK_GT(compared, 100u);
  tree_options coarse;
  coarse.prune_fraction = 0.01;
  flame_tree pruned{text, coarse};
  parsed q{pruned.to_json()};
  BOOST_CHECK_EQUAL(q.total(), total);
  BOOST_CHECK(q.has_name("[pruned]"));
  BOOST_CHECK_LT(pruned.emitted_nodes(), t.emitted_nodes());
  check_conserved(q);
}

BOOST_AUTO_TEST_CASE(frames_are_classified_by_suffix_and_shape) {
  BOOST_CHECK(classify_frame("do_syscall_64_[k]") == frame_kind::kernel);
  BOOST_CHECK(classify_frame("run (/app/x.py:12)_[p]") == frame_kind::python);
  BOOST_CHECK(classify_frame("handle (/app/views.py:42)")
              == frame_kind::python);
  BOOST_CHECK(classify_frame("PyEval_[pe]") == frame_kind::python);
  BOOST_CHECK(classify_frame("Foo.bar_[j]") == frame_kind::java);
  BOOST_CHECK(classify_frame("long Spin.f(long)") == frame_kind::java);
  BOOST_CHECK(classify_frame("void java.lang.Thread.run()")
              == frame_kind::java);
  BOOST_CHECK(classify_frame("Ljava/lang/Thread") == frame_kind::java);
  BOOST_CHECK(classify_frame("::run") == frame_kind::java);
  BOOST_CHECK(classify_frame("block in call_[rb]") == frame_kind::ruby);
  BOOST_CHECK(classify_frame("index.php_[php]") == frame_kind::php);
  BOOST_CHECK(classify_frame("System.Foo.Bar_[net]") == frame_kind::dotnet);
  BOOST_CHECK(classify_frame("[Profiling timed out: x]") == frame_kind::error);
  BOOST_CHECK(classify_frame("[pruned]") == frame_kind::pruned);
  BOOST_CHECK(classify_frame("__libc_start_main") == frame_kind::native);
  BOOST_CHECK(classify_frame("std::vector<int>::push_back(int const&)")
              == frame_kind::native);
  BOOST_CHECK(classify_frame("JavaCalls::call_helper") == frame_kind::native);
  BOOST_CHECK(classify_frame("[libc.so.6]") == frame_kind::native);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(flamegraph_json)

BOOST_AUTO_TEST_CASE(hostile_names_round_trip_and_cannot_close_the_script) {
  const std::string xss = "</script><script>alert(1)</script>";
  const std::string odd = "q\"uote\\back\x01\t<!-- &amp; \xE2\x80\xA8 end";
  flame_tree t{"evil<b>;" + xss + ";" + odd + " 3\n"};
  auto json = t.to_json();
  BOOST_CHECK_EQUAL(json.find('<'), std::string::npos);
  BOOST_CHECK_EQUAL(json.find('>'), std::string::npos);
  BOOST_CHECK_EQUAL(json.find('&'), std::string::npos);
  BOOST_CHECK_EQUAL(json.find("\xE2\x80\xA8"), std::string::npos);
  parsed p{json};
  auto totals = p.totals();
  BOOST_CHECK_EQUAL(totals["|evil<b>;" + xss + ";" + odd], 3u);
}

BOOST_AUTO_TEST_CASE(invalid_utf8_becomes_replacement_characters) {
  BOOST_CHECK_EQUAL(sanitize_utf8("a\xFF"
                                  "b"),
                    "a\xEF\xBF\xBD"
                    "b");
  BOOST_CHECK_EQUAL(sanitize_utf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  BOOST_CHECK_EQUAL(sanitize_utf8("\xED\xA0\x80"),
                    "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  BOOST_CHECK_EQUAL(sanitize_utf8("caf\xC3\xA9 \xF0\x9F\x94\xA5"),
                    "caf\xC3\xA9 \xF0\x9F\x94\xA5");
  flame_tree t{"comm;bad\xFFname 2\n"};
  parsed p{t.to_json()}; // RapidJSON validates UTF-8 only when asked; check:
  BOOST_CHECK(p.has_name("bad\xEF\xBF\xBDname"));
}

BOOST_AUTO_TEST_CASE(json_string_escapes) {
  std::string out;
  append_json_string(out, "a\"b\\c\nd\x1F<e>&\x7F");
  BOOST_CHECK_EQUAL(out,
                    "\"a\\\"b\\\\c\\nd\\u001f\\u003ce\\u003e\\u0026\\u007f\"");
  std::string html;
  append_html_escaped(html, "<a href=\"x\">'&'</a>");
  BOOST_CHECK_EQUAL(html,
                    "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
}

BOOST_AUTO_TEST_CASE(empty_input_gives_an_empty_profile) {
  flame_tree t{""};
  BOOST_CHECK_EQUAL(t.total_samples(), 0u);
  parsed p{t.to_json()};
  BOOST_CHECK_EQUAL(p.doc["groups"].Size(), 0u);
  BOOST_CHECK_EQUAL(p.total(), 0u);
}

BOOST_AUTO_TEST_SUITE_END()

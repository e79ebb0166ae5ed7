// The runtime profilers' output parsers (format/runtime_stacks.hpp): golden
// files built from each tool's documented format (test/data/runtime, see its
// README), each rule on hand-written outputs, and hostile input (garbage,
// truncation at every byte, NULs, invalid UTF-8, huge lines, limits).

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "format/runtime_stacks.hpp"
#include "format/utf8.hpp"

using gpa::format::parse_async_profiler;
using gpa::format::parse_dotnet_speedscope;
using gpa::format::parse_phpspy;
using gpa::format::parse_pyspy;
using gpa::format::parse_rbspy;
using gpa::format::runtime_parse_limits;
using gpa::format::runtime_stacks;

namespace {

const std::string data_dir = GPA_TEST_DATA_DIR "/runtime";

std::string read_file(const std::string& name) {
  std::ifstream in(data_dir + "/" + name, std::ios::binary);
  BOOST_REQUIRE_MESSAGE(in, "cannot open " << data_dir << "/" << name);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// The .expected form of a result: "# pid P comm C" then "stack count" lines.
std::string describe(const runtime_stacks& r) {
  std::ostringstream ss;
  for (auto& p : r.processes) {
    ss << "# pid " << p.pid << " comm " << p.comm << "\n";
    for (auto& s : p.stacks)
      ss << s.stack << " " << s.count << "\n";
  }
  return ss.str();
}

/// The stacks of one result as a map, for comparisons across results.
std::map<std::string, uint64_t> stack_map(const runtime_stacks& r) {
  std::map<std::string, uint64_t> m;
  for (auto& p : r.processes)
    for (auto& s : p.stacks)
      m[std::to_string(p.pid) + "|" + s.stack] += s.count;
  return m;
}

bool safe_text(std::string_view s) {
  if (!gpa::format::is_valid_utf8(s))
    return false;
  return std::none_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

/// What every result must satisfy, whatever the input: an error and stacks
/// never together, processes sorted by pid, stacks sorted, unique and
/// starting with the comm, names safe for the format, `samples` the sum.
void check_invariants(const runtime_stacks& r, const std::string& comm,
                      const runtime_parse_limits& limits = {}) {
  BOOST_TEST(safe_text(r.error));
  BOOST_TEST(r.error.find(';') == std::string::npos);
  BOOST_TEST(safe_text(r.first_skipped));
  BOOST_TEST(r.first_skipped.find(';') == std::string::npos);
  BOOST_TEST((r.skipped == 0) == r.first_skipped.empty());
  if (!r.ok()) {
    BOOST_TEST(r.processes.empty());
    BOOST_TEST(r.samples == 0u);
    return;
  }
  uint64_t sum = 0;
  for (size_t i = 0; i < r.processes.size(); ++i) {
    auto& p = r.processes[i];
    if (i > 0)
      BOOST_TEST((r.processes[i - 1].pid < p.pid));
    BOOST_TEST(p.comm == comm);
    BOOST_TEST(!p.stacks.empty());
    for (size_t j = 0; j < p.stacks.size(); ++j) {
      auto& s = p.stacks[j];
      if (j > 0)
        BOOST_TEST((p.stacks[j - 1].stack < s.stack));
      BOOST_TEST(s.count > 0u);
      BOOST_TEST(s.stack.rfind(comm + ";", 0) == 0);
      BOOST_TEST(safe_text(s.stack));
      auto frames = static_cast<size_t>(
          std::count(s.stack.begin(), s.stack.end(), ';'));
      BOOST_TEST(frames <= limits.max_frames);
      sum += s.count;
    }
  }
  BOOST_TEST(r.samples == sum);
}

std::string run_of(const std::string& frame, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i)
    out += (i ? ";" : "") + frame;
  return out;
}

/// A minimal speedscope document: `frames` names, one evented profile per
/// element of `profiles` (its "events" array text).
std::string speedscope(const std::vector<std::string>& frames,
                       const std::vector<std::string>& profiles,
                       const std::string& start = "0") {
  std::string out = R"({"shared": {"frames": [)";
  for (size_t i = 0; i < frames.size(); ++i)
    out += (i ? ", " : "") + std::string{R"({"name": ")"} + frames[i] + "\"}";
  out += R"(]}, "profiles": [)";
  for (size_t i = 0; i < profiles.size(); ++i)
    out += std::string{i ? ", " : ""}
           + R"x({"type": "evented", "name": "Thread (1)", )x"
           + R"("unit": "milliseconds", "startValue": )" + start
           + R"(, "endValue": 100, "events": [)" + profiles[i] + "]}";
  out += "]}";
  return out;
}

std::string ev(char type, int frame, double at) {
  std::ostringstream ss;
  ss << R"({"type": ")" << type << R"(", "frame": )" << frame << R"(, "at": )"
     << at << "}";
  return ss.str();
}

runtime_stacks dotnet(const std::string& json, uint32_t hz = 100,
                      const runtime_parse_limits& limits = {}) {
  auto r = parse_dotnet_speedscope(json, 7, "dotnet", hz, limits);
  check_invariants(r, "dotnet", limits);
  return r;
}

runtime_stacks rbspy(const std::string& text,
                     const runtime_parse_limits& limits = {}) {
  auto r = parse_rbspy(text, 42, "ruby", limits);
  check_invariants(r, "ruby", limits);
  return r;
}

runtime_stacks pyspy(const std::string& text,
                     const runtime_parse_limits& limits = {}) {
  auto r = parse_pyspy(text, 53, "python3", limits);
  check_invariants(r, "python3", limits);
  return r;
}

runtime_stacks phpspy(const std::string& text,
                      const runtime_parse_limits& limits = {}) {
  auto r = parse_phpspy(text, "php", limits);
  check_invariants(r, "php", limits);
  return r;
}

} // namespace

// -- golden files
// --------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(runtime_golden)

BOOST_AUTO_TEST_CASE(rbspy_fork_and_upstream) {
  // gProfiler's rbspy (Granulate's fork, `_[rb]` already there) and
  // upstream rbspy (no suffix, other line order) give the same profile.
  auto expected = read_file("rbspy.expected");
  for (auto name : {"rbspy_fork.collapsed", "rbspy_upstream.collapsed"}) {
    BOOST_TEST_CONTEXT(name) {
      auto r = parse_rbspy(read_file(name), 4242, "ruby");
      check_invariants(r, "ruby");
      BOOST_TEST(r.ok());
      BOOST_TEST(r.skipped == 0u);
      BOOST_TEST(describe(r) == expected);
      BOOST_TEST(r.samples == 100u);
    }
  }
}

BOOST_AUTO_TEST_CASE(pyspy_fork_and_upstream) {
  // gProfiler's py-spy (Granulate's fork, `_[p]` already there) and
  // upstream py-spy (no suffix, other line order) give the same profile.
  auto expected = read_file("pyspy.expected");
  for (auto name : {"pyspy_fork.raw", "pyspy_upstream.raw"}) {
    BOOST_TEST_CONTEXT(name) {
      auto r = parse_pyspy(read_file(name), 5353, "python");
      check_invariants(r, "python");
      BOOST_TEST(r.ok());
      BOOST_TEST(r.skipped == 0u);
      BOOST_TEST(describe(r) == expected);
      BOOST_TEST(r.samples == 97u);
    }
  }
}

BOOST_AUTO_TEST_CASE(phpspy_two_processes) {
  auto r = parse_phpspy(read_file("phpspy.txt"));
  check_invariants(r, "php");
  BOOST_TEST(r.ok());
  BOOST_TEST(r.skipped == 0u);
  BOOST_TEST(describe(r) == read_file("phpspy.expected"));
  BOOST_TEST(r.processes.size() == 2u);
  BOOST_TEST(r.samples == 11u);
}

BOOST_AUTO_TEST_CASE(dotnet_trace_speedscope) {
  auto r = parse_dotnet_speedscope(read_file("dotnet.speedscope.json"), 4711,
                                   "dotnet", 100);
  check_invariants(r, "dotnet");
  BOOST_TEST_REQUIRE(r.ok(), r.error);
  BOOST_TEST(describe(r) == read_file("dotnet.expected"));
  // 130 + 110 ms of thread time at 100 Hz
  BOOST_TEST(r.samples == 24u);
}

BOOST_AUTO_TEST_CASE(dotnet_trace_frequency_scales_counts) {
  auto json = read_file("dotnet.speedscope.json");
  auto at_100 = parse_dotnet_speedscope(json, 4711, "dotnet", 100);
  auto at_1000 = parse_dotnet_speedscope(json, 4711, "dotnet", 1000);
  BOOST_TEST_REQUIRE(at_1000.ok());
  BOOST_TEST(at_1000.samples == 240u);
  auto a = stack_map(at_100);
  auto b = stack_map(at_1000);
  BOOST_TEST(a.size() == b.size());
  for (auto& [stack, n] : a)
    BOOST_TEST(b[stack] == n * 10);
}

BOOST_AUTO_TEST_CASE(async_profiler_collapsed) {
  auto r = parse_async_profiler(read_file("async_profiler.collapsed"), 5151,
                                "java");
  check_invariants(r, "java");
  BOOST_TEST(r.ok());
  BOOST_TEST(describe(r) == read_file("async_profiler.expected"));
}

BOOST_AUTO_TEST_SUITE_END()

// -- rules
// ------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(runtime_rules)

BOOST_AUTO_TEST_CASE(collapsed_lines) {
  // blank lines, '#' comments and CRLF endings are ignored; equal stacks
  // add up; the count is the last space-separated token, so frames may hold
  // spaces.
  auto r = rbspy("\n# comment\n  \t\na - x.rb:1;b - x.rb:2 3\r\n"
                 "a - x.rb:1;b - x.rb:2 4\nmain - y.rb:9 1");
  BOOST_TEST(r.ok());
  BOOST_TEST(r.skipped == 0u);
  BOOST_TEST(describe(r)
             == "# pid 42 comm ruby\n"
                "ruby;a - x.rb:1_[rb];b - x.rb:2_[rb] 7\n"
                "ruby;main - y.rb:9_[rb] 1\n");
}

BOOST_AUTO_TEST_CASE(rbspy_suffix_rule) {
  // `_[rb]` is added once, never to C functions (whose name holds
  // "[c function]"), whether the frame came from the fork or upstream.
  auto r = rbspy("m - a.rb:1_[rb];sleep [c function] - (unknown):0;"
                 "n - a.rb:2;[c function]x - b:0;m - a.rb 1\n");
  BOOST_TEST(r.ok());
  BOOST_TEST(r.processes.at(0).stacks.at(0).stack
             == "ruby;m - a.rb:1_[rb];sleep [c function] - (unknown):0;"
                "n - a.rb:2_[rb];[c function]x - b:0;m - a.rb_[rb]");
}

BOOST_AUTO_TEST_CASE(pyspy_suffix_rule) {
  // `_[p]` ends every frame once: added to upstream's frames, not to the
  // fork's, and added to a frame that holds it elsewhere than at its end.
  auto r = pyspy("<module> (/app/x.py:1)_[p];run (/app/x.py:5);"
                 "f_[p] (/app/y.py:2);g 2\n");
  BOOST_TEST(r.ok());
  BOOST_TEST(r.processes.at(0).stacks.at(0).stack
             == "python3;<module> (/app/x.py:1)_[p];run (/app/x.py:5)_[p];"
                "f_[p] (/app/y.py:2)_[p];g_[p]");
  BOOST_TEST(r.samples == 2u);
  // Bad lines are skipped and counted as in rbspy's output; garbage is an
  // error naming py-spy.
  auto bad = pyspy("a (x.py:1) 3\nno-count\nb (x.py:2) -1\n");
  BOOST_TEST(bad.ok());
  BOOST_TEST(bad.skipped == 2u);
  BOOST_TEST(bad.first_skipped.find("line 2: ") == 0, bad.first_skipped);
  auto garbage = pyspy("this is not py-spy output\n");
  BOOST_TEST(!garbage.ok());
  BOOST_TEST(garbage.error.find("py-spy output has no valid") == 0,
             garbage.error);
}

BOOST_AUTO_TEST_CASE(collapsed_bad_lines_are_skipped_with_their_line) {
  auto r = rbspy("a 1\nno-count-here\nb x\nc 0\nd -2\ne +3\n 5\nf 1e3\n"
                 "g 99999999999\nh 2\n");
  BOOST_TEST(r.ok());
  BOOST_TEST(r.skipped == 8u);
  BOOST_TEST(r.first_skipped.find("line 2: ") == 0, r.first_skipped);
  BOOST_TEST(r.first_skipped.find("no-count-here") != std::string::npos);
  BOOST_TEST(describe(r)
             == "# pid 42 comm ruby\nruby;a_[rb] 1\nruby;h_[rb] 2\n");
}

BOOST_AUTO_TEST_CASE(quotes_are_cut_at_a_character_boundary) {
  // a 60-byte count of 20 euro signs: quoted as its first 13 (39 bytes),
  // never with half a character
  std::string euros;
  for (int i = 0; i < 20; ++i)
    euros += "\xe2\x82\xac";
  auto r = rbspy("a " + euros + "\nb 1\n");
  std::string thirteen;
  for (int i = 0; i < 13; ++i)
    thirteen += "\xe2\x82\xac";
  BOOST_TEST(r.first_skipped
             == "line 1: the count '" + thirteen
                    + "...' is not a decimal number from 1 to 1000000000");
}

BOOST_AUTO_TEST_CASE(collapsed_garbage_is_an_error) {
  auto r = rbspy("\n\nthis is not rbspy output\nnor this\n");
  BOOST_TEST(!r.ok());
  BOOST_TEST(r.error.find("rbspy") != std::string::npos, r.error);
  BOOST_TEST(r.error.find("2 skipped") != std::string::npos, r.error);
  BOOST_TEST(r.error.find("line 3: ") != std::string::npos, r.error);
  // no output at all (nothing sampled: rbspy --oncpu on an idle process)
  // is not an error
  BOOST_TEST(rbspy("").ok());
  BOOST_TEST(rbspy("\n# nothing\n\n").ok());
  BOOST_TEST(rbspy("").processes.empty());
}

BOOST_AUTO_TEST_CASE(collapsed_names_are_made_safe) {
  std::string text = "a\tb - x.rb:1;c";
  text += '\0';
  text += "d;\xff\xfe - y.rb:2;\xe2\x82\xac - z.rb:3 2\n";
  auto r = parse_rbspy(text, 9, std::string{"my;ru\nby"});
  check_invariants(r, "my_ru by");
  BOOST_TEST_REQUIRE(r.processes.size() == 1u);
  BOOST_TEST(r.processes[0].comm == "my_ru by");
  BOOST_TEST(r.processes[0].pid == 9);
  BOOST_TEST(r.processes[0].stacks.at(0).stack
             == "my_ru by;a b - x.rb:1_[rb];c d_[rb];"
                "\xef\xbf\xbd\xef\xbf\xbd - y.rb:2_[rb];"
                "\xe2\x82\xac - z.rb:3_[rb]");
  auto unnamed = parse_rbspy("a 1\n", 9, "");
  BOOST_TEST(unnamed.processes.at(0).comm == "[unknown]");
  BOOST_TEST(unnamed.processes.at(0).stacks.at(0).stack == "[unknown];a_[rb]");
}

BOOST_AUTO_TEST_CASE(async_profiler_frames_are_kept) {
  auto r = parse_async_profiler("java/lang/Thread.run()V_[j];f_[i];x 2\n"
                                "do_syscall_64_[k] 1\n",
                                5, "java");
  check_invariants(r, "java");
  BOOST_TEST(describe(r)
             == "# pid 5 comm java\n"
                "java;do_syscall_64_[k] 1\n"
                "java;java/lang/Thread.run()V_[j];f_[i];x 2\n");
}

BOOST_AUTO_TEST_CASE(phpspy_traces) {
  auto r = phpspy("0 leaf a.php:3\n1 Klass::mid a.php:2\n2 <main> a.php:1\n"
                  "# pid = 10\n\n"
                  "0 leaf a.php:3\n1 Klass::mid a.php:2\n2 <main> a.php:1\n"
                  "# pid = 10\n\n"
                  "0 usleep <internal>:-1\n1 <main> <internal>:-1\n"
                  "# pid = 9 \n\n");
  BOOST_TEST(r.ok());
  BOOST_TEST(r.skipped == 0u);
  BOOST_TEST(describe(r)
             == "# pid 9 comm php\n"
                "php;<main> <internal>:-1_[php];usleep <internal>:-1_[php] 1\n"
                "# pid 10 comm php\n"
                "php;<main> a.php:1_[php];Klass::mid a.php:2_[php];"
                "leaf a.php:3_[php] 2\n");
  // gProfiler names every PHP process "php"; another comm can be given
  auto fpm = parse_phpspy("0 f a.php:1\n# pid = 3\n\n", "php-fpm");
  BOOST_TEST(fpm.processes.at(0).stacks.at(0).stack
             == "php-fpm;f a.php:1_[php]");
}

BOOST_AUTO_TEST_CASE(phpspy_corrupted_traces_are_skipped_with_their_line) {
  std::string good = "0 f a.php:1\n# pid = 5\n\n";
  struct {
    std::string trace;
    std::string line; // where the skip description must point
  } cases[] = {
      {"1 f a.php:1\n# pid = 5\n\n", "line 4: frame depth '1'"},
      {"0 f a.php:1\n2 g a.php:2\n# pid = 5\n\n", "line 5: frame depth '2'"},
      {"0 f a.php:1\n# pid = x\n\n", "line 5: the pid 'x'"},
      {"0 f a.php:1\n# pid = 0\n\n", "line 5: the pid '0'"},
      {"0 f a.php:1\n# pid = 99999999999\n\n", "line 5: the pid"},
      {"0 f a.php:1\n", "line 4: incomplete last trace"},
      {"0 f a.php:1\n# mem 1 2\n# pid = 5\n\n",
       "line 5: '# mem 1 2' is not a frame line"},
      {"0 f a.php:1\n# ts = 1\n\n",
       "line 5: '# ts = 1' is not the line '# pid = PID'"},
      {"\n\n", "line 4: '' is not the line '# pid = PID'"},
      {"x f a.php:1\n# pid = 5\n\n", "line 4: 'x f a.php:1'"},
      {"0f a.php:1\n# pid = 5\n\n", "line 4: '0f a.php:1'"},
  };
  for (auto& c : cases) {
    BOOST_TEST_CONTEXT(c.trace) {
      auto r = phpspy(good + c.trace);
      BOOST_TEST(r.ok(), r.error);
      BOOST_TEST(r.skipped == 1u);
      BOOST_TEST(r.first_skipped.find(c.line) == 0, r.first_skipped);
      BOOST_TEST(describe(r) == "# pid 5 comm php\nphp;f a.php:1_[php] 1\n");
    }
  }
}

BOOST_AUTO_TEST_CASE(phpspy_without_a_valid_trace_is_an_error) {
  auto r = phpspy("garbage\n\nmore garbage");
  BOOST_TEST(!r.ok());
  BOOST_TEST(r.error.find("phpspy output has no valid trace") == 0, r.error);
  BOOST_TEST(r.error.find("line 1: 'garbage'") != std::string::npos, r.error);
  // a cut-off output with nothing complete in it
  BOOST_TEST(!phpspy("0 f a.php:1\n# pid = 5\n").ok());
  BOOST_TEST(phpspy("").ok());
}

BOOST_AUTO_TEST_CASE(phpspy_names_are_made_safe) {
  auto r = phpspy(std::string{"0 a;b\x01\xc3 c.php:1\n0"} + '\0'
                  + "\n# pid = 5\n\n");
  BOOST_TEST(r.skipped == 1u); // "0\0" is no frame line
  r = phpspy(std::string{"0 a;b\x01\xc3 c.php:1\n1 \n# pid = 5\n\n"});
  BOOST_TEST(r.ok());
  BOOST_TEST(r.processes.at(0).stacks.at(0).stack
             == "php;_[php];a_b \xef\xbf\xbd c.php:1_[php]");
}

BOOST_AUTO_TEST_CASE(dotnet_time_goes_to_the_stack_after_each_event) {
  // gProfiler's replay: the 10 ms before "C b" go to the stack after it
  // ([a]); with dotnet-trace's order that drops the leaf marker frame.
  auto r = dotnet(
      speedscope({"a", "b"}, {ev('O', 0, 0) + "," + ev('O', 1, 0) + ","
                              + ev('C', 1, 10) + "," + ev('C', 0, 10)}));
  BOOST_TEST_REQUIRE(r.ok(), r.error);
  BOOST_TEST(describe(r) == "# pid 7 comm dotnet\ndotnet;a_[net] 1\n");
  // time before the first event (from "startValue") goes to the stack after
  // it too, as in gProfiler
  r = dotnet(speedscope({"a"}, {ev('O', 0, 20) + "," + ev('C', 0, 20)}, "0"));
  BOOST_TEST(describe(r) == "# pid 7 comm dotnet\ndotnet;a_[net] 2\n");
  // startValue as dotnet-trace writes it: a string
  r = dotnet(
      speedscope({"a"}, {ev('O', 0, 20) + "," + ev('C', 0, 20)}, "\"1e1\""));
  BOOST_TEST(describe(r) == "# pid 7 comm dotnet\ndotnet;a_[net] 1\n");
}

BOOST_AUTO_TEST_CASE(dotnet_counts_round_each_stacks_time) {
  // 100 Hz: 10 ms per sample. Frames a, b, c and a leaf marker M, closed
  // first as dotnet-trace does, so that each stack's time goes to it.
  // [a] gets 4 ms in each of two profiles: 8 ms, 1 sample (0 for each
  // alone); [a,c] 14 ms: 1; [a,b] 15 ms: 2 (halves round up).
  std::string p1 = ev('O', 0, 0) + "," + ev('O', 3, 0) + "," + ev('C', 3, 4)
                   + "," + ev('C', 0, 4);
  std::string p2
      = ev('O', 0, 0) + "," + ev('O', 3, 0) + "," + ev('C', 3, 4) + ","
        + ev('O', 2, 4) + "," + ev('O', 3, 4) + "," + ev('C', 3, 18) + ","
        + ev('C', 2, 18) + "," + ev('O', 1, 18) + "," + ev('O', 3, 18) + ","
        + ev('C', 3, 33) + "," + ev('C', 1, 33) + "," + ev('C', 0, 33);
  auto r = dotnet(speedscope({"a", "b", "c", "M"}, {p1, p2}));
  BOOST_TEST_REQUIRE(r.ok(), r.error);
  BOOST_TEST(describe(r)
             == "# pid 7 comm dotnet\n"
                "dotnet;a_[net] 1\n"
                "dotnet;a_[net];b_[net] 2\n"
                "dotnet;a_[net];c_[net] 1\n");
  BOOST_TEST(r.samples == 4u);
  // the same at 1000 Hz: 1 ms per sample
  r = dotnet(speedscope({"a", "b", "c", "M"}, {p1, p2}), 1000);
  BOOST_TEST(describe(r)
             == "# pid 7 comm dotnet\n"
                "dotnet;a_[net] 8\n"
                "dotnet;a_[net];b_[net] 15\n"
                "dotnet;a_[net];c_[net] 14\n");
}

BOOST_AUTO_TEST_CASE(dotnet_time_running_backwards_is_dropped) {
  auto r = dotnet(speedscope({"a", "b"},
                             {ev('O', 0, 50) + "," + ev('O', 1, 40) + ","
                              + ev('C', 1, 60) + "," + ev('C', 0, 60)},
                             "50"));
  BOOST_TEST_REQUIRE(r.ok(), r.error);
  // -10 ms for [a,b] is dropped, the 20 ms before "C b" go to [a]
  BOOST_TEST(describe(r) == "# pid 7 comm dotnet\ndotnet;a_[net] 2\n");
}

BOOST_AUTO_TEST_CASE(dotnet_frames_may_follow_the_profiles) {
  std::string json = R"({"profiles": [{"events": [)" + ev('O', 1, 0) + ","
                     + ev('O', 2, 0) + "," + ev('C', 2, 30) + ","
                     + ev('C', 1, 30)
                     + R"(], "type": "evented", "startValue": 0, "unit":)"
                     + R"( "milliseconds"}], "shared": {"frames": [)"
                     + R"({"name": 5}, {"name": "late", "file": "x.cs"},)"
                     + R"( {"name": "CPU_TIME"}]}})";
  auto r = dotnet(json);
  BOOST_TEST_REQUIRE(r.ok(), r.error);
  // frame 0 has no string name, but no stack uses it
  BOOST_TEST(describe(r) == "# pid 7 comm dotnet\ndotnet;late_[net] 3\n");
}

BOOST_AUTO_TEST_CASE(dotnet_names_are_made_safe) {
  auto r = dotnet(speedscope({R"(a;b\u0000c\"d\\e\u00e9\n)", "M"},
                             {ev('O', 0, 0) + "," + ev('O', 1, 0) + ","
                              + ev('C', 1, 10) + "," + ev('C', 0, 10)}));
  BOOST_TEST_REQUIRE(r.ok(), r.error);
  BOOST_TEST(r.processes.at(0).stacks.at(0).stack
             == "dotnet;a_b c\"d\\e\xc3\xa9 _[net]");
}

BOOST_AUTO_TEST_CASE(dotnet_no_samples_is_not_an_error) {
  auto r = dotnet(R"({"shared": {"frames": []}, "profiles": []})");
  BOOST_TEST(r.ok());
  BOOST_TEST(r.processes.empty());
  r = dotnet(R"({"profiles": []})");
  BOOST_TEST(r.ok());
}

BOOST_AUTO_TEST_CASE(dotnet_structural_faults_are_errors) {
  // frame 0 with the marker frame 1 on top: 10 ms to [0]
  std::string ok_events = ev('O', 0, 0) + "," + ev('O', 1, 0) + ","
                          + ev('C', 1, 10) + "," + ev('C', 0, 10);
  auto profile = [&](const std::string& members) {
    return R"({"shared": {"frames": [{"name": "a"}, {"name": "b"}]}, )"
           R"("profiles": [{)"
           + members + "}]}";
  };
  std::string unit = R"("unit": "milliseconds", )";
  std::string type = R"("type": "evented", )";
  std::string start = R"("startValue": 0, )";
  std::string events = R"("events": [)" + ok_events + "]";
  struct {
    std::string json;
    std::string why;
  } cases[] = {
      {"", "malformed JSON: The document is empty"},
      {"   ", "malformed JSON"},
      {"[]", "the document is not a JSON object"},
      {"42", "the document is not a JSON object"},
      {R"({"shared": {}})", "no \"profiles\""},
      {R"({"profiles": {}})", "\"profiles\" is not an array"},
      {R"({"profiles": 3})", "is not an array"},
      {R"({"profiles": [3]})", "profiles[0] is not an object"},
      {R"({"shared": [], "profiles": []})", "\"shared\" is not an object"},
      {R"({"shared": {"frames": 1}, "profiles": []})",
       "\"shared.frames\" is not an array"},
      {R"({"shared": {"frames": [1]}, "profiles": []})",
       "shared.frames[0] is not an object"},
      {R"({"profiles": [], "profiles": []})",
       "the key \"profiles\" appears twice"},
      {profile(R"("type": "sampled", )" + unit + start + events),
       "profiles[0].type is 'sampled', not 'evented'"},
      {profile(type + R"("unit": "seconds", )" + start + events),
       "profiles[0].unit is 'seconds', not 'milliseconds'"},
      {profile(type + unit + events), "profiles[0] lacks \"startValue\""},
      {profile(unit + start + events), "profiles[0] lacks \"type\""},
      {profile(type + start + events), "profiles[0] lacks \"unit\""},
      {profile(type + unit + start + R"("x": 1)"),
       "profiles[0] lacks \"events\""},
      {profile(type + unit + R"("startValue": "soon", )" + events),
       "profiles[0].startValue is not a number"},
      {profile(type + unit + R"("startValue": null, )" + events),
       "profiles[0].startValue is not a number"},
      {profile(type + unit + start + R"("events": {})"),
       "profiles[0].events is not an array"},
      {profile(type + unit + start + R"("events": [[]])"),
       "profiles[0].events[0] is not an object"},
      {profile(type + unit + start + R"("events": [{"type": "X", )"
               + R"("frame": 0, "at": 1}])"),
       "profiles[0].events[0].type is 'X', not 'O' or 'C'"},
      {profile(type + unit + start + R"("events": [{"type": "O", "at": 1}])"),
       "profiles[0].events[0] lacks \"frame\""},
      {profile(type + unit + start + R"("events": [{"type": "O", )"
               + R"("frame": 0}])"),
       "profiles[0].events[0] lacks \"at\""},
      {profile(type + unit + start + R"("events": [{"type": "O", )"
               + R"("frame": 0.5, "at": 1}])"),
       "profiles[0].events[0].frame is 0.5"},
      {profile(type + unit + start + R"("events": [{"type": "O", )"
               + R"("frame": -1, "at": 1}])"),
       "profiles[0].events[0].frame is -1, not a frame index"},
      {profile(type + unit + start + R"("events": [{"type": "O", )"
               + R"("frame": "0", "at": 1}])"),
       "profiles[0].events[0].frame is not a frame index"},
      {profile(type + unit + start + R"("events": [{"type": "O", )"
               + R"("frame": 0, "at": "1"}])"),
       "profiles[0].events[0].at is not a number"},
      {profile(type + unit + start + R"("events": [)" + ev('O', 0, 0) + ","
               + ev('C', 1, 5) + "]"),
       "profiles[0].events[1] closes frame 1 but the innermost open frame "
       "is 0"},
      {profile(type + unit + start + R"("events": [)" + ev('C', 0, 5) + "]"),
       "profiles[0].events[0] closes frame 0 but no frame is open"},
      {profile(type + unit + start + R"("events": [)" + ev('O', 7, 0) + ","
               + ev('C', 7, 20) + "]"),
       "profiles[0].events[0]: frame 7 is not in \"shared.frames\" (2 "
       "frames)"},
      {profile(type + unit + start + R"("events": [)" + ev('O', 0, 0) + ","
               + ev('C', 0, 1e300) + "]"),
       "out of range"},
      {R"({"shared": {"frames": [{"name": 1}, {"name": "M"}]}, )"
       R"("profiles": [{)"
           + type + unit + start + R"("events": [)" + ok_events + "]}]}",
       "frame 0 of \"shared.frames\" has no \"name\" string"},
      {profile(type + unit + start + events) + "x",
       "malformed JSON: The document root must not be followed by other "
       "values"},
      {profile(type + unit + start + events).substr(0, 120), "malformed JSON"},
  };
  for (auto& c : cases) {
    BOOST_TEST_CONTEXT(c.json) {
      auto r = dotnet(c.json);
      BOOST_TEST(!r.ok());
      BOOST_TEST(r.error.find("dotnet-trace speedscope output: ") == 0,
                 r.error);
      BOOST_TEST(r.error.find(c.why) != std::string::npos, r.error);
    }
  }
}

BOOST_AUTO_TEST_CASE(dotnet_errors_say_where) {
  std::string json = "{\n  \"profiles\": [\n    {\"type\": \"sampled\"}\n]}";
  auto r = dotnet(json);
  BOOST_TEST(r.error.find("(line 3, column") != std::string::npos, r.error);
  // a NUL ends the text for the JSON reader: an error where it is
  std::string nul = R"({"profiles": [])";
  nul += '\0';
  nul += "}";
  r = dotnet(nul);
  BOOST_TEST(!r.ok());
  BOOST_TEST(r.error.find("byte 15") != std::string::npos, r.error);
  BOOST_TEST(!dotnet(read_file("dotnet.speedscope.json"), 0).ok());
  BOOST_TEST(dotnet(read_file("dotnet.speedscope.json"), 0)
                 .error.find("frequency is 0")
             != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

// -- hostile input ------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(runtime_hostile)

BOOST_AUTO_TEST_CASE(limits) {
  runtime_parse_limits small;
  small.max_input = 1000;
  small.max_line = 50;
  small.max_frames = 4;
  small.max_unique_stacks = 3;
  // input
  std::string big(1001, 'a');
  BOOST_TEST(rbspy(big, small).error.find("more than the limit of 1000")
             != std::string::npos);
  BOOST_TEST(!phpspy(big, small).ok());
  BOOST_TEST(!dotnet(big, 100, small).ok());
  // a line, frames per stack
  auto r = rbspy(std::string(60, 'x') + " 1\na;b;c;d;e 1\na;b;c;d 2\n", small);
  BOOST_TEST(r.skipped == 2u);
  BOOST_TEST(r.first_skipped == "line 1: longer than 50 bytes");
  BOOST_TEST(r.samples == 2u);
  r = phpspy("0 a\n1 b\n2 c\n3 d\n4 e\n# pid = 1\n\n"
             "0 " + std::string(60, 'x')
                 + "\n# pid = 1\n\n0 a\n# pid = 1\n\n",
             small);
  BOOST_TEST(r.skipped == 2u);
  BOOST_TEST(r.first_skipped.find("line 5: ") == 0, r.first_skipped);
  BOOST_TEST(r.samples == 1u);
  std::string deep;
  for (int i = 0; i < 5; ++i)
    deep += ev('O', 0, 0) + ",";
  runtime_parse_limits shallow;
  shallow.max_frames = 4;
  BOOST_TEST(dotnet(speedscope({"a"}, {deep + ev('O', 0, 10)}), 100, shallow)
                 .error.find("profiles[0].events[4] opens a frame at depth 4")
             != std::string::npos);
  // distinct stacks
  BOOST_TEST(rbspy("a 1\nb 1\nc 1\nd 1\n", small)
                 .error.find("line 4: more than 3 distinct stacks")
             != std::string::npos);
  BOOST_TEST(rbspy("a 1\nb 1\nc 1\na 5\n", small).ok());
  BOOST_TEST(!phpspy("0 a\n# pid = 1\n\n0 b\n# pid = 2\n\n0 c\n# pid = 1\n\n"
                     "0 d\n# pid = 3\n\n",
                     small)
                  .ok());
  std::string wide;
  for (int i = 0; i < 4; ++i)
    wide += ev('O', i, i * 10) + "," + ev('C', i, i * 10 + 10) + ",";
  wide.pop_back();
  BOOST_TEST(dotnet(speedscope({"a", "b", "c", "d"}, {wide}), 100, small)
                 .error.find("profiles[0].events[6]: more than 3 distinct")
             != std::string::npos);
}

BOOST_AUTO_TEST_CASE(huge_frames_and_lines) {
  // a 4 MiB frame: over the default line limit for rbspy and phpspy, fine
  // inside speedscope JSON
  std::string huge(4 << 20, 'f');
  auto r = rbspy(huge + " 1\nok 1\n");
  BOOST_TEST(r.skipped == 1u);
  BOOST_TEST(r.samples == 1u);
  r = phpspy("0 " + huge + "\n# pid = 1\n\n0 ok\n# pid = 1\n\n");
  BOOST_TEST(r.skipped == 1u);
  BOOST_TEST(r.samples == 1u);
  r = dotnet(
      speedscope({huge, "M"}, {ev('O', 0, 0) + "," + ev('O', 1, 0) + ","
                               + ev('C', 1, 10) + "," + ev('C', 0, 10)}));
  BOOST_TEST_REQUIRE(r.ok(), r.error);
  BOOST_TEST(r.processes.at(0).stacks.at(0).stack.size()
             == huge.size() + std::string{"dotnet;_[net]"}.size());
  // one line of 100000 frames
  r = rbspy(run_of("f", 100000) + " 1\n");
  BOOST_TEST(!r.ok());
  BOOST_TEST(r.error.find("100000 frames") != std::string::npos, r.error);
  // JSON nested deeper than the limit
  std::string nested
      = R"({"x": )" + std::string(100, '[') + std::string(100, ']') + "}";
  BOOST_TEST(dotnet(nested).error.find("nested deeper than 64")
             != std::string::npos);
  std::string very_nested(1 << 20, '[');
  BOOST_TEST(!dotnet(very_nested).ok());
}

BOOST_AUTO_TEST_CASE(truncated_at_every_byte) {
  // rbspy, py-spy and phpspy: any prefix parses to a subset of the whole
  // output's stacks (a cut last line may still parse, with a cut frame or
  // count, so rbspy's and py-spy's prefixes are only checked for safety);
  // speedscope: no crash.
  auto fork = read_file("rbspy_fork.collapsed");
  for (size_t n = 0; n <= fork.size(); ++n)
    rbspy(fork.substr(0, n));
  auto py = read_file("pyspy_fork.raw");
  for (size_t n = 0; n <= py.size(); ++n)
    pyspy(py.substr(0, n));
  auto php = read_file("phpspy.txt");
  auto whole = stack_map(phpspy(php));
  for (size_t n = 0; n <= php.size(); ++n) {
    auto part = stack_map(phpspy(php.substr(0, n)));
    for (auto& [stack, count] : part)
      BOOST_TEST(count <= whole[stack], "prefix " << n << ": " << stack);
  }
  auto json = read_file("dotnet.speedscope.json");
  size_t errors = 0;
  for (size_t n = 0; n < json.size(); ++n)
    errors += dotnet(json.substr(0, n)).ok() ? 0 : 1;
  BOOST_TEST(errors == json.size());
}

BOOST_AUTO_TEST_CASE(random_bytes_and_mutations) {
  // random text over an alphabet that hits every rule, and fixtures with
  // random bytes replaced: never a crash, always the invariants
  std::mt19937 rng(1515);
  const std::string alphabet = std::string("ab ;;01239#\n\n\n\r\t\"{}[],:-_")
                               + '\0' + "\xff\xc3\x80OCat";
  auto random_text = [&](size_t n) {
    std::string s;
    std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1);
    for (size_t i = 0; i < n; ++i)
      s += alphabet[pick(rng)];
    return s;
  };
  for (int i = 0; i < 300; ++i) {
    auto text = random_text(1 + static_cast<size_t>(rng() % 600));
    rbspy(text);
    pyspy(text);
    phpspy(text);
    dotnet(text);
    auto r = parse_async_profiler(text, 1, "java");
    check_invariants(r, "java");
  }
  std::vector<std::pair<std::string, std::function<void(const std::string&)>>>
      fixtures = {
          {read_file("rbspy_fork.collapsed"),
           [](const std::string& t) {
             rbspy(t);
           }},
          {read_file("pyspy_fork.raw"),
           [](const std::string& t) {
             pyspy(t);
           }},
          {read_file("phpspy.txt"),
           [](const std::string& t) {
             phpspy(t);
           }},
          {read_file("dotnet.speedscope.json"),
           [](const std::string& t) {
             dotnet(t);
           }},
      };
  for (auto& [text, parse] : fixtures) {
    for (int i = 0; i < 300; ++i) {
      auto mutated = text;
      int changes = 1 + static_cast<int>(rng() % 4);
      for (int c = 0; c < changes; ++c)
        mutated[rng() % mutated.size()] = static_cast<char>(rng() & 0xff);
      parse(mutated);
    }
  }
}

BOOST_AUTO_TEST_CASE(mutated_speedscope_events_never_break_the_replay) {
  // well-formed JSON with random event sequences: either an error naming an
  // event or stacks whose total time fits in the profile
  std::mt19937 rng(77);
  for (int i = 0; i < 500; ++i) {
    std::string events;
    int n = 1 + static_cast<int>(rng() % 30);
    double at = 0;
    for (int k = 0; k < n; ++k) {
      at += static_cast<double>(rng() % 25) - 2;
      events += (k ? "," : "")
                + ev(rng() % 2 ? 'O' : 'C', static_cast<int>(rng() % 4), at);
    }
    auto r = dotnet(speedscope({"a", "b", "c"}, {events}), 1000);
    if (!r.ok()) {
      BOOST_TEST(r.error.find("profiles[0].events[") != std::string::npos,
                 r.error);
    } else {
      // at 1000 Hz a sample is 1 ms: no more samples than elapsed time
      BOOST_TEST(r.samples <= static_cast<uint64_t>(25 * n));
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

// The perf script converter: its rules on hand-written records, golden files
// of real recordings (test/data/perf), a second, naive implementation of the
// same rules as a cross-check, chunk boundaries, memory growth, and the
// collapse-perf subcommand.

#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "format/collapse.hpp"

using gpa::process_stacks;
using gpa::stack_count;
using gpa::format::collapse_limits;
using gpa::format::perf_collapser;

extern char** environ;

namespace {

const std::string data_dir = GPA_TEST_DATA_DIR "/perf";

const char* samples[] = {"fp_host",  "dwarf_hot",    "kernel_idle",
                         "java_jit", "unknown_nofp", "truncated"};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  BOOST_REQUIRE_MESSAGE(in, "cannot open " << path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string sample(const std::string& name) {
  return read_file(data_dir + "/" + name + ".txt");
}

/// Folded text of `input` fed in one piece.
std::string fold(std::string_view input, perf_collapser* keep = nullptr) {
  perf_collapser local;
  auto& c = keep ? *keep : local;
  c.feed(input);
  c.finish();
  std::string out;
  c.write_folded(out);
  return out;
}

/// Map form of merged(), for readable comparisons.
std::map<std::string, uint64_t> merged_map(const perf_collapser& c) {
  std::map<std::string, uint64_t> m;
  for (auto& s : c.merged())
    m[s.stack] += s.count;
  return m;
}

std::map<std::string, uint64_t> fold_map(std::string_view input) {
  perf_collapser c;
  c.feed(input);
  c.finish();
  return merged_map(c);
}

/// Comparable form of per_process().
std::string describe(const std::vector<process_stacks>& ps) {
  std::ostringstream ss;
  for (auto& p : ps) {
    ss << "pid " << p.pid << " comm '" << p.comm << "'\n";
    for (auto& s : p.stacks)
      ss << "  " << s.stack << " " << s.count << "\n";
  }
  return ss.str();
}

// -- a naive second implementation of the rules in collapse.hpp --------------

/// The converter's rules written the slow, obvious way (regexes, splitting
/// into strings), to cross-check the fast one on real recordings.
struct reference {
  std::map<int, std::map<std::string, uint64_t>> per_pid;
  uint64_t samples = 0;

  static std::string sanitize(std::string s) {
    for (auto& c : s) {
      if (c == ';')
        c = '_';
      else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
        c = ' ';
    }
    return s;
  }

  /// The Java rule of collapse.hpp, as regular expressions.
  static bool java_frame(const std::string& sym, const std::string& dso) {
    static const std::regex map(R"((^|/)perf-[0-9]+\.map$)");
    static const std::regex method(R"(^[^ ()]+ [^ ()]+\.[^ ().]+\([^()]*\)$)");
    return std::regex_search(dso, map) && std::regex_match(sym, method);
  }

  static std::string frame(const std::string& line, bool jvm = false) {
    static const std::regex addr(R"(^[ \t]*[0-9a-fA-F]+ (.*)$)");
    std::smatch m;
    if (!std::regex_match(line, m, addr))
      throw std::runtime_error("not a frame line: " + line);
    std::string rest = m[1];
    std::string sym = rest;
    std::string dso;
    if (!rest.empty() && rest.back() == ')') {
      int depth = 0;
      for (size_t i = rest.size(); i-- > 0;) {
        if (rest[i] == ')')
          ++depth;
        else if (rest[i] == '(' && --depth == 0) {
          dso = rest.substr(i + 1, rest.size() - i - 2);
          sym = rest.substr(0, i);
          break;
        }
      }
    }
    while (!sym.empty() && sym.back() == ' ')
      sym.pop_back();
    sym = std::regex_replace(sym, std::regex(R"(\+0x[0-9a-fA-F]+$)"), "");
    std::string out;
    if (sym.empty()
        || (sym == "[unknown]" && (dso.empty() || dso == "[unknown]")))
      out = "[unknown]";
    else if (sym == "[unknown]") {
      std::string base
          = std::regex_replace(dso, std::regex(R"( \(deleted\)$)"), "");
      base = base.substr(base.find_last_of('/') + 1);
      if (base.size() >= 2 && base.front() == '[' && base.back() == ']')
        base = base.substr(1, base.size() - 2);
      out = "(" + sanitize(base) + ")";
    } else {
      out = sanitize(sym);
    }
    if (dso.find("kernel") != std::string::npos
        || dso.find("vmlinux") != std::string::npos)
      out += "_[k]";
    if (jvm && java_frame(sym, dso))
      out += "_[j]";
    return out;
  }

  explicit reference(const std::string& text,
                     const std::function<bool(int)>& is_jvm = {}) {
    static const std::regex header(
        // From the right: a greedy comm leaves the last pid, [cpu], time.
        R"(^[ \t]*(?:(.*[^ \t])[ \t]+)?(-?\d+)(?:/(-?\d+))?(?:[ \t]+\[\d+\])?[ \t]+\d+\.\d+:(?:[ \t].*)?$)");
    std::istringstream in(text);
    std::string line;
    std::vector<std::string> record;
    auto flush = [&] {
      if (record.empty())
        return;
      std::smatch m;
      if (!std::regex_match(record[0], m, header))
        throw std::runtime_error("not a header: " + record[0]);
      std::string comm = m[1];
      if (comm.empty())
        comm = "[unknown]";
      std::string stack = sanitize(comm);
      int pid = std::stoi(m[2]);
      bool jvm = is_jvm && is_jvm(pid);
      for (size_t i = record.size(); i-- > 1;)
        stack += ";" + frame(record[i], jvm);
      per_pid[pid][stack] += 1;
      ++samples;
      record.clear();
    };
    while (std::getline(in, line)) {
      if (line.empty()) {
        flush();
        continue;
      }
      if (record.empty() && line[0] == '#')
        continue;
      record.push_back(line);
    }
    // An unterminated last line is dropped unless it is a complete frame.
    if (!text.empty() && text.back() != '\n' && !record.empty()
        && (line.empty() || line.back() != ')'))
      record.pop_back();
    flush();
  }

  std::map<std::string, uint64_t> merged() const {
    std::map<std::string, uint64_t> out;
    for (auto& [pid, stacks] : per_pid)
      for (auto& [s, n] : stacks)
        out[s] += n;
    return out;
  }
};

/// Runs the agent binary with `args`, stdin from `in_path` (or /dev/null),
/// returns the exit status and fills `out` and `err`.
int run_agent(const std::vector<std::string>& args, std::string& out,
              std::string& err, const std::string& in_path = "/dev/null") {
  char tmpl_out[] = "/tmp/gpa-collapse-out-XXXXXX";
  char tmpl_err[] = "/tmp/gpa-collapse-err-XXXXXX";
  int fo = mkstemp(tmpl_out);
  int fe = mkstemp(tmpl_err);
  BOOST_REQUIRE(fo >= 0 && fe >= 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, in_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, fo, 1);
  posix_spawn_file_actions_adddup2(&fa, fe, 2);
  std::vector<std::string> argv_s{GPA_AGENT_BIN};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, GPA_AGENT_BIN, &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  BOOST_REQUIRE_EQUAL(rc, 0);
  int status = 0;
  BOOST_REQUIRE_EQUAL(waitpid(pid, &status, 0), pid);
  close(fo);
  close(fe);
  out = read_file(tmpl_out);
  err = read_file(tmpl_err);
  unlink(tmpl_out);
  unlink(tmpl_err);
  BOOST_REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

} // namespace

// -- the rules, on hand-written records
// -----------------------------------------

BOOST_AUTO_TEST_SUITE(collapse_rules)

BOOST_AUTO_TEST_CASE(java_jit_frames_by_their_map_and_shape) {
  using gpa::format::java_jit_frame;
  const std::string_view map = "/tmp/perf-1234.map";
  for (auto sym :
       {"long Hot.fib(int)", "void Hot.main(java.lang.String[])",
        "java.lang.Object jdk.internal.misc.Unsafe.getReferenceVolatile("
        "java.lang.Object, long)",
        "void Hot$$Lambda$14/0x0000000800c03000.run()",
        "void java.lang.Object.<init>()", "int[] a.b.C$D.e_f$1(int[][], T)"})
    BOOST_TEST(java_jit_frame(sym, map), sym);
  // VM code in the same map, and shapes that are not a method.
  for (auto sym : {"Interpreter", "StubRoutines (1)", "I2C/C2I adapters",
                   "throw_div0_exception Runtime1 stub", "SafepointBlob",
                   "native method entry point (kind = native)", "long fib(int)",
                   "long Hot.(int)", "long .fib(int)", "long Hot.fib",
                   "long Hot.fib(int) x", "long  Hot.fib(int)",
                   "long Hot.fib((int))", "Hot.fib(int)", "[unknown]", ""})
    BOOST_TEST(!java_jit_frame(sym, map), sym);
  // Only frames of a perf map.
  BOOST_TEST(java_jit_frame("long Hot.fib(int)", "perf-1.map"));
  for (auto dso : {"/tmp/perf-.map", "/tmp/perf-12a.map", "/tmp/perf-12.mapx",
                   "/usr/lib/libjvm.so", "/tmp/jit-12.dump", "[unknown]", ""})
    BOOST_TEST(!java_jit_frame("long Hot.fib(int)", dso), dso);
}

BOOST_AUTO_TEST_CASE(java_frames_are_marked_in_jvms_only) {
  perf_collapser c;
  c.feed("java 10/11 1.000001: 1 cpu-clock:\n"
         "\t7f00 long Hot.fib(int)+0x44 (/tmp/perf-10.map)\n"
         "\t7f01 Interpreter+0x10 (/tmp/perf-10.map)\n"
         "\t7f02 [unknown] (/tmp/perf-10.map)\n"
         "\t7f03 JavaCalls::call_helper+0x302 (/opt/jdk/lib/server/libjvm.so)\n"
         "\n"
         "node 20/20 1.000002: 1 cpu-clock:\n"
         "\t7f00 long Hot.fib(int)+0x44 (/tmp/perf-20.map)\n"
         "\t7f01 LazyCompile:*fib /app/x.js:3+0x1 (/tmp/perf-20.map)\n"
         "\n"
         "bash 30/30 1.000003: 1 cpu-clock:\n"
         "\t7f00 main+0x1 (/usr/bin/bash)\n"
         "\n");
  c.finish();
  std::map<int32_t, int> asked;
  auto ps = c.per_process([&asked](int32_t pid) {
    ++asked[pid];
    return pid == 10;
  });
  BOOST_TEST(describe(ps)
             == "pid 10 comm 'java'\n"
                "  java;JavaCalls::call_helper;(perf-10.map);Interpreter;long "
                "Hot.fib(int)_[j] 1\n"
                "pid 20 comm 'node'\n"
                "  node;LazyCompile:*fib /app/x.js:3;long Hot.fib(int) 1\n"
                "pid 30 comm 'bash'\n"
                "  bash;main 1\n");
  // Asked once, and only for processes with frames of the Java shape.
  BOOST_TEST((asked == std::map<int32_t, int>{{10, 1}, {20, 1}}));
  // Without the test, nothing is marked and nothing is asked.
  BOOST_TEST(describe(c.per_process()).find("_[j]") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(frames_root_first_offsets_stripped_each_sample_one) {
  auto in = "bash  1234/1234 [001]  100.000001:    1001001 cpu-clock: \n"
            "\tffffffff81082227 mmput+0x57 ([kernel.kallsyms])\n"
            "\t    7fe48f00faff __poll+0x4f (/usr/lib/libc.so.6)\n"
            "\t    55d0aa000123 main+0x13 (/usr/bin/bash)\n"
            "\n"
            "bash  1234/1234 [001]  100.000002:    9999999 cpu-clock: \n"
            "\tffffffff81082227 mmput+0x12 ([kernel.kallsyms])\n"
            "\t    7fe48f00faff __poll+0x4 (/usr/lib/libc.so.6)\n"
            "\t    55d0aa000123 main (/usr/bin/bash)\n"
            "\n";
  BOOST_TEST(fold(in) == "bash;main;__poll;mmput_[k] 2\n");
}

BOOST_AUTO_TEST_CASE(only_a_trailing_hex_offset_is_stripped) {
  auto in = "a 1/1 [000] 1.0: 1 cpu-clock:\n"
            "\t1 operator+ (/x)\n"
            "\t2 operator++0x18 (/x)\n"
            "\t3 operator+=+0xab (/x)\n"
            "\t4 f+0x (/x)\n"
            "\t5 g+0xzz (/x)\n"
            "\t6 a+b+0x0 (/x)\n\n";
  BOOST_TEST(fold(in)
             == "a;a+b;g+0xzz;f+0x;operator+=;operator+;operator+ 1\n");
}

BOOST_AUTO_TEST_CASE(symbols_with_spaces_and_parentheses_dso_is_last_group) {
  auto in = "java 7/9 [000] 1.5: 1 cpu-clock:\n"
            "\t7f00 long Spin.f(long)+0x1c (/tmp/perf-7.map)\n"
            "\t7f01 StubRoutines (1)+0xc9 (/tmp/perf-7.map)\n"
            "\t7f02 std::vector<int>::push_back(int const&)+0x2 (/a b/lib.so)\n"
            "\t7f03 operator() (/x (deleted))\n"
            "\t7f04 [unknown] (/usr/lib/libz.so.1 (deleted))\n"
            "\t7f05 noparen\n\n";
  BOOST_TEST(fold(in)
             == "java;noparen;(libz.so.1);operator();std::vector<int>::push_"
                "back(int const&);StubRoutines (1);long Spin.f(long) 1\n");
}

BOOST_AUTO_TEST_CASE(unknown_symbols_and_kernel_suffix) {
  auto in = "x 5/5 [000] 1.0: 1 cpu-clock:\n"
            "\t0 [unknown] ([unknown])\n"
            "\t1 [unknown] (/usr/lib/x86_64-linux-gnu/libc.so.6)\n"
            "\t2 [unknown] (/tmp/perf-1234.map)\n"
            "\t3 [unknown] ([vdso])\n"
            "\t4 [unknown] ([kernel.kallsyms])\n"
            "\t5 do_idle (/usr/lib/debug/boot/vmlinux-6.1)\n"
            "\t6 [unknown]+0x10 ()\n"
            "\t7  (/bin/x)\n\n";
  BOOST_TEST(fold(in)
             == "x;[unknown];[unknown];do_idle_[k];(kernel.kallsyms)_[k];("
                "vdso);(perf-1234.map);(libc.so.6);[unknown] 1\n");
}

BOOST_AUTO_TEST_CASE(comm_with_spaces_digits_semicolons_round_trips) {
  auto in = "kworker/0:1 12  12/12 [000] 1.0: 1 cpu-clock:\n"
            "\tffffffff1 worker_thread ([kernel.kallsyms])\n\n"
            "my;app 3 12938/12939 [000] 2.0: 1 cpu-clock:\n"
            "\t1 f (/x)\n\n"
            "  12 99/99 3.5: 1 cpu-clock:\n\n"
            "a\x01"
            "b 5/6 [001] 1.0: 1 cpu-clock:\n"
            "\t1 x\ty;z (/x)\n\n";
  perf_collapser c;
  BOOST_TEST(fold(in, &c)
             == "12 1\n"
                "a b;x y_z 1\n"
                "kworker/0:1 12;worker_thread_[k] 1\n"
                "my_app 3;f 1\n");
  BOOST_TEST(c.malformed() == 0u);
  auto ps = c.per_process();
  BOOST_TEST(describe(ps)
             == "pid 5 comm 'a b'\n  a b;x y_z 1\n"
                "pid 12 comm 'kworker/0:1 12'\n"
                "  kworker/0:1 12;worker_thread_[k] 1\n"
                "pid 99 comm '12'\n  12 1\n"
                "pid 12938 comm 'my_app 3'\n  my_app 3;f 1\n");
  // The count is the last space-separated token; the rest is the stack.
  std::string folded;
  c.write_folded(folded);
  std::istringstream lines(folded);
  std::string line;
  auto merged = c.merged();
  size_t i = 0;
  while (std::getline(lines, line)) {
    auto sp = line.rfind(' ');
    BOOST_TEST(line.substr(0, sp) == merged[i].stack);
    BOOST_TEST(std::stoull(line.substr(sp + 1)) == merged[i].count);
    ++i;
  }
  BOOST_TEST(i == merged.size());
}

BOOST_AUTO_TEST_CASE(header_forms) {
  // Without -F +pid (tid only), without cpu, negative pids, padded comm.
  auto in = "perf 321 [000] 10.25: 1 cpu-clock:\n\t1 a (/x)\n\n"
            "hot 7/8 10.5: 1 cpu-clock:\n\t1 b (/x)\n\n"
            ":-1 -1/-1 [001] 11.0: 1 cpu-clock:\n\t1 c (/x)\n\n"
            "       swapper     0/0     [001]  12.0:  1 cpu-clock:\n"
            "\tffffffff1 do_idle ([kernel.kallsyms])\n\n"
            " 1/1 [000] 1.0: 1 cpu-clock:\n\n";
  perf_collapser c;
  BOOST_TEST(fold(in, &c)
             == ":-1;c 1\n[unknown] 1\nhot;b 1\nperf;a 1\nswapper;do_idle_[k] "
                "1\n");
  auto ps = c.per_process();
  BOOST_REQUIRE_EQUAL(ps.size(), 5u);
  BOOST_TEST(ps[0].pid == -1);
  BOOST_TEST(ps[1].pid == 0);
  BOOST_TEST(ps[4].pid == 321);
}

BOOST_AUTO_TEST_CASE(hostile_comms_keep_their_real_pid) {
  // A process names itself like perf's own fields: the header is read from
  // the right, so its samples stay its own (the old reader took the first
  // pid-shaped token followed by a [cpu] or time token: pid 1 here).
  auto in = "x 1/1 [000] 1: 4242/4243 [002] 77.5: 1 cpu-clock:\n"
            "\t1 evil (/x)\n\n"
            "a 1/1 [000] 1.5: 999/999 [001] 78.0: 250000 cpu-clock:ppp:\n"
            "\t1 f (/x)\n\n"
            "7 [003] 2.0: b 555/556 80.25: 1 cpu-clock:\n\n"
            "[001] 3/3 x:y 31337/31337 [000] 81.0: 1 cpu-clock:\n"
            "\t1 g (/x)\n\n"
            "init 1/1 [000] 82.0: 1 cpu-clock:\n\t1 h (/x)\n\n"
            "   [000] 8/8 [001] 83.0: 1 cpu-clock:\n\n";
  perf_collapser c;
  c.feed(in);
  c.finish();
  BOOST_TEST(c.malformed() == 0u);
  BOOST_TEST(describe(c.per_process())
             == "pid 1 comm 'init'\n  init;h 1\n"
                "pid 8 comm '[000]'\n  [000] 1\n"
                "pid 555 comm '7 [003] 2.0: b'\n  7 [003] 2.0: b 1\n"
                "pid 999 comm 'a 1/1 [000] 1.5:'\n"
                "  a 1/1 [000] 1.5:;f 1\n"
                "pid 4242 comm 'x 1/1 [000] 1:'\n  x 1/1 [000] 1:;evil 1\n"
                "pid 31337 comm '[001] 3/3 x:y'\n  [001] 3/3 x:y;g 1\n");
  // The naive reference agrees.
  reference ref(in);
  BOOST_TEST(ref.per_pid.size() == 6u);
  BOOST_TEST(ref.per_pid.count(4242) == 1u);
  BOOST_TEST(ref.per_pid[1].size() == 1u);
}

BOOST_AUTO_TEST_CASE(record_without_frames_and_without_blank_line) {
  // perf record without -g prints no blank lines; a header ends the record
  // before it. Comments between records are skipped.
  auto in = "# ========\n# captured on: x\n# ========\n#\n"
            "a 1/1 [000] 1.0: 1 cpu-clock:\n"
            "b 2/2 [000] 1.0: 1 cpu-clock:\n"
            "\t1 f (/x)\n"
            "c 3/3 [000] 1.0: 1 cpu-clock:\n"
            "\n\n\n"
            "d 4/4 [000] 1.0: 1 cpu-clock:\n";
  perf_collapser c;
  BOOST_TEST(fold(in, &c) == "a 1\nb;f 1\nc 1\nd 1\n");
  BOOST_TEST(c.samples() == 4u);
  BOOST_TEST(c.malformed() == 0u);
}

BOOST_AUTO_TEST_CASE(malformed_records_are_dropped_and_counted) {
  auto in = "\t1 orphan (/x)\n\t2 orphan2 (/x)\n\n" // frames, no header
            "no pid here at all\n\t1 f (/x)\n\n"    // bad header
            "ok 1/1 [000] 1.0: 1 cpu-clock:\n"
            "\tnot-hex frame (/x)\n\t1 g (/x)\n\n" // bad frame
            "fine 2/2 [000] 1.0: 1 cpu-clock:\n\t1 h (/x)\n\n"
            "# a comment inside\n"; // after a record: ok
  perf_collapser c;
  BOOST_TEST(fold(in, &c) == "fine;h 1\n");
  BOOST_TEST(c.samples() == 1u);
  BOOST_TEST(c.malformed() == 3u);
}

BOOST_AUTO_TEST_CASE(limits_bound_lines_and_frames) {
  collapse_limits lim;
  lim.max_line = 64;
  lim.max_frames = 3;
  perf_collapser c{lim};
  std::string in = "a 1/1 [000] 1.0: 1 cpu-clock:\n\t1 f (/x)\n\t2 g (/x)\n"
                   "\t3 h (/x)\n\t4 i (/x)\n\n"
                   "b 2/2 [000] 1.0: 1 cpu-clock:\n\t1 "
                   + std::string(500, 'x') + " (/x)\n\n"
                   + "c 3/3 [000] 1.0: 1 cpu-clock:\n\t1 f (/x)\n\n";
  // Fed in small pieces, so the long line is carried and then dropped.
  for (size_t i = 0; i < in.size(); i += 5)
    c.feed(std::string_view{in}.substr(i, 5));
  c.finish();
  std::string out;
  c.write_folded(out);
  BOOST_TEST(out == "c;f 1\n");
  BOOST_TEST(c.malformed() == 2u);
  // Same input in one piece: the same result.
  perf_collapser d{lim};
  BOOST_TEST(fold(in, &d) == "c;f 1\n");
  BOOST_TEST(d.malformed() == 2u);
}

BOOST_AUTO_TEST_CASE(truncated_last_record) {
  std::string rec = "a 1/1 [000] 1.0: 1 cpu-clock:\n\t1 f (/x)\n\t2 g (/x)\n";
  // Cut inside the last frame line: the record counts with its complete
  // frames only.
  BOOST_TEST(fold(rec + "\n" + rec.substr(0, rec.size() - 4))
             == "a;f 1\na;g;f 1\n");
  // Unterminated but complete frame line: kept.
  BOOST_TEST(fold(rec.substr(0, rec.size() - 1)) == "a;g;f 1\n");
  // Cut inside the header: dropped, counted as malformed.
  perf_collapser c;
  BOOST_TEST(fold(rec + "\n" + "b 2/2 [000] 1.0", &c) == "a;g;f 1\n");
  BOOST_TEST(c.malformed() == 1u);
  // Nothing at all, or only blank lines.
  BOOST_TEST(fold("").empty());
  BOOST_TEST(fold("\n\n  \n").empty());
}

BOOST_AUTO_TEST_CASE(per_process_groups_by_pid_with_main_thread_comm) {
  auto in = "worker 10/11 [000] 1.0: 1 cpu-clock:\n\t1 w (/x)\n\n"
            "main 10/10 [000] 1.0: 1 cpu-clock:\n\t1 m (/x)\n\n"
            "worker 10/11 [000] 1.0: 1 cpu-clock:\n\t1 w (/x)\n\n"
            "other 20/21 [000] 1.0: 1 cpu-clock:\n\t1 o (/x)\n\n"
            "main 30/30 [000] 1.0: 1 cpu-clock:\n\t1 m (/x)\n\n";
  perf_collapser c;
  c.feed(in);
  c.finish();
  BOOST_TEST(describe(c.per_process())
             == "pid 10 comm 'main'\n  main;m 1\n  worker;w 2\n"
                "pid 20 comm 'other'\n  other;o 1\n"
                "pid 30 comm 'main'\n  main;m 1\n");
  // Merged across pids.
  BOOST_TEST(describe({process_stacks{0, "", "", c.merged()}})
             == "pid 0 comm ''\n  main;m 2\n  other;o 1\n  worker;w 2\n");
  auto st = c.stats();
  BOOST_TEST(st.samples == 5u);
  BOOST_TEST(st.unique_stacks == 4u);
  BOOST_TEST(st.unique_frames == 3u);
  BOOST_TEST(st.bytes == std::string_view{in}.size());
  c.clear();
  BOOST_TEST(c.samples() == 0u);
  BOOST_TEST(c.per_process().empty());
}

BOOST_AUTO_TEST_CASE(sanitize_frame_rules) {
  BOOST_TEST(gpa::format::sanitize_frame("a;b\tc\nd\x7f"
                                         "e")
             == "a_b c d e");
  BOOST_TEST(gpa::format::sanitize_frame("ok (x) +y") == "ok (x) +y");
}

BOOST_AUTO_TEST_SUITE_END()

// -- golden files of real recordings
// ---------------------------------------------

BOOST_AUTO_TEST_SUITE(collapse_golden)

BOOST_AUTO_TEST_CASE(samples_match_their_expected_files) {
  for (auto name : samples) {
    BOOST_TEST_CONTEXT(name) {
      auto out = fold(sample(name));
      auto expected = read_file(data_dir + "/" + name + ".expected");
      BOOST_TEST(out == expected);
    }
  }
}

BOOST_AUTO_TEST_CASE(samples_match_the_naive_reference) {
  for (auto name : samples) {
    BOOST_TEST_CONTEXT(name) {
      auto text = sample(name);
      reference ref(text);
      perf_collapser c;
      c.feed(text);
      c.finish();
      BOOST_TEST(c.malformed() == 0u);
      BOOST_TEST(c.samples() == ref.samples);
      BOOST_TEST(c.samples() > 20u);
      BOOST_TEST((merged_map(c) == ref.merged()));
      auto ps = c.per_process();
      BOOST_TEST(ps.size() == ref.per_pid.size());
      for (auto& p : ps) {
        std::map<std::string, uint64_t> got;
        for (auto& s : p.stacks)
          got[s.stack] += s.count;
        BOOST_TEST((got == ref.per_pid[p.pid]), "pid " << p.pid);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(samples_show_what_they_were_recorded_for) {
  auto has
      = [](const std::map<std::string, uint64_t>& m, const std::string& part) {
          return std::any_of(m.begin(), m.end(), [&](auto& kv) {
            return kv.first.find(part) != std::string::npos;
          });
        };
  // Frame pointers: the known hot functions, root first, under the comms
  // set with prctl (a semicolon and spaces in them).
  auto fp = fold_map(sample("fp_host"));
  BOOST_TEST(has(fp, "hotloop;__libc_start_call_main;main;hot::body_compute"));
  BOOST_TEST(has(fp, ";hot::leaf_spin"));
  BOOST_TEST(has(fp, "my_app 3;"));
  // operator+ as a leaf: its "+0x18" offset stripped, its own '+' kept.
  BOOST_TEST(std::any_of(fp.begin(), fp.end(), [](auto& kv) {
    const std::string leaf = "hot::vector_work;hot::operator+";
    return kv.first.size() > leaf.size()
           && kv.first.compare(kv.first.size() - leaf.size(), leaf.size(), leaf)
                  == 0;
  }));
  BOOST_TEST(has(fp, "sys call 42;"));
  BOOST_TEST(has(fp, "_[k]"));
  // DWARF: callers resolved without frame pointers.
  auto dw = fold_map(sample("dwarf_hot"));
  BOOST_TEST(has(dw, "main;hot::body_compute;hot::compute_a;hot::leaf_spin"));
  // Frame-pointer unwinding of a binary without them: unknown callers.
  auto nofp = fold_map(sample("unknown_nofp"));
  BOOST_TEST(has(nofp, "[unknown]"));
  // Kernel-only stacks: every frame carries _[k].
  auto kern = fold_map(sample("kernel_idle"));
  BOOST_TEST(!kern.empty());
  for (auto& [stack, n] : kern) {
    auto first = stack.find(';');
    if (first == std::string::npos)
      continue;
    std::istringstream frames(stack.substr(first + 1));
    std::string f;
    while (std::getline(frames, f, ';'))
      BOOST_TEST((f.size() > 4 && f.substr(f.size() - 4) == "_[k]"), f);
  }
  // JIT frames named from the JDK's perf map.
  auto java = fold_map(sample("java_jit"));
  BOOST_TEST(has(java, "long Spin.g(long);long Spin.f(long)"));
}

BOOST_AUTO_TEST_CASE(java_frames_of_a_real_jvm) {
  // java_jit.txt: a real JVM's JIT frames from its /tmp/perf-PID.map.
  auto text = sample("java_jit");
  perf_collapser c;
  c.feed(text);
  c.finish();
  std::vector<int32_t> asked;
  auto ps = c.per_process([&asked](int32_t pid) {
    asked.push_back(pid);
    return true;
  });
  BOOST_REQUIRE_EQUAL(ps.size(), 1u);
  BOOST_TEST((asked == std::vector<int32_t>{ps[0].pid}));
  std::string folded;
  for (auto& s : ps[0].stacks)
    folded += s.stack + " " + std::to_string(s.count) + "\n";
  BOOST_TEST(folded == read_file(data_dir + "/java_jit.jvm.expected"));
  // The naive reference with the rule as regular expressions agrees.
  reference ref(text, [](int) {
    return true;
  });
  std::map<std::string, uint64_t> got;
  for (auto& s : ps[0].stacks)
    got[s.stack] += s.count;
  BOOST_TEST((got == ref.per_pid[ps[0].pid]));
  // Java methods marked, VM stubs and native frames not.
  BOOST_TEST(folded.find("long Spin.g(long)_[j];long Spin.f(long)_[j]")
             != std::string::npos);
  BOOST_TEST(folded.find("StubRoutines (1);") != std::string::npos);
  BOOST_TEST(folded.find("StubRoutines (1)_[j]") == std::string::npos);
  BOOST_TEST(folded.find("JavaCalls::call_helper;") != std::string::npos);
  // Not a JVM: nothing marked, same stacks otherwise.
  auto plain = c.per_process([](int32_t) {
    return false;
  });
  BOOST_REQUIRE_EQUAL(plain.size(), 1u);
  BOOST_TEST(describe(plain) == describe(c.per_process()));
  BOOST_TEST(describe(plain).find("_[j]") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(truncated_sample_keeps_its_complete_frames) {
  auto full = sample("fp_host");
  auto cut = sample("truncated");
  BOOST_REQUIRE(cut.size() < full.size());
  BOOST_REQUIRE(full.compare(0, cut.size(), cut) == 0);
  perf_collapser a;
  a.feed(full);
  a.finish();
  perf_collapser b;
  b.feed(cut);
  b.finish();
  // Same number of records (the cut one still has its header and frames),
  // nothing malformed, and the cut record lost only frames.
  BOOST_TEST(b.samples() == a.samples());
  BOOST_TEST(b.malformed() == 0u);
  auto ma = merged_map(a);
  auto mb = merged_map(b);
  BOOST_TEST(ma != mb);
  uint64_t diff = 0;
  for (auto& [s, n] : mb)
    if (ma[s] < n)
      diff += n - ma[s];
  BOOST_TEST(diff == 1u);
}

BOOST_AUTO_TEST_SUITE_END()

// -- chunk boundaries and memory
// --------------------------------------------------

BOOST_AUTO_TEST_SUITE(collapse_chunks)

BOOST_AUTO_TEST_CASE(any_chunking_gives_identical_results) {
  std::mt19937 rng(42);
  for (auto name : samples) {
    BOOST_TEST_CONTEXT(name) {
      auto text = sample(name);
      perf_collapser whole;
      whole.feed(text);
      whole.finish();
      auto want = describe(whole.per_process());
      auto want_stats = whole.stats();
      for (int mode = 0; mode < 4; ++mode) {
        perf_collapser c;
        std::uniform_int_distribution<size_t> len(1, mode == 3 ? 70000 : 300);
        for (size_t i = 0; i < text.size();) {
          size_t n = mode == 0 ? 1 : mode == 1 ? 7 : len(rng);
          c.feed(std::string_view{text}.substr(i, n));
          i += n;
        }
        c.finish();
        BOOST_TEST(describe(c.per_process()) == want, "mode " << mode);
        auto st = c.stats();
        BOOST_TEST(st.samples == want_stats.samples);
        BOOST_TEST(st.malformed == want_stats.malformed);
        BOOST_TEST(st.unique_stacks == want_stats.unique_stacks);
        BOOST_TEST(st.bytes == text.size());
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(damaged_input_never_breaks_chunk_invariance) {
  // Hostile input: a real sample with random bytes overwritten, deleted and
  // inserted (NULs, newlines, tabs, parentheses, high bytes). Whatever it
  // makes of it, the converter must not crash and must give the same
  // results for any chunking; every record is a sample or malformed.
  std::mt19937 rng(7);
  auto base = sample("dwarf_hot");
  const char alphabet[] = {'\0', '\n', '\t', ' ', '(', ')',    '+',    '/', ';',
                           '[',  ']',  '0',  'x', 'f', '\x80', '\xff', ':'};
  for (int round = 0; round < 20; ++round) {
    auto text = base;
    std::uniform_int_distribution<size_t> pos(0, text.size() - 1);
    std::uniform_int_distribution<size_t> pick(0, sizeof alphabet - 1);
    for (int i = 0; i < 300; ++i) {
      size_t at = pos(rng) % text.size();
      switch (rng() % 3) {
        case 0: text[at] = alphabet[pick(rng)]; break;
        case 1: text.erase(at, 1 + rng() % 40); break;
        default: text.insert(at, 1 + rng() % 3, alphabet[pick(rng)]);
      }
    }
    perf_collapser whole;
    whole.feed(text);
    whole.finish();
    perf_collapser parts;
    std::uniform_int_distribution<size_t> len(1, 5000);
    for (size_t i = 0; i < text.size();) {
      size_t n = len(rng);
      parts.feed(std::string_view{text}.substr(i, n));
      i += n;
    }
    parts.finish();
    BOOST_TEST(describe(parts.per_process()) == describe(whole.per_process()),
               "round " << round);
    BOOST_TEST(parts.malformed() == whole.malformed());
    BOOST_TEST(whole.samples() > 0u);
    uint64_t total = 0;
    for (auto& s : whole.merged())
      total += s.count;
    BOOST_TEST(total == whole.samples());
  }
}

BOOST_AUTO_TEST_CASE(unique_stacks_stay_constant_while_counts_scale) {
  auto text = sample("fp_host");
  perf_collapser once;
  once.feed(text);
  once.finish();
  perf_collapser many;
  size_t unique_after_first = 0;
  for (int i = 0; i < 100; ++i) {
    many.feed(text);
    if (i == 0)
      unique_after_first = many.unique_stacks();
    BOOST_TEST(many.unique_stacks() == unique_after_first);
    BOOST_TEST(many.stats().unique_frames == once.stats().unique_frames);
  }
  many.finish();
  BOOST_TEST(many.unique_stacks() == once.unique_stacks());
  BOOST_TEST(many.samples() == 100 * once.samples());
  auto a = once.merged();
  auto b = many.merged();
  BOOST_REQUIRE_EQUAL(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    BOOST_TEST(a[i].stack == b[i].stack);
    BOOST_TEST(b[i].count == 100 * a[i].count);
  }
}

BOOST_AUTO_TEST_SUITE_END()

// -- the subcommand
// ---------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(collapse_cli)

BOOST_AUTO_TEST_CASE(file_and_stdin_give_the_golden_output) {
  auto path = data_dir + "/fp_host.txt";
  auto expected = read_file(data_dir + "/fp_host.expected");
  std::string out;
  std::string err;
  BOOST_TEST(run_agent({"collapse-perf", path}, out, err) == 0);
  BOOST_TEST(out == expected);
  BOOST_TEST(err.empty());
  BOOST_TEST(run_agent({"collapse-perf", "-"}, out, err, path) == 0);
  BOOST_TEST(out == expected);
  BOOST_TEST(run_agent({"collapse-perf"}, out, err, path) == 0);
  BOOST_TEST(out == expected);
}

BOOST_AUTO_TEST_CASE(verbose_prints_a_summary_on_stderr) {
  auto path = data_dir + "/fp_host.txt";
  perf_collapser c;
  c.feed(sample("fp_host"));
  c.finish();
  std::string out;
  std::string err;
  BOOST_TEST(run_agent({"collapse-perf", "-v", path}, out, err) == 0);
  BOOST_TEST(out == read_file(data_dir + "/fp_host.expected"));
  BOOST_TEST(err.find(std::to_string(c.samples()) + " samples")
                 != std::string::npos,
             err);
  BOOST_TEST(std::count(err.begin(), err.end(), '\n') == 1);
}

BOOST_AUTO_TEST_CASE(missing_or_unreadable_file_is_a_clear_error) {
  std::string out;
  std::string err;
  BOOST_TEST(run_agent({"collapse-perf", "/nonexistent/perf.txt"}, out, err)
             == 1);
  BOOST_TEST(out.empty());
  BOOST_TEST(err.find("'/nonexistent/perf.txt'") != std::string::npos, err);
  BOOST_TEST(err.find("No such file") != std::string::npos, err);
  BOOST_TEST(run_agent({"collapse-perf", "/tmp"}, out, err) == 1);
  BOOST_TEST(err.find("'/tmp'") != std::string::npos, err);
  BOOST_TEST(run_agent({"collapse-perf", "a", "b"}, out, err) == 2);
}

BOOST_AUTO_TEST_SUITE_END()

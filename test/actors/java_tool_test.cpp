// The Java runtime profiler's tool (actors/runtime_java.*) over scripted JVM
// facts: the children it runs for a JVM (its `java -version` once per java
// executable, its flags once per JVM, then the window's command), the exact
// command lines, and the application metadata members it hands to the
// enricher, including failures, --java-collect-jvm-flags and reused pids;
// in ap mode, gProfiler's settings as asprof's command line, the version
// check, and asprof's output read and removed.

#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "actors/runtime_java.hpp"
#include "runtime/app_id.hpp"
#include "runtime/error.hpp"
#include "runtime/log.hpp"

using namespace gpa;

namespace {

const std::string flags_text = "Connected to remote JVM\n"
                               "JVM response code = 0\n"
                               "[Global flags]\n"
                               "   bool UseG1GC     = true   {product} "
                               "{ergonomic}\n"
                               "   bool UseSerialGC = false  {product} "
                               "{default}\n";
const std::string flags_json = "[{\"name\":\"UseG1GC\",\"type\":\"bool\","
                               "\"value\":\"true\",\"origin\":\"ergonomic\","
                               "\"kind\":[\"product\"]}]";
const std::string version_text
    = "openjdk version \"17.0.15\" 2025-04-15\n"
      "OpenJDK Runtime Environment (build 17.0.15+6-Debian-1deb12u1)\n"
      "OpenJDK 64-Bit Server VM (build 17.0.15+6-Debian-1deb12u1, mixed "
      "mode, sharing)";

run_result ok(std::string out = {}, std::string err = {}) {
  run_result r;
  r.exited = true;
  r.out = std::move(out);
  r.err = std::move(err);
  return r;
}

struct fixture {
  java_tool_config cfg;
  std::shared_ptr<rt::app_metadata_extras> extras
      = std::make_shared<rt::app_metadata_extras>();
  std::map<int32_t, rt::jvm_process> procs;
  std::map<std::string, std::string> programs
      = {{"jattach", "/usr/bin/jattach"},
         {"jcmd", "/usr/bin/jcmd"},
         {"nsenter", "/usr/bin/nsenter"},
         {"asprof", "/opt/ap/bin/asprof"}};
  std::unique_ptr<runtime_tool> tool;
  /// Whether window() checks that the last child parses (perf-map mode).
  bool check_parse = true;

  fixture() {
    log::silence();
    cfg.runtimes.java_mode = "perf-map";
    cfg.extras = extras;
    cfg.which = [this](const std::string& name) {
      auto i = programs.find(name);
      return i == programs.end() ? std::string{} : i->second;
    };
    cfg.process = [this](int32_t pid) -> std::optional<rt::jvm_process> {
      auto i = procs.find(pid);
      if (i == procs.end())
        return std::nullopt;
      return i->second;
    };
    cfg.libjvm_elfid = [](int32_t pid) -> std::optional<std::string> {
      return "buildid:" + std::to_string(pid);
    };
    cfg.start_time = [this](int32_t pid) -> std::optional<uint64_t> {
      auto i = procs.find(pid);
      if (i == procs.end())
        return std::nullopt;
      return i->second.start_time;
    };
  }

  void jvm(int32_t pid, uint64_t start, std::string java = "/proc/9/exe",
           std::string key = "k1") {
    rt::jvm_process p;
    p.start_time = start;
    p.uid = 1000;
    p.gid = 100;
    p.nspid = 9;
    p.java = std::move(java);
    p.java_key = std::move(key);
    procs[pid] = p;
  }

  void make() {
    tool = make_java_tool(cfg);
    BOOST_REQUIRE(tool);
    BOOST_REQUIRE_EQUAL(tool->check(), "");
  }

  static rt::runtime_target target(int32_t pid) {
    return {pid, "java", 100, 0};
  }

  /// Runs one window's chain for `pid`, answering each child with `answer`;
  /// returns the command lines run.
  std::vector<std::vector<std::string>>
  window(int32_t pid,
         std::function<caf::expected<run_result>(const run_request&)> answer) {
    std::vector<std::vector<std::string>> argvs;
    auto t = target(pid);
    auto req = tool->command(t, std::chrono::seconds(10));
    for (size_t step = 1;; ++step) {
      argvs.push_back(req.argv);
      auto r = answer(req);
      auto more = tool->next(t, step, r);
      if (!more) {
        if (r && check_parse)
          BOOST_CHECK(tool->parse(t, *r));
        break;
      }
      BOOST_REQUIRE_LT(step, 10u);
      req = std::move(*more);
    }
    return argvs;
  }

  /// The usual answers: java -version on stderr, the flags on stdout.
  static caf::expected<run_result> good(const run_request& req) {
    if (req.argv.back() == "-version")
      return ok({}, version_text + "\n");
    if (req.argv.back() == "VM.flags -all" || req.argv.back() == "-all")
      return ok(flags_text);
    if (req.argv.size() > 1 && req.argv[1] == "collect")
      return ok(); // no stacks in the output file (none named)
    return ok("9:\n");
  }

  std::string members(int32_t pid) {
    return extras->get(pid, procs[pid].start_time).second;
  }
};

std::string describe_of(runtime_tool& tool) {
  return tool.describe();
}

std::string expected_members(const std::string& version,
                             const std::string& elfid,
                             const std::string& flags) {
  std::string v;
  rt::append_python_json_string(v, version);
  return "\"java_version\":" + v + ",\"libjvm_elfid\":\"" + elfid
         + "\",\"jvm_flags\":" + flags;
}

} // namespace

BOOST_AUTO_TEST_SUITE(java_tool)

BOOST_FIXTURE_TEST_CASE(a_new_jvm_gets_its_metadata_once, fixture) {
  jvm(100, 5000);
  make();
  auto runs = window(100, good);
  BOOST_REQUIRE_EQUAL(runs.size(), 3u);
  BOOST_CHECK((runs[0]
               == std::vector<std::string>{
                   "/usr/bin/nsenter", "--target", "100", "--mount", "--pid",
                   "--setuid", "1000", "--setgid", "100", "--", "/proc/9/exe",
                   "-version"}));
  BOOST_CHECK((runs[1]
               == std::vector<std::string>{"/usr/bin/jattach", "100", "jcmd",
                                           "VM.flags -all"}));
  BOOST_CHECK((runs[2]
               == std::vector<std::string>{"/usr/bin/jattach", "100", "jcmd",
                                           "Compiler.perfmap"}));
  BOOST_CHECK_EQUAL(members(100),
                    expected_members(version_text, "buildid:100", flags_json));
  // The next windows: the perf map only.
  auto again = window(100, good);
  BOOST_REQUIRE_EQUAL(again.size(), 1u);
  BOOST_CHECK_EQUAL(again[0].back(), "Compiler.perfmap");
  // Another JVM of the same java executable: no second `java -version`.
  jvm(101, 6000);
  auto other = window(101, good);
  BOOST_REQUIRE_EQUAL(other.size(), 2u);
  BOOST_CHECK_EQUAL(other[0].back(), "VM.flags -all");
  BOOST_CHECK_EQUAL(members(101),
                    expected_members(version_text, "buildid:101", flags_json));
  // A reused pid is another JVM: read again (its java is known already).
  jvm(100, 7000, "/opt/jdk/bin/java", "k2");
  auto reused = window(100, good);
  BOOST_REQUIRE_EQUAL(reused.size(), 3u);
  BOOST_CHECK_EQUAL(reused[0][10], "/opt/jdk/bin/java");
}

BOOST_FIXTURE_TEST_CASE(the_version_command_is_the_version_step, fixture) {
  jvm(100, 5000);
  make();
  auto t = target(100);
  auto req = tool->command(t, std::chrono::seconds(10));
  // Clean environment, bounded in time and output.
  BOOST_CHECK(req.replace_env);
  BOOST_CHECK(
      (req.env
       == std::vector<std::string>{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}));
  BOOST_CHECK(req.timeout == java_version_timeout);
  BOOST_CHECK_LE(req.err_cap, 64u << 10);
}

BOOST_FIXTURE_TEST_CASE(failures_are_gprofilers_error_values, fixture) {
  jvm(100, 5000);
  make();
  int version_runs = 0;
  auto answer = [&](const run_request& req) -> caf::expected<run_result> {
    if (req.argv.back() == "-version") {
      ++version_runs;
      auto r = ok({}, "Error: could not find libjava.so\n");
      r.exit_code = 1;
      return r;
    }
    if (req.argv.back() == "VM.flags -all") {
      auto r = ok();
      r.exited = false;
      r.timed_out = true;
      r.term_signal = 15;
      return r;
    }
    return ok();
  };
  // `java -version` fails: tried again next windows, then said.
  window(100, answer);
  BOOST_CHECK_EQUAL(members(100), "");
  auto second = window(100, answer);
  BOOST_CHECK_EQUAL(second.size(), 2u); // no flags again: they are known
  BOOST_CHECK_EQUAL(members(100), "");
  window(100, answer);
  BOOST_CHECK_EQUAL(version_runs, java_version_attempts);
  BOOST_CHECK_EQUAL(members(100),
                    expected_members("error: CalledProcessError", "buildid:100",
                                     "\"error CalledProcessTimeoutError\""));
  BOOST_CHECK_EQUAL(window(100, answer).size(), 1u);
}

BOOST_FIXTURE_TEST_CASE(no_flags_no_java_and_no_metadata, fixture) {
  cfg.compat.java_collect_jvm_flags = "none";
  jvm(100, 5000, "", "");
  make();
  auto runs = window(100, good);
  BOOST_REQUIRE_EQUAL(runs.size(), 1u);
  BOOST_CHECK_EQUAL(runs[0].back(), "Compiler.perfmap");
  BOOST_CHECK_EQUAL(members(100),
                    expected_members("/java not found", "buildid:100", "[]"));

  // With the application metadata off, no child but the perf map.
  cfg.extras = nullptr;
  cfg.compat.java_collect_jvm_flags = "default";
  jvm(102, 5000);
  make();
  BOOST_CHECK_EQUAL(window(102, good).size(), 1u);
}

BOOST_FIXTURE_TEST_CASE(a_list_of_flags_through_jcmd, fixture) {
  cfg.compat.java_collect_jvm_flags = "UseSerialGC";
  programs.erase("jattach");
  jvm(100, 5000);
  make();
  auto runs = window(100, good);
  BOOST_REQUIRE_EQUAL(runs.size(), 3u);
  BOOST_CHECK((
      runs[1]
      == std::vector<std::string>{"/usr/bin/jcmd", "100", "VM.flags", "-all"}));
  BOOST_CHECK((
      runs[2]
      == std::vector<std::string>{"/usr/bin/jcmd", "100", "Compiler.perfmap"}));
  BOOST_CHECK_EQUAL(
      members(100),
      expected_members(version_text, "buildid:100",
                       "[{\"name\":\"UseSerialGC\",\"type\":\"bool\","
                       "\"value\":\"false\",\"origin\":\"default\","
                       "\"kind\":[\"product\"]}]"));
}

BOOST_FIXTURE_TEST_CASE(without_nsenter_the_version_says_so, fixture) {
  programs.erase("nsenter");
  jvm(100, 5000);
  make();
  auto runs = window(100, good);
  BOOST_REQUIRE_EQUAL(runs.size(), 2u);
  BOOST_CHECK_EQUAL(members(100), expected_members("error: nsenter not found",
                                                   "buildid:100", flags_json));
}

BOOST_FIXTURE_TEST_CASE(a_jvm_gone_mid_way_leaves_nothing_behind, fixture) {
  jvm(100, 5000);
  make();
  auto t = target(100);
  tool->command(t, std::chrono::seconds(10));
  procs.erase(100);
  // The version step could not run: the chain goes on, the perf map tells.
  caf::expected<run_result> failed
      = make_gpa_error(ec::spawn_failed, "no such process");
  auto more = tool->next(t, 1, failed);
  BOOST_REQUIRE(more);
  BOOST_CHECK_EQUAL(more->argv.back(), "VM.flags -all");
  BOOST_CHECK(extras->get(100, 5000).second.empty());
  // A process that is gone before the window: just the perf map.
  BOOST_CHECK_EQUAL(window(100, good).size(), 1u);
}

BOOST_AUTO_TEST_CASE(ap_intervals_and_options) {
  BOOST_CHECK_EQUAL(ap_interval_ns(11), 90909090);
  BOOST_CHECK_EQUAL(ap_interval_ns(50), 20000000);
  BOOST_CHECK_EQUAL(ap_interval_ns(1000), 1000000);
  BOOST_CHECK_EQUAL(ap_interval_ns(3), 333333333);
  BOOST_CHECK_EQUAL(ap_interval_ns(0), 1000000000);
  std::vector<std::string> unmapped;
  auto o = asprof_options(
      "cstack=no,jstackdepth=512,,threads,features=vtable+comptask,"
      "filter=1;2,mcache=7,includemm,file=/tmp/x,sig=1,interval",
      &unmapped);
  BOOST_CHECK(
      (o
       == std::vector<std::string>{"--cstack", "no", "-j", "512", "-t", "-F",
                                   "vtable,comptask", "--filter", "1,2"}));
  BOOST_CHECK(
      (unmapped
       == std::vector<std::string>{"mcache=7", "includemm", "file=/tmp/x",
                                   "sig=1", "interval"}));
  BOOST_CHECK(asprof_options("").empty());
}

BOOST_FIXTURE_TEST_CASE(ap_mode_runs_asprof_over_the_window, fixture) {
  cfg.runtimes.java_mode = "ap";
  cfg.runtimes.java_async_profiler_path = "asprof";
  cfg.frequency = 50;
  cfg.temp_dir = "/tmp/gpa-private";
  cfg.compat.java_collect_thread_names = true;
  cfg.compat.java_async_profiler_safemode = 3;
  cfg.compat.java_async_profiler_args = "cstack=no,mcache=5";
  bool perf_events = true;
  cfg.perf_events = [&perf_events] {
    return perf_events;
  };
  jvm(100, 5000);
  make();
  BOOST_CHECK_EQUAL(tool->start_at(), 0.0);
  std::vector<run_request> reqs;
  auto t = target(100);
  auto req = tool->command(t, std::chrono::seconds(60));
  for (size_t step = 1;; ++step) {
    reqs.push_back(req);
    auto more = tool->next(t, step, good(req));
    if (!more)
      break;
    req = *more;
  }
  BOOST_REQUIRE_EQUAL(reqs.size(), 3u);
  BOOST_CHECK_EQUAL(reqs[0].argv.back(), "-version");
  // gProfiler reads a JVM's flags through asprof's jcmd.
  BOOST_CHECK((reqs[1].argv
               == std::vector<std::string>{"/opt/ap/bin/asprof", "jcmd", "100",
                                           "VM.flags -all"}));
  BOOST_CHECK((reqs[2].argv
               == std::vector<std::string>{"/opt/ap/bin/asprof",
                                           "collect",
                                           "-d",
                                           "58",
                                           "-e",
                                           "cpu",
                                           "-i",
                                           "20000000",
                                           "--fdtransfer",
                                           "-o",
                                           "collapsed",
                                           "-a",
                                           "-g",
                                           "-t",
                                           "-F",
                                           "probesp,vtable",
                                           "--safe-mode",
                                           "3",
                                           "--cstack",
                                           "no",
                                           "100"}));
  BOOST_CHECK(reqs[2].out_mode == stdout_mode::file);
  BOOST_CHECK_EQUAL(reqs[2].out_file.find('/'), std::string::npos);
  BOOST_CHECK(reqs[2].timeout > std::chrono::seconds(58));
  BOOST_CHECK_NE(describe_of(*tool).find("asprof"), std::string::npos);

  // Without perf events, auto is itimer (and no fdtransfer); an explicit
  // mode is kept.
  perf_events = false;
  check_parse = false;
  make();
  jvm(101, 5000);
  auto argv = window(101, good).back();
  BOOST_CHECK_EQUAL(argv[5], "itimer");
  BOOST_CHECK(std::find(argv.begin(), argv.end(), "--fdtransfer")
              == argv.end());
  BOOST_CHECK_EQUAL(argv[3], "8");
  cfg.compat.java_async_profiler_mode = "cpu";
  make();
  jvm(102, 5000);
  BOOST_CHECK_EQUAL(window(102, good).back()[5], "cpu");
}

BOOST_FIXTURE_TEST_CASE(ap_output_replaces_perfs_stacks, fixture) {
  cfg.runtimes.java_mode = "ap";
  cfg.runtimes.java_async_profiler_path = "asprof";
  cfg.extras = nullptr;
  cfg.compat.java_no_version_check = true;
  auto dir = std::filesystem::temp_directory_path()
             / ("gpa-java-tool-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  cfg.temp_dir = dir.string();
  jvm(100, 5000);
  make();
  auto t = target(100);
  auto req = tool->command(t, std::chrono::seconds(10));
  BOOST_REQUIRE_EQUAL(req.argv[1], "collect"); // nothing before it
  auto file = dir / req.out_file;
  std::ofstream(file) << "Hot.main([Ljava/lang/String|)V_[j];Hot.fib(I)J_[j] "
                         "7\nHot.main([Ljava/lang/String|)V_[j] 3\n";
  auto r = ok();
  r.out_path = file.string();
  BOOST_CHECK(!tool->next(t, 1, r));
  auto stacks = tool->parse(t, r);
  BOOST_REQUIRE(stacks);
  BOOST_CHECK_EQUAL(stacks->pid, 100);
  BOOST_REQUIRE_EQUAL(stacks->stacks.size(), 2u);
  BOOST_CHECK_EQUAL(stacks->stacks[0].stack,
                    "java;Hot.main([Ljava/lang/String|)V_[j]");
  BOOST_CHECK_EQUAL(stacks->stacks[1].stack,
                    "java;Hot.main([Ljava/lang/String|)V_[j];Hot.fib(I)J_[j]");
  BOOST_CHECK_EQUAL(stacks->stacks[1].count, 7u);
  // Read once, then removed.
  BOOST_CHECK(!std::filesystem::exists(file));

  // A failed asprof is an error stack with its message; garbage too.
  req = tool->command(t, std::chrono::seconds(10));
  auto bad = ok({}, "Target JVM failed to load /opt/ap/lib/x.so\n");
  bad.exit_code = 255;
  auto failed = tool->parse(t, bad);
  BOOST_REQUIRE(!failed);
  BOOST_CHECK_NE(message_of(failed.error())
                     .find("async-profiler failed (exit 255): Target JVM "
                           "failed to load"),
                 std::string::npos);
  req = tool->command(t, std::chrono::seconds(10));
  file = dir / req.out_file;
  std::ofstream(file) << "no count here\n";
  r.out_path = file.string();
  BOOST_CHECK(!tool->parse(t, r));
  BOOST_CHECK(!std::filesystem::exists(file));
  std::filesystem::remove_all(dir);
}

BOOST_FIXTURE_TEST_CASE(ap_checks_the_jvm_version_first, fixture) {
  cfg.runtimes.java_mode = "ap";
  cfg.runtimes.java_async_profiler_path = "asprof";
  cfg.extras = nullptr;
  jvm(100, 5000, "/opt/jdk6/bin/java", "jdk6");
  make();
  auto old = [](const run_request& req) -> caf::expected<run_result> {
    if (req.argv.back() == "-version")
      return ok({}, "java version \"1.6.0_45\"\n"
                    "Java(TM) SE Runtime Environment (build 1.6.0_45-b06)\n"
                    "Java HotSpot(TM) 64-Bit Server VM (build 20.45-b01, mixed "
                    "mode)\n");
    return ok();
  };
  // The version first; a HotSpot 6 is left out, as gProfiler does.
  auto t = target(100);
  BOOST_CHECK_EQUAL(tool->refuse(t), "");
  auto req = tool->command(t, std::chrono::seconds(10));
  BOOST_REQUIRE_EQUAL(req.argv.back(), "-version");
  auto r = old(req);
  BOOST_CHECK(!tool->next(t, 1, r));
  auto skipped = tool->parse(t, *r);
  BOOST_REQUIRE(!skipped);
  BOOST_CHECK(skipped.error() == ec::skipped);
  BOOST_CHECK_NE(message_of(skipped.error())
                     .find("profiling this JVM is not supported (unsupported "
                           "HotSpot version)"),
                 std::string::npos);
  // Known now: refused before any child.
  BOOST_CHECK_NE(tool->refuse(t).find("unsupported HotSpot version"),
                 std::string::npos);
  // A JDK 17 of another java passes.
  check_parse = false;
  jvm(101, 5000);
  BOOST_CHECK_EQUAL(tool->refuse(target(101)), "");
  auto runs = window(101, good);
  BOOST_REQUIRE_EQUAL(runs.size(), 2u);
  BOOST_CHECK_EQUAL(runs[1][1], "collect");

  // --java-no-version-check: no version read, asprof at once.
  cfg.compat.java_no_version_check = true;
  make();
  BOOST_CHECK_EQUAL(tool->refuse(t), "");
  BOOST_CHECK_EQUAL(tool->command(t, std::chrono::seconds(10)).argv[1],
                    "collect");
}

BOOST_FIXTURE_TEST_CASE(ap_without_asprof_is_perf_map, fixture) {
  cfg.runtimes.java_mode = "ap";
  jvm(100, 5000);
  make(); // no --java-async-profiler-path
  BOOST_CHECK_EQUAL(tool->start_at(), 0.8);
  BOOST_CHECK_NE(describe_of(*tool).find("needs --java-async-profiler-path"),
                 std::string::npos);
  BOOST_CHECK_EQUAL(window(100, good).back().back(), "Compiler.perfmap");
  // A path that is not an executable: perf-map too.
  cfg.runtimes.java_async_profiler_path = "/nonexistent/asprof";
  make();
  BOOST_CHECK_EQUAL(tool->start_at(), 0.8);
  jvm(101, 5000);
  BOOST_CHECK_EQUAL(window(101, good).back().back(), "Compiler.perfmap");
}

BOOST_AUTO_TEST_SUITE_END()

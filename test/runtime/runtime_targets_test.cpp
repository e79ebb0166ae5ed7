// Finding the processes of each runtime (runtime/runtime_targets.*):
// gProfiler's maps and executable rules on captured lines, a scan of a
// fake /proc that reads each process's maps once, the --pids, age and
// top-by-CPU limits, and a scan of the real /proc with real interpreters.

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <csignal>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/proc.hpp"
#include "runtime/process_env.hpp"
#include "runtime/runtime_targets.hpp"

namespace rt = gpa::rt;
using rt::runtime_kind;
using namespace std::string_literals;

namespace {

const char* const jvm_line
    = "7f3a5c000000-7f3a5d0d2000 r-xp 00000000 08:01 1319457                  "
      "  /usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so";

std::string maps_line(const std::string& path) {
  return "7f3a5c000000-7f3a5d0d2000 r-xp 00000000 08:01 1319457    " + path;
}

/// A directory laid out like /proc for the processes a test adds.
struct fake_proc_dir {
  rt::private_temp_dir temp{"/tmp"};

  void add(int32_t pid, const std::string& comm, uint64_t start,
           uint64_t cpu_ticks, const std::string& exe,
           const std::vector<std::string>& maps,
           const std::string& cmdline = "") {
    auto dir = temp.path() + "/" + std::to_string(pid);
    ::mkdir(dir.c_str(), 0700);
    std::ofstream(dir + "/stat")
        << pid << " (" << comm << ") S 1 1 1 0 -1 4194560 0 0 0 0 " << cpu_ticks
        << " 0 0 0 20 0 1 0 " << start << " 1000 10 0\n";
    std::ofstream out(dir + "/maps");
    for (auto& line : maps)
      out << line << "\n";
    std::ofstream(dir + "/cmdline") << cmdline;
    ::unlink((dir + "/exe").c_str());
    if (::symlink(exe.c_str(), (dir + "/exe").c_str()) != 0)
      BOOST_FAIL("symlink failed");
  }

  void remove(int32_t pid) {
    rt::remove_tree(temp.path() + "/" + std::to_string(pid));
  }

  rt::target_finder finder(uint64_t recheck = 10,
                           const std::string& php_filter = {}) {
    return rt::target_finder(rt::make_proc_source(temp.path()), temp.path(),
                             recheck, php_filter);
  }
};

/// Above the kernel's largest pid (4194304): never the test's own.
constexpr int32_t P = 5000000;

std::vector<int32_t> pids_of(const std::vector<rt::runtime_target>& targets) {
  std::vector<int32_t> pids;
  for (auto& t : targets)
    pids.push_back(t.pid);
  return pids;
}

} // namespace

BOOST_AUTO_TEST_SUITE(runtime_targets)

BOOST_AUTO_TEST_CASE(maps_rules_are_gprofilers) {
  struct row {
    runtime_kind kind;
    std::string line;
    bool match;
  };
  std::vector<row> rows{
      {runtime_kind::java, jvm_line, true},
      {runtime_kind::java, maps_line("/opt/zing/lib/libjvm.so (deleted)"),
       true},
      {runtime_kind::java, maps_line("/usr/lib/libjvmti.so"), false},
      {runtime_kind::java, maps_line("/usr/bin/java"), false},
      {runtime_kind::python, maps_line("/usr/bin/python3.11"), true},
      {runtime_kind::python,
       maps_line("/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0"), true},
      {runtime_kind::python,
       maps_line("/root/.pyenv/versions/3.12.1/bin/python3.12"), true},
      {runtime_kind::python,
       maps_line("/srv/venv/lib/python3.11/site-packages/numpy/core/"
                 "_multiarray_umath.cpython-311-x86_64-linux-gnu.so"),
       true},
      {runtime_kind::python,
       maps_line("/usr/lib/python3/dist-packages/yaml/_yaml.so"), true},
      {runtime_kind::python, maps_line("/usr/lib/python3/site-packages/"),
       false},
      {runtime_kind::python, maps_line("/usr/bin/perl"), false},
      {runtime_kind::python, maps_line("/usr/lib/jython/lib.so"), false},
      {runtime_kind::ruby, maps_line("/usr/bin/ruby3.1"), true},
      {runtime_kind::ruby,
       maps_line("/usr/lib/x86_64-linux-gnu/libruby-3.1.so.3.1.2"), false},
      {runtime_kind::dotnet, maps_line("/usr/share/dotnet/dotnet"), true},
      {runtime_kind::dotnet,
       maps_line("/usr/share/dotnet/shared/Microsoft.NETCore.App/8.0.0/"
                 "libcoreclr.so"),
       false},
      {runtime_kind::java,
       "7ffd1c5e1000-7ffd1c602000 rw-p 00000000 00:00 0     [stack]", false},
      {runtime_kind::python, "", false},
      {runtime_kind::nodejs, maps_line("/usr/bin/node"), false},
  };
  for (auto& r : rows)
    BOOST_TEST_CONTEXT(rt::to_string(r.kind) << ": " << r.line) {
      BOOST_CHECK_EQUAL(rt::maps_line_matches(r.kind, r.line), r.match);
    }
  BOOST_CHECK(rt::node_executable("/usr/bin/node"));
  BOOST_CHECK(rt::node_executable("/usr/local/bin/nodejs"));
  BOOST_CHECK(rt::node_executable("/opt/node-v20/bin/node (deleted)"));
  BOOST_CHECK(!rt::node_executable("/opt/node-v20/bin/npm-helper"));
  BOOST_CHECK(!rt::node_executable(""));
  BOOST_CHECK(rt::blacklisted_python(
      "/usr/bin/python3\0/usr/bin/unattended-upgrade-shutdown\0--wait-for-"
      "signal\0/usr/share/unattended-upgrades"s));
  BOOST_CHECK(
      rt::blacklisted_python("/usr/bin/python3\0/usr/bin/supervisord\0-n"s));
  BOOST_CHECK(!rt::blacklisted_python("python3\0-m\0http.server"s));
}

BOOST_AUTO_TEST_CASE(a_scan_reads_each_process_maps_once) {
  fake_proc_dir p;
  p.add(P + 100, "java", 1000, 50, "/usr/lib/jvm/bin/java",
        {maps_line("/usr/lib/jvm/bin/java"), jvm_line});
  p.add(P + 101, "python3", 1000, 10, "/usr/bin/python3.11",
        {maps_line("/usr/bin/python3.11")}, "python3\0app.py"s);
  p.add(P + 102, "node", 1000, 10, "/usr/bin/node",
        {maps_line("/usr/bin/node")});
  p.add(P + 103, "bash", 1000, 10, "/usr/bin/bash",
        {maps_line("/usr/bin/bash")});
  p.add(P + 104, "python3", 1000, 10, "/usr/bin/python3.11",
        {maps_line("/usr/bin/python3.11")},
        "/usr/bin/python3\0/usr/bin/supervisord"s);
  auto f = p.finder();
  std::vector<runtime_kind> all{runtime_kind::java, runtime_kind::python,
                                runtime_kind::nodejs, runtime_kind::ruby};
  auto found = f.scan(all, 2000, 100);
  BOOST_CHECK(pids_of(found[runtime_kind::java])
              == std::vector<int32_t>{P + 100});
  BOOST_CHECK(pids_of(found[runtime_kind::python])
              == std::vector<int32_t>{P + 101});
  BOOST_CHECK(pids_of(found[runtime_kind::nodejs])
              == std::vector<int32_t>{P + 102});
  BOOST_CHECK(found[runtime_kind::ruby].empty());
  BOOST_CHECK_EQUAL(found[runtime_kind::java][0].comm, "java");
  BOOST_CHECK_CLOSE(found[runtime_kind::java][0].age_s, 10.0, 0.001);
  BOOST_CHECK_EQUAL(f.maps_reads(), 5u);
  // Nothing changed: no maps read again.
  for (int i = 0; i < 3; ++i)
    f.scan(all, 2100 + i, 100);
  BOOST_CHECK_EQUAL(f.maps_reads(), 5u);
  // bash execs into ruby (same pid and start time, new executable): read
  // again and found.
  p.add(P + 103, "ruby", 1000, 10, "/usr/bin/ruby3.1",
        {maps_line("/usr/bin/ruby3.1")});
  found = f.scan(all, 2200, 100);
  BOOST_CHECK(pids_of(found[runtime_kind::ruby])
              == std::vector<int32_t>{P + 103});
  BOOST_CHECK_EQUAL(f.maps_reads(), 6u);
  // pid P+100 exits and another process gets its pid.
  p.add(P + 100, "sh", 2150, 0, "/usr/bin/dash", {maps_line("/usr/bin/dash")});
  found = f.scan(all, 2300, 100);
  BOOST_CHECK(found[runtime_kind::java].empty());
  BOOST_CHECK_EQUAL(f.maps_reads(), 7u);
  // Gone processes are not listed.
  p.remove(P + 101);
  found = f.scan(all, 2400, 100);
  BOOST_CHECK(found[runtime_kind::python].empty());
}

BOOST_AUTO_TEST_CASE(one_process_is_checked_by_its_maps) {
  fake_proc_dir p;
  std::vector<std::string> maps(5000, maps_line("/usr/lib/libc.so.6"));
  maps.push_back(maps_line("/opt/jdk/lib/server/libjvm.so (deleted)"));
  p.add(P + 300, "java", 1000, 10, "/opt/jdk/bin/java", maps);
  p.add(P + 301, "node", 1000, 10, "/usr/bin/node",
        {maps_line("/usr/bin/node"), maps_line("/tmp/perf-7.map")});
  BOOST_CHECK(
      rt::process_maps_match(runtime_kind::java, P + 300, p.temp.path()));
  BOOST_CHECK(
      !rt::process_maps_match(runtime_kind::python, P + 300, p.temp.path()));
  BOOST_CHECK(
      !rt::process_maps_match(runtime_kind::java, P + 301, p.temp.path()));
  BOOST_CHECK(
      !rt::process_maps_match(runtime_kind::java, P + 302, p.temp.path()));
}

BOOST_AUTO_TEST_CASE(a_library_loaded_late_is_found_at_the_recheck) {
  fake_proc_dir p;
  p.add(P + 200, "app", 1000, 10, "/usr/bin/app", {maps_line("/usr/bin/app")});
  auto f = p.finder(3);
  std::vector<runtime_kind> py{runtime_kind::python};
  BOOST_CHECK(f.scan(py, 2000, 100)[runtime_kind::python].empty());
  // The program embeds Python later.
  p.add(P + 200, "app", 1000, 10, "/usr/bin/app",
        {maps_line("/usr/bin/app"), maps_line("/usr/lib/libpython3.11.so")});
  BOOST_CHECK(f.scan(py, 2100, 100)[runtime_kind::python].empty());
  BOOST_CHECK(f.scan(py, 2200, 100)[runtime_kind::python].empty());
  BOOST_CHECK(pids_of(f.scan(py, 2300, 100)[runtime_kind::python])
              == std::vector<int32_t>{P + 200});
}

BOOST_AUTO_TEST_CASE(cpu_share_is_since_the_last_scan) {
  fake_proc_dir p;
  // Both 10 s old at the first scan; P+300 used most of its CPU long ago.
  p.add(P + 300, "java", 1000, 900, "/j", {jvm_line});
  p.add(P + 301, "java", 1000, 100, "/j", {jvm_line});
  auto f = p.finder();
  std::vector<runtime_kind> java{runtime_kind::java};
  auto first = f.scan(java, 2000, 100)[runtime_kind::java];
  BOOST_REQUIRE_EQUAL(first.size(), 2u);
  BOOST_CHECK_CLOSE(first[0].cpu_share, 0.9, 0.001);
  BOOST_CHECK_CLOSE(first[1].cpu_share, 0.1, 0.001);
  // In the next 10 s, P+301 is the busy one.
  p.add(P + 300, "java", 1000, 910, "/j", {jvm_line});
  p.add(P + 301, "java", 1000, 900, "/j", {jvm_line});
  auto next = f.scan(java, 3000, 100)[runtime_kind::java];
  rt::target_limits top1;
  top1.max_processes = 1;
  BOOST_CHECK(pids_of(rt::select_targets(next, top1))
              == std::vector<int32_t>{P + 301});
}

BOOST_AUTO_TEST_CASE(php_processes_are_found_by_name_as_pgrep_finds_them) {
  fake_proc_dir p;
  p.add(P + 400, "php-fpm8.2", 1000, 10, "/usr/sbin/php-fpm8.2",
        {maps_line("/usr/sbin/php-fpm8.2")});
  p.add(P + 401, "php", 1000, 10, "/usr/bin/php8.2",
        {maps_line("/usr/bin/php8.2")});
  p.add(P + 402, "phpspy", 1000, 10, "/opt/phpspy", {maps_line("/opt/phpspy")});
  std::vector<runtime_kind> php{runtime_kind::php};
  // gProfiler's default filter: php-fpm workers only.
  auto fpm = p.finder(10, "php-fpm");
  BOOST_CHECK(pids_of(fpm.scan(php, 2000, 100)[runtime_kind::php])
              == std::vector<int32_t>{P + 400});
  // An extended regular expression, searched in the name.
  auto exact = p.finder(10, "^php([0-9.]*|-fpm.*)$");
  BOOST_CHECK(pids_of(exact.scan(php, 2000, 100)[runtime_kind::php])
              == (std::vector<int32_t>{P + 400, P + 401}));
  // No filter: no PHP process; and PHP is never found by maps.
  auto none = p.finder();
  BOOST_CHECK(none.scan(php, 2000, 100)[runtime_kind::php].empty());
  BOOST_CHECK(
      !rt::maps_line_matches(runtime_kind::php, maps_line("/usr/bin/php8.2")));
  // A process that renames itself is matched at the next scan.
  p.add(P + 401, "php-fpm: pool", 1000, 10, "/usr/bin/php8.2",
        {maps_line("/usr/bin/php8.2")});
  BOOST_CHECK(pids_of(fpm.scan(php, 2100, 100)[runtime_kind::php])
              == (std::vector<int32_t>{P + 400, P + 401}));
  BOOST_CHECK_EQUAL(rt::to_string(runtime_kind::php), std::string{"php"});
}

BOOST_AUTO_TEST_CASE(name_patterns_and_namespace_pids) {
  rt::name_pattern fpm("php-fpm");
  BOOST_CHECK_EQUAL(fpm.error(), "");
  BOOST_CHECK(fpm.matches("php-fpm8.2"));
  BOOST_CHECK(!fpm.matches("php8.2"));
  rt::name_pattern bad("php(");
  BOOST_CHECK_NE(bad.error(), "");
  BOOST_CHECK(!bad.matches("php("));
  rt::name_pattern empty("");
  BOOST_CHECK_NE(empty.error(), "");
  BOOST_CHECK(!empty.matches(""));
  BOOST_CHECK_EQUAL(rt::parse_nspid("Name:\tdotnet\nNSpid:\t4711\t12\n"), 12);
  BOOST_CHECK_EQUAL(rt::parse_nspid("NSpid:\t4711\nPid:\t4711\n"), 4711);
  BOOST_CHECK_EQUAL(rt::parse_nspid("Pid:\t4711\n"), 0);
  BOOST_CHECK_EQUAL(rt::parse_nspid("NSpid:\t\n"), 0);
  BOOST_CHECK_EQUAL(rt::parse_nspid("NSpid:\t99999999999\n"), 0);
  BOOST_CHECK_EQUAL(rt::parse_nspid("NSpid:\t12x\n"), 0);
  // A real process: its own pid (this test runs in one namespace).
  BOOST_CHECK_EQUAL(rt::namespace_pid(::getpid()), ::getpid());
  BOOST_CHECK_EQUAL(rt::namespace_pid(P + 999), 0);
}

BOOST_AUTO_TEST_CASE(limits_apply_in_gproflers_order) {
  std::vector<rt::runtime_target> found;
  for (int32_t pid = 1; pid <= 6; ++pid) {
    rt::runtime_target t;
    t.pid = pid;
    t.age_s = pid * 10.0;
    t.cpu_share = pid % 3;
    found.push_back(t);
  }
  rt::target_limits none;
  BOOST_CHECK_EQUAL(rt::select_targets(found, none).size(), 6u);
  rt::target_limits l;
  l.pids = {2, 3, 5, 6, 99};
  BOOST_CHECK(pids_of(rt::select_targets(found, l))
              == (std::vector<int32_t>{2, 3, 5, 6}));
  l.min_age_s = 30;
  BOOST_CHECK(pids_of(rt::select_targets(found, l))
              == (std::vector<int32_t>{3, 5, 6}));
  // Top 2 by CPU of 3 (0), 5 (2), 6 (0): 5, then 3 before 6 (ties by pid).
  l.max_processes = 2;
  BOOST_CHECK(pids_of(rt::select_targets(found, l))
              == (std::vector<int32_t>{3, 5}));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(runtime_targets_real)

BOOST_AUTO_TEST_CASE(real_interpreters_are_found_in_the_real_proc) {
  auto spawn = [](std::vector<std::string> argv) {
    auto pid = ::fork();
    if (pid == 0) {
      std::vector<char*> args;
      for (auto& a : argv)
        args.push_back(a.data());
      args.push_back(nullptr);
      ::execvp(args[0], args.data());
      ::_exit(127);
    }
    return static_cast<int32_t>(pid);
  };
  auto py = spawn({"python3", "-c", "import time; time.sleep(60)"});
  auto node = spawn({"node", "-e", "setTimeout(() => {}, 60000)"});
  auto sleeper = spawn({"sleep", "60"});
  rt::target_finder f(rt::make_proc_source(), "/proc");
  std::vector<runtime_kind> kinds{runtime_kind::python, runtime_kind::nodejs,
                                  runtime_kind::java};
  auto has = [](const std::vector<rt::runtime_target>& ts, int32_t pid) {
    for (auto& t : ts)
      if (t.pid == pid)
        return true;
    return false;
  };
  // Wait until both interpreters have exec'd and mapped themselves.
  std::map<runtime_kind, std::vector<rt::runtime_target>> found;
  for (int i = 0; i < 100; ++i) {
    found = f.scan(kinds, 0, 100);
    if (has(found[runtime_kind::python], py)
        && has(found[runtime_kind::nodejs], node))
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  BOOST_CHECK(has(found[runtime_kind::python], py));
  BOOST_CHECK(has(found[runtime_kind::nodejs], node));
  BOOST_CHECK(!has(found[runtime_kind::python], node));
  BOOST_CHECK(!has(found[runtime_kind::python], sleeper));
  BOOST_CHECK(!has(found[runtime_kind::nodejs], sleeper));
  BOOST_CHECK(!has(found[runtime_kind::java], py));
  for (auto pid : {py, node, sleeper}) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
}

BOOST_AUTO_TEST_SUITE_END()

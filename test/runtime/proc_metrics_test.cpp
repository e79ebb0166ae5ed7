// Plain-code tests of the monitor's parts: /proc parsers on hostile input,
// the host usage window, loopback address checks, and the metric names.

#include <boost/test/unit_test.hpp>

#include <cctype>
#include <cmath>
#include <fstream>
#include <set>
#include <string>

#include <gnu/libc-version.h>

#include "runtime/host_info.hpp"
#include "runtime/metric_names.hpp"
#include "runtime/metrics_server.hpp"
#include "runtime/proc.hpp"

using namespace gpa;

namespace {

/// A realistic stat line for `comm` (fields 3..52 of a sleeping process).
std::string stat_line(const std::string& pid, const std::string& comm) {
  return pid + " (" + comm
         + ") S 77 1234 1234 0 -1 4194560 1200 0 3 0 15 7 0 0 20 0 3 0 "
           "987654 11059200 2817 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 "
           "0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
}

} // namespace

BOOST_AUTO_TEST_SUITE(monitor_unit)

BOOST_AUTO_TEST_CASE(stat_fields_come_after_the_last_parenthesis) {
  for (std::string comm :
       {"sleep", "a b", "x) S 1 2 (", ")", "(", "((", "new\nline", "",
        "tab\there", "evil) R 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1"}) {
    BOOST_TEST_CONTEXT("comm '" << comm << "'") {
      rt::proc_stat st;
      BOOST_REQUIRE(rt::parse_proc_stat(stat_line("4321", comm), st));
      BOOST_CHECK_EQUAL(st.pid, 4321);
      BOOST_CHECK_EQUAL(st.comm, comm);
      BOOST_CHECK_EQUAL(st.state, 'S');
      BOOST_CHECK_EQUAL(st.ppid, 77);
      BOOST_CHECK_EQUAL(st.threads, 3);
      BOOST_CHECK_EQUAL(st.start_time, 987654u);
      BOOST_CHECK_EQUAL(st.rss_pages, 2817u);
      BOOST_CHECK_EQUAL(st.cpu_ticks, 15u + 7u);
    }
  }
}

BOOST_AUTO_TEST_CASE(malformed_stat_lines_are_refused) {
  rt::proc_stat st;
  st.pid = -5;
  for (std::string text :
       {"", "garbage", "12 (x", "12 x) S 1", "12 (x) S 1 2 3",
        "abc (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22",
        "12 (x) S notanumber 1234 1234 0 -1 4194560 1200 0 3 0 15 7 0 0 20 0 3 "
        "0 987654 11059200 2817",
        "12 (x) SS 77 1234 1234 0 -1 4194560 1200 0 3 0 15 7 0 0 20 0 3 0 "
        "987654 11059200 2817"}) {
    BOOST_TEST_CONTEXT("text '" << text << "'") {
      BOOST_CHECK(!rt::parse_proc_stat(text, st));
    }
  }
  BOOST_CHECK_EQUAL(st.pid, -5); // untouched on failure
}

BOOST_AUTO_TEST_CASE(statm_gives_resident_pages) {
  uint64_t pages = 0;
  BOOST_REQUIRE(rt::parse_proc_statm("730 454 427 5 0 89 0\n", pages));
  BOOST_CHECK_EQUAL(pages, 454u);
  BOOST_CHECK(!rt::parse_proc_statm("730\n", pages));
  BOOST_CHECK(!rt::parse_proc_statm("730 4x4 1\n", pages));
  BOOST_CHECK(!rt::parse_proc_statm("", pages));
}

BOOST_AUTO_TEST_CASE(cpu_line_busy_excludes_idle_and_iowait) {
  rt::cpu_times t;
  BOOST_REQUIRE(rt::parse_proc_cpu(
      "cpu  100 5 50 800 40 3 2 1 7 0\ncpu0 50 2 25 400 20 1 1 0 3 0\n", t));
  BOOST_CHECK_EQUAL(t.total, 100u + 5 + 50 + 800 + 40 + 3 + 2 + 1);
  BOOST_CHECK_EQUAL(t.busy, 100u + 5 + 50 + 3 + 2 + 1);
  // Old kernels have only four fields.
  BOOST_REQUIRE(rt::parse_proc_cpu("cpu 1 2 3 4\n", t));
  BOOST_CHECK_EQUAL(t.total, 10u);
  BOOST_CHECK_EQUAL(t.busy, 6u);
  BOOST_CHECK(!rt::parse_proc_cpu("cpu0 1 2 3 4\n", t));
  BOOST_CHECK(!rt::parse_proc_cpu("intr 1 2 3\n", t));
  BOOST_CHECK(!rt::parse_proc_cpu("cpu 1 x 3 4\n", t));
  rt::cpu_times a{100, 1000};
  rt::cpu_times b{250, 1200};
  BOOST_CHECK_CLOSE(rt::cpu_busy_percent(a, b), 75.0, 1e-9);
  BOOST_CHECK_EQUAL(rt::cpu_busy_percent(b, a), 0.0);
  BOOST_CHECK_EQUAL(rt::cpu_busy_percent(a, a), 0.0);
}

BOOST_AUTO_TEST_CASE(meminfo_used_percent_is_total_minus_available) {
  rt::mem_info m;
  BOOST_REQUIRE(rt::parse_proc_meminfo("MemTotal:       16000000 kB\n"
                                       "MemFree:         1000000 kB\n"
                                       "MemAvailable:    4000000 kB\n"
                                       "Buffers:          100000 kB\n",
                                       m));
  BOOST_CHECK_EQUAL(m.total_kb, 16000000u);
  BOOST_CHECK_EQUAL(m.available_kb, 4000000u);
  BOOST_CHECK_CLOSE(m.used_percent(), 75.0, 1e-9);
  // Without MemAvailable: free + buffers + cached.
  BOOST_REQUIRE(rt::parse_proc_meminfo("MemTotal: 1000 kB\nMemFree: 100 kB\n"
                                       "Buffers: 50 kB\nCached: 250 kB\n",
                                       m));
  BOOST_CHECK_EQUAL(m.available_kb, 400u);
  BOOST_CHECK_CLOSE(m.used_percent(), 60.0, 1e-9);
  BOOST_CHECK(!rt::parse_proc_meminfo("MemFree: 100 kB\n", m));
}

BOOST_AUTO_TEST_CASE(host_window_averages_since_its_start) {
  rt::host_usage_window w;
  BOOST_CHECK_EQUAL(w.cpu_avg(), -1.0);
  BOOST_CHECK_EQUAL(w.mem_avg(), -1.0);
  rt::cpu_times c0{0, 0};
  rt::cpu_times c1{30, 100};
  rt::cpu_times c2{130, 200};
  rt::mem_info m1{100, 90};
  rt::mem_info m2{100, 70};
  w.add(&c0, &m1);
  BOOST_CHECK_EQUAL(w.cpu_avg(), -1.0); // one reading is no interval
  w.add(&c1, &m2);
  w.add(&c2, nullptr);
  BOOST_CHECK_CLOSE(w.cpu_avg(), 65.0, 1e-9); // 130 of 200, not mean(30,100)
  BOOST_CHECK_CLOSE(w.mem_avg(), 20.0, 1e-9);
  BOOST_CHECK_EQUAL(w.mem_readings(), 2u);
  w.restart();
  BOOST_CHECK_EQUAL(w.mem_avg(), -1.0);
  rt::cpu_times c3{140, 300};
  w.add(&c3, nullptr);
  BOOST_CHECK_CLOSE(w.cpu_avg(), 10.0, 1e-9); // starts where the last ended
}

BOOST_AUTO_TEST_CASE(metrics_address_must_be_loopback) {
  rt::loopback_endpoint ep;
  BOOST_CHECK_EQUAL(rt::parse_loopback_address("127.0.0.1:9464", ep), "");
  BOOST_CHECK_EQUAL(ep.host, "127.0.0.1");
  BOOST_CHECK_EQUAL(ep.port, 9464);
  BOOST_CHECK(!ep.ipv6);
  BOOST_CHECK_EQUAL(rt::parse_loopback_address("127.1.2.3:0", ep), "");
  BOOST_CHECK_EQUAL(rt::parse_loopback_address("localhost:80", ep), "");
  BOOST_CHECK_EQUAL(ep.host, "127.0.0.1");
  BOOST_CHECK_EQUAL(rt::parse_loopback_address("[::1]:65535", ep), "");
  BOOST_CHECK(ep.ipv6);
  BOOST_CHECK_EQUAL(ep.port, 65535);
  for (std::string bad : {"0.0.0.0:9464", "10.1.2.3:9464", "[::]:9464",
                          "192.168.0.1:1", "example.com:9464"}) {
    BOOST_TEST_CONTEXT(bad) {
      auto err = rt::parse_loopback_address(bad, ep);
      BOOST_CHECK_NE(err.find(bad), std::string::npos);
      BOOST_CHECK(err.find("loopback") != std::string::npos);
    }
  }
  for (std::string bad : {"127.0.0.1", "127.0.0.1:", "127.0.0.1:65536",
                          "127.0.0.1:http", "::1:9464", "[::1]9464", ""}) {
    BOOST_TEST_CONTEXT(bad) {
      BOOST_CHECK(!rt::parse_loopback_address(bad, ep).empty());
    }
  }
}

BOOST_AUTO_TEST_CASE(every_metric_is_rendered_at_zero_before_use) {
  rt::metrics reg;
  rt::metric::declare_all(reg, {"perf", "java"});
  auto text = reg.render();
  namespace m = rt::metric;
  for (auto* x : {&m::agent_rss, &m::tree_rss, &m::open_fds, &m::threads,
                  &m::children, &m::pressure_level, &m::monitor_samples,
                  &m::snapshots, &m::last_snapshot_duration, &m::uploads}) {
    BOOST_TEST_CONTEXT(x->name) {
      BOOST_CHECK(text.find(std::string{"# HELP "} + x->name + " ")
                  != std::string::npos);
      BOOST_CHECK(text.find(std::string{"# TYPE "} + x->name
                            + (x->counter ? " counter\n" : " gauge\n"))
                  != std::string::npos);
      BOOST_CHECK(std::string{x->name}.rfind("gpa_", 0) == 0);
      BOOST_CHECK_EQUAL(
          std::string{x->name}.size() > 6
              && std::string{x->name}.substr(std::string{x->name}.size() - 6)
                     == "_total",
          x->counter);
    }
  }
  for (auto r : {"done", "skipped", "timed_out"})
    for (auto p : {"perf", "java"})
      BOOST_CHECK(text.find(std::string{"gpa_profiler_snapshots_total{"
                                        "profiler=\""}
                            + p + "\",result=\"" + r + "\"} 0\n")
                  != std::string::npos);
  for (auto r : {"sent", "failed", "spooled"})
    BOOST_CHECK(
        text.find(std::string{"gpa_uploads_total{result=\""} + r + "\"} 0\n")
        != std::string::npos);
  // Counting after declaring moves the same series.
  m::count_snapshot(reg, "perf", m::snapshot_result::timed_out);
  m::count_upload(reg, m::upload_result::spooled);
  m::count_upload(reg, m::upload_result::spooled);
  m::set_last_snapshot_duration(reg, std::chrono::milliseconds(1500));
  BOOST_CHECK_EQUAL(reg.value(m::snapshots.name,
                              {{"profiler", "perf"}, {"result", "timed_out"}}),
                    1.0);
  BOOST_CHECK_EQUAL(reg.value(m::uploads.name, {{"result", "spooled"}}), 2.0);
  BOOST_CHECK_EQUAL(reg.value(m::last_snapshot_duration.name), 1.5);
  // A value set before declare_all survives it.
  rt::metrics reg2;
  m::set(reg2, m::agent_rss, 42);
  m::declare_all(reg2);
  BOOST_CHECK_EQUAL(reg2.value(m::agent_rss.name), 42.0);
}

// -- host facts as gProfiler names them ---------------------------------------

BOOST_AUTO_TEST_CASE(run_mode_and_deployment_type_as_gprofiler) {
  using gpa::format::deployment_type;
  using gpa::format::run_mode;
  BOOST_CHECK_EQUAL(run_mode(true, true), "k8s");
  BOOST_CHECK_EQUAL(run_mode(false, true), "container");
  BOOST_CHECK_EQUAL(run_mode(false, false), "standalone_executable");
  BOOST_CHECK_EQUAL(deployment_type("k8s"), "k8s");
  BOOST_CHECK_EQUAL(deployment_type("container"), "containers");
  BOOST_CHECK_EQUAL(deployment_type("standalone_executable"), "instances");
  BOOST_CHECK_EQUAL(deployment_type("other"), "unknown");
}

BOOST_AUTO_TEST_CASE(hypervisor_vendor_as_gprofiler) {
  // No "hypervisor" flag (as a whole word): bare metal.
  BOOST_CHECK_EQUAL(gpa::rt::hypervisor_vendor("fpu vme sse2"), "NONE");
  BOOST_CHECK_EQUAL(gpa::rt::hypervisor_vendor("fpu nohypervisor"), "NONE");
  // With the flag: this machine's CPUID vendor, printable, never empty.
  auto v = gpa::rt::hypervisor_vendor("fpu hypervisor sse2");
  BOOST_CHECK(!v.empty());
  BOOST_CHECK_NE(v, "NONE");
  for (char c : v)
    BOOST_CHECK(c >= 0x20 && c < 0x7f);
  // The real host agrees with its own flags.
  auto host = gpa::rt::read_host_info();
  bool flagged
      = (" " + host.cpu_flags + " ").find(" hypervisor ") != std::string::npos;
  BOOST_CHECK_EQUAL(host.hypervisor == "NONE", !flagged);
  BOOST_TEST_MESSAGE("this host: hypervisor " << host.hypervisor);
}

BOOST_AUTO_TEST_CASE(host_facts_typed_as_gprofiler) {
  auto host = gpa::rt::read_host_info();
  // memory_capacity_mb: Python's round(MemTotal / 1024) (half to even).
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  int64_t kib = 0;
  while (meminfo >> key && key != "MemTotal:")
    meminfo.ignore(1 << 10, '\n');
  meminfo >> kib;
  auto mib = static_cast<double>(kib) / 1024.0;
  BOOST_CHECK_LE(std::abs(static_cast<double>(host.memory_capacity_mb) - mib),
                 0.5);
  // spawn_uptime: seconds since boot, a fraction (gProfiler's
  // CLOCK_BOOTTIME under "spawn_uptime_ms").
  std::ifstream uptime("/proc/uptime");
  double up = 0;
  uptime >> up;
  BOOST_CHECK_GT(host.spawn_uptime_s, 0.0);
  BOOST_CHECK_LE(host.spawn_uptime_s, up + 1.0);
  BOOST_CHECK_GT(host.spawn_uptime_s, up - 60.0);
  // mac_address: upper-case "XX:XX:XX:XX:XX:XX", or none.
  if (!host.mac_address.empty()) {
    BOOST_CHECK_EQUAL(host.mac_address.size(), 17u);
    for (char c : host.mac_address)
      BOOST_CHECK_MESSAGE(c == ':' || std::isdigit(c) || (c >= 'A' && c <= 'F'),
                          host.mac_address);
  }
  // libc_version: glibc's own version, or ldd's package version of it.
  std::string glibc = gnu_get_libc_version();
  BOOST_CHECK_MESSAGE(host.libc_version.find(glibc) == 0, host.libc_version);
  BOOST_CHECK(host.cpu_arch_codename == "UNKNOWN"
              || host.cpu_arch_codename.size() == 3);
  BOOST_TEST_MESSAGE("this host: mac " << host.mac_address << ", private ip "
                                       << host.private_ip << ", libc "
                                       << host.libc_version);
}

BOOST_AUTO_TEST_SUITE_END()

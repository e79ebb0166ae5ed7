// Merging the parts of a snapshot (format/col.*): gProfiler's rule for
// runtime profilers, error stacks, and the --perf-mode smart rule that picks
// per process between the frame-pointer and the DWARF recording.

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "format/col.hpp"

using gpa::process_stacks;
using gpa::profile_part;
using gpa::stack_count;
using gpa::format::merge_parts;
using gpa::format::smart_dwarf_profiler;

namespace {

process_stacks proc(int32_t pid, const std::string& comm,
                    std::vector<stack_count> stacks) {
  process_stacks p;
  p.pid = pid;
  p.comm = comm;
  p.stacks = std::move(stacks);
  return p;
}

profile_part part(const std::string& profiler,
                  std::vector<process_stacks> processes) {
  profile_part p;
  p.snapshot_id = 1;
  p.profiler = profiler;
  p.processes = std::move(processes);
  return p;
}

/// The merged lines as stack -> count.
std::map<std::string, uint64_t> merged(const std::vector<profile_part>& parts) {
  std::map<std::string, uint64_t> result;
  for (auto& s : merge_parts(parts))
    result[s.stack] += s.count;
  return result;
}

uint64_t total(const std::map<std::string, uint64_t>& lines) {
  uint64_t n = 0;
  for (auto& [stack, count] : lines)
    n += count;
  return n;
}

} // namespace

BOOST_AUTO_TEST_SUITE(merge_rules)

BOOST_AUTO_TEST_CASE(runtime_stacks_replace_perfs_scaled_to_its_samples) {
  auto lines = merged({
      part("perf", {proc(10, "java",
                         {{"java;libjvm.so;f_[k]", 7}, {"java;libjvm.so", 3}}),
                    proc(20, "nginx", {{"nginx;main;epoll_wait_[k]", 5}})}),
      part("java",
           {proc(10, "java",
                 {{"java;Main.run_[j]", 1}, {"java;Main.loop_[j]", 3}})}),
  });
  // pid 10: Java's 4 samples scaled to perf's 10 (1:3 -> 2.5:7.5, largest
  // remainder, ties to the first); perf's own stacks of pid 10 are gone.
  BOOST_CHECK_EQUAL(lines.count("java;libjvm.so"), 0u);
  BOOST_CHECK_EQUAL(lines["java;Main.run_[j]"] + lines["java;Main.loop_[j]"],
                    10u);
  BOOST_CHECK_EQUAL(lines["java;Main.loop_[j]"], 7u);
  // pid 20 only perf saw.
  BOOST_CHECK_EQUAL(lines["nginx;main;epoll_wait_[k]"], 5u);
  BOOST_CHECK_EQUAL(total(lines), 15u);
}

BOOST_AUTO_TEST_CASE(errors_become_one_sample_stacks) {
  // Without perf, every error is a one-sample stack (gProfiler's
  // concatenation).
  auto p = part("python", {});
  p.errors.push_back({0, "", "timed out", "py-spy took 70 s"});
  p.errors.push_back({42, "worker;1", "failed", "no such process"});
  auto lines = merged({p});
  BOOST_CHECK_EQUAL(lines["python;[Profiling timed out: py-spy took 70 s]"],
                    1u);
  // The comm is made safe for the format.
  BOOST_CHECK_EQUAL(lines.size(), 2u);
  for (auto& [stack, count] : lines)
    BOOST_CHECK_EQUAL(std::count(stack.begin(), stack.end(), ';'), 1);
}

BOOST_AUTO_TEST_CASE(a_runtime_error_goes_onto_perfs_stacks_of_its_process) {
  // gProfiler's merge_profiles with perf: the error frame after the comm of
  // each of perf's stacks of that process; a process perf did not sample
  // loses the error; whole-profiler errors stay one-sample stacks.
  auto perf = part(
      "perf",
      {proc(42, "worker", {{"worker;main;run", 5}, {"worker;main;idle", 2}}),
       proc(7, "db", {{"db;main", 4}})});
  auto java = part("java", {});
  java.errors.push_back({42, "worker", "error", "attach failed"});
  java.errors.push_back({99, "gone", "error", "process went down"});
  java.errors.push_back({0, "", "error", "jattach missing"});
  auto lines = merged({perf, java});
  std::map<std::string, uint64_t> expected{
      {"worker;[Profiling error: attach failed];main;run", 5},
      {"worker;[Profiling error: attach failed];main;idle", 2},
      {"db;main", 4},
      {"java;[Profiling error: jattach missing]", 1}};
  BOOST_CHECK(lines == expected);
}

BOOST_AUTO_TEST_CASE(smart_keeps_the_deeper_recording_per_process) {
  // Frame pointers: 40 samples; DWARF: 80 (ratio 0.5).
  auto fp = part("perf", {proc(1, "app", {{"app;a", 10}}),
                          proc(2, "db", {{"db;main;query;scan", 10}}),
                          proc(3, "fp-only", {{"fp-only;x", 20}})});
  auto dwarf = part(smart_dwarf_profiler,
                    {proc(1, "app", {{"app;main;a;b", 30}, {"app;main;c", 10}}),
                     proc(2, "db", {{"db;main", 20}}),
                     proc(4, "dwarf-only", {{"dwarf-only;y", 20}})});
  auto lines = merged({fp, dwarf});
  // pid 1: DWARF is deeper; its 40 samples scaled by 0.5.
  BOOST_CHECK_EQUAL(lines.count("app;a"), 0u);
  BOOST_CHECK_EQUAL(lines["app;main;a;b"], 15u);
  BOOST_CHECK_EQUAL(lines["app;main;c"], 5u);
  // pid 2: frame pointers are deeper: kept as they are.
  BOOST_CHECK_EQUAL(lines["db;main;query;scan"], 10u);
  BOOST_CHECK_EQUAL(lines.count("db;main"), 0u);
  // pid 3 only the frame-pointer recording saw; pid 4 (DWARF only) is left
  // out, as gProfiler does.
  BOOST_CHECK_EQUAL(lines["fp-only;x"], 20u);
  BOOST_CHECK_EQUAL(lines.count("dwarf-only;y"), 0u);
  BOOST_CHECK_EQUAL(total(lines), 50u);
}

BOOST_AUTO_TEST_CASE(smart_with_one_recording_failed_uses_the_other) {
  auto fp = part("perf", {proc(1, "app", {{"app;a", 10}})});
  auto dwarf_failed = part(smart_dwarf_profiler, {});
  dwarf_failed.errors.push_back(
      {0, smart_dwarf_profiler, "failed", "perf record is restarting"});
  auto lines = merged({fp, dwarf_failed});
  BOOST_CHECK_EQUAL(lines["app;a"], 10u);
  BOOST_CHECK_EQUAL(
      lines["perf-dwarf;[Profiling failed: perf record is restarting]"], 1u);

  auto fp_failed = part("perf", {});
  fp_failed.errors.push_back({0, "perf", "timed out", "perf script"});
  auto dwarf
      = part(smart_dwarf_profiler, {proc(1, "app", {{"app;main;a", 30}})});
  lines = merged({fp_failed, dwarf});
  // Unscaled: there is nothing to scale to.
  BOOST_CHECK_EQUAL(lines["app;main;a"], 30u);
  BOOST_CHECK_EQUAL(lines["perf;[Profiling timed out: perf script]"], 1u);
}

BOOST_AUTO_TEST_CASE(smart_dwarf_part_still_yields_to_runtime_profilers) {
  auto fp = part("perf", {proc(1, "app", {{"app;a", 10}})});
  auto dwarf
      = part(smart_dwarf_profiler, {proc(1, "app", {{"app;main;a", 20}})});
  auto py = part("python", {proc(1, "app", {{"app;main.py:run_[p]", 2}})});
  auto lines = merged({fp, dwarf, py});
  // The smart result (DWARF, scaled to 10) is perf's count for pid 1;
  // Python's stacks replace it.
  BOOST_CHECK_EQUAL(lines.size(), 1u);
  BOOST_CHECK_EQUAL(lines["app;main.py:run_[p]"], 10u);
}

BOOST_AUTO_TEST_CASE(enrichment_adds_appid_container_and_metadata_index) {
  using gpa::format::process_enrichment;
  gpa::profiler_error err;
  err.pid = 7;
  err.comm = "python3";
  err.what = "python";
  err.reason = "process went down";
  auto perf = part("perf", {proc(7, "python3", {{"python3;main;run", 4}}),
                            proc(8, "sh", {{"sh", 2}}),
                            proc(9, "cc1", {{"cc1;parse", 3}})});
  auto py = part("python", {});
  py.errors.push_back(err);
  int calls = 0;
  auto stacks = merge_parts({perf, py}, "perf",
                            [&calls](int32_t pid, const std::string&) {
                              ++calls;
                              process_enrichment e;
                              if (pid == 7) {
                                e.container = "web;1";
                                e.appid = "python: app.py";
                                e.app_metadata = 1;
                              } else if (pid == 8) {
                                e.appid = "shell";
                              }
                              return e;
                            });
  // Each process is looked up once, the error's pid included.
  BOOST_CHECK_EQUAL(calls, 3);
  std::map<std::string, uint64_t> lines;
  for (auto& s : stacks)
    lines[std::to_string(s.app_metadata) + "|" + s.container + "|" + s.stack]
        = s.count;
  std::map<std::string, uint64_t> expected{
      // The app id is the frame after the comm; ';' in a container name
      // cannot split the line.
      // The error frame goes on perf's stacks of the process, after the
      // app id (gProfiler's order).
      {"1|web_1|python3;appid: python: app.py;[Profiling python: process "
       "went down];main;run",
       4},
      // A stack of the comm alone gets the app id after it.
      {"0||sh;appid: shell", 2},
      {"0||cc1;parse", 3}};
  BOOST_CHECK(lines == expected);
}

BOOST_AUTO_TEST_CASE(render_writes_the_index_only_with_application_metadata) {
  std::vector<gpa::format::merged_stack> stacks{{"web", "a;b", 3, 1},
                                                {"", "c", 2, 0}};
  gpa::format::col_header h;
  h.containers = {"db", "web"};
  h.container_names_enabled = true;
  h.application_metadata = {"{\"exe\": \"/usr/bin/python3\"}", "not json"};
  auto col = gpa::format::render_col(h, stacks);
  auto body = col.substr(col.find('\n') + 1);
  BOOST_CHECK_EQUAL(body, "1;web;a;b 3\n0;;c 2\n");
  BOOST_CHECK(col.find("\"containers\":[\"db\",\"web\"],"
                       "\"container_names_enabled\":true")
              != std::string::npos);
  // Invalid metadata is null, never a broken header.
  BOOST_CHECK(col.find("\"application_metadata\":[null,{\"exe\":\"/usr/bin/"
                       "python3\"},null],\"application_metadata_enabled\":true")
              != std::string::npos);
  h.application_metadata_enabled = false;
  col = gpa::format::render_col(h, stacks);
  BOOST_CHECK_EQUAL(col.substr(col.find('\n') + 1), "web;a;b 3\n;c 2\n");
  BOOST_CHECK(col.find("\"application_metadata_enabled\":false")
              != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

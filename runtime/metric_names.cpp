#include "runtime/metric_names.hpp"

namespace gpa::rt::metric {

const char* to_string(snapshot_result x) {
  switch (x) {
    case snapshot_result::done: return "done";
    case snapshot_result::skipped: return "skipped";
    case snapshot_result::timed_out: return "timed_out";
  }
  return "unknown";
}

const char* to_string(upload_result x) {
  switch (x) {
    case upload_result::sent: return "sent";
    case upload_result::failed: return "failed";
    case upload_result::spooled: return "spooled";
    case upload_result::dropped: return "dropped";
  }
  return "unknown";
}

const std::vector<std::string>& known_profilers() {
  static const std::vector<std::string> names{
      "perf", "java", "python", "ruby", "php", "dotnet", "nodejs"};
  return names;
}

void set(metrics& reg, const info& m, double value,
         const metric_labels& labels) {
  reg.set(m.name, m.help, value, labels);
}

void add(metrics& reg, const info& m, double delta,
         const metric_labels& labels) {
  reg.add(m.name, m.help, delta, labels);
}

void count_snapshot(metrics& reg, const std::string& profiler,
                    snapshot_result result) {
  add(reg, snapshots, 1,
      {{"profiler", profiler}, {"result", to_string(result)}});
}

void count_upload(metrics& reg, upload_result result) {
  add(reg, uploads, 1, {{"result", to_string(result)}});
}

void set_last_snapshot_duration(metrics& reg, std::chrono::duration<double> d) {
  set(reg, last_snapshot_duration, d.count());
}

void declare_all(metrics& reg, const std::vector<std::string>& profilers) {
  for (auto* g : {&agent_rss, &tree_rss, &open_fds, &threads, &children,
                  &pressure_level, &last_snapshot_duration})
    set(reg, *g, reg.value(g->name));
  add(reg, monitor_samples, 0);
  for (auto* c : {&upload_retries, &pyroscope_upload_retries})
    add(reg, *c, 0);
  for (auto* g : {&spool_files, &pyroscope_spool_files})
    set(reg, *g, reg.value(g->name));
  add(reg, ticks_skipped, 0);
  add(reg, perf_restarts, 0);
  add(reg, perf_samples, 0);
  for (auto& p : profilers)
    for (auto r : {snapshot_result::done, snapshot_result::skipped,
                   snapshot_result::timed_out})
      add(reg, snapshots, 0, {{"profiler", p}, {"result", to_string(r)}});
  for (auto& p : profilers)
    add(reg, late_parts, 0, {{"profiler", p}});
  for (auto* m : {&uploads, &pyroscope_uploads})
    for (auto r : {upload_result::sent, upload_result::failed,
                   upload_result::spooled, upload_result::dropped})
      add(reg, *m, 0, {{"result", to_string(r)}});
}

} // namespace gpa::rt::metric

#pragma once

// The agent's self-metrics: named counters and gauges that actors update and
// the metrics endpoint renders in Prometheus text format. Thread-safe.

#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace gpa::rt {

/// Label pairs of one series, e.g. {{"profiler", "perf"}}.
using metric_labels = std::vector<std::pair<std::string, std::string>>;

class metrics {
public:
  /// Adds `delta` to counter `name` (created with `help` on first use).
  void add(const std::string& name, const std::string& help, double delta,
           const metric_labels& labels = {});

  /// Sets gauge `name` to `value`.
  void set(const std::string& name, const std::string& help, double value,
           const metric_labels& labels = {});

  /// Returns the current value of a series, or 0.
  double value(const std::string& name, const metric_labels& labels = {}) const;

  /// Renders every series in Prometheus text exposition format (0.0.4).
  std::string render() const;

private:
  struct family {
    std::string help;
    bool counter = false;
    std::map<metric_labels, double> series;
  };
  void update(const std::string& name, const std::string& help, bool counter,
              double x, const metric_labels& labels, bool add);
  mutable std::mutex mtx_;
  std::map<std::string, family> families_;
};

} // namespace gpa::rt

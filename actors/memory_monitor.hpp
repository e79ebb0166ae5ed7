#pragma once

// The memory monitor: the agent watches its own footprint. Every interval it
// reads, through a proc_source, the RSS, descriptors and threads of the agent
// and the RSS of its whole process tree (the `pstree -p | ps -o rss` total of
// gProfiler's memory report, built in), plus the host's CPU and memory use.
// It publishes every sample to sample listeners, keeps min/avg/max per
// snapshot window, sets the self-metrics gauges, and turns the RSS figures
// into pressure levels that it publishes to pressure listeners.
//
// Pressure levels and hysteresis (pressure_tracker):
// - Each measure (agent RSS, tree RSS) has warning < critical < emergency
//   thresholds; the level is the higher of the two measures' levels.
// - Up at once: one sample at or above a higher level's threshold raises the
//   level to it (pressure must be handled before it grows further).
// - Down slowly: the level drops only after `down_samples` consecutive
//   samples below the current level's threshold minus `down_margin` (10 %) of
//   it; it then drops to the highest level those samples still held (with
//   the same margin). A value wobbling around a threshold, or dipping below
//   it for fewer samples, therefore never makes the level flap.
// - An episode runs from leaving normal to returning to normal. Each level's
//   actions are due, and logged, once per episode (pressure_event::
//   action_due); the listeners do them.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/stateful_actor.hpp>
#include <caf/timespan.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "config/options.hpp"
#include "messages/monitor.hpp"
#include "runtime/metrics.hpp"
#include "runtime/proc.hpp"

namespace spdlog {
/// spdlog's logger (only held by pointer here).
class logger;
} // namespace spdlog

namespace gpa {

/// The monitor's full interface: the public one plus its own timer.
using monitor_impl = memory_monitor_actor::extend<
    // The sampling timer fired.
    caf::reacts_to<tick_atom>>;

/// RSS thresholds of one measure, in KiB, strictly rising.
struct rss_thresholds {
  /// Threshold of the warning level.
  uint64_t warning_kb = 0;
  /// Threshold of the critical level.
  uint64_t critical_kb = 0;
  /// Threshold of the emergency level.
  uint64_t emergency_kb = 0;

  /// Returns the threshold of `x` (0 for normal).
  uint64_t at(pressure_level x) const;

  /// Returns the highest level whose threshold, lowered by `margin` (a
  /// fraction of it), `kb` reaches.
  pressure_level level_of(uint64_t kb, double margin = 0) const;
};

/// The thresholds of the agent process's RSS in `opts`, MB to KiB.
inline rss_thresholds agent_thresholds(const monitor_options& opts) {
  return {static_cast<uint64_t>(opts.agent_warning_mb) << 10,
          static_cast<uint64_t>(opts.agent_critical_mb) << 10,
          static_cast<uint64_t>(opts.agent_emergency_mb) << 10};
}

/// The thresholds of the agent's process tree in `opts`, MB to KiB.
inline rss_thresholds tree_thresholds(const monitor_options& opts) {
  return {static_cast<uint64_t>(opts.tree_warning_mb) << 10,
          static_cast<uint64_t>(opts.tree_critical_mb) << 10,
          static_cast<uint64_t>(opts.tree_emergency_mb) << 10};
}

/// Settings of the memory monitor (defaults: those of monitor_options).
struct monitor_config {
  /// Time between samples.
  caf::timespan interval{monitor_options{}.interval};
  /// Thresholds of the agent process's RSS.
  rss_thresholds agent = agent_thresholds(monitor_options{});
  /// Thresholds of the RSS of the agent's whole process tree.
  rss_thresholds tree = tree_thresholds(monitor_options{});
  /// Hysteresis: going down needs values below a threshold minus this
  /// fraction of it...
  double down_margin = 0.10;
  /// ...for this many consecutive samples.
  uint32_t down_samples = 3;
  /// Largest descendants carried in pressure events.
  uint32_t top_children = 5;
};

/// Builds the monitor's settings from the command-line options (MB to KiB).
monitor_config make_monitor_config(const monitor_options& opts);

/// The pressure level state machine with hysteresis (see the top of this
/// file); plain code, fed one sample at a time.
class pressure_tracker {
public:
  /// Uses the thresholds and hysteresis settings of `cfg`.
  explicit pressure_tracker(const monitor_config& cfg);

  /// Feeds one sample; returns whether the level changed.
  bool update(uint64_t agent_kb, uint64_t tree_kb);

  /// The current level.
  pressure_level level() const {
    return level_;
  }

  /// The level before the last change.
  pressure_level previous() const {
    return previous_;
  }

  /// Which measure holds the current level (as of the last change).
  pressure_cause cause() const {
    return cause_;
  }

  /// The threshold of the current level for cause() (as of the last change).
  uint64_t threshold_kb() const {
    return threshold_kb_;
  }

  /// The current episode (1, 2, ...); 0 before the first one.
  uint64_t episode() const {
    return episode_;
  }

  /// The actions that the last change made due (pressure_event::actions_due).
  uint8_t actions_due() const {
    return due_;
  }

private:
  /// Thresholds and hysteresis settings (see monitor_config).
  rss_thresholds agent_;
  rss_thresholds tree_;
  double margin_;
  uint32_t down_samples_;
  /// The state as of the last change.
  pressure_level level_ = pressure_level::normal;
  pressure_level previous_ = pressure_level::normal;
  pressure_cause cause_ = pressure_cause::none;
  uint64_t threshold_kb_ = 0;
  uint64_t episode_ = 0;
  /// Levels whose actions were done in this episode (bit per level).
  uint8_t done_ = 0;
  /// Levels whose actions the last change made due (bit per level).
  uint8_t due_ = 0;
  /// Consecutive samples below the current level, and the highest level
  /// they held.
  uint32_t below_ = 0;
  pressure_level candidate_ = pressure_level::normal;
};

/// Running min/sum/max of one measure.
struct range_accumulator {
  /// Smallest and largest value so far.
  double min = 0;
  double max = 0;
  /// Sum and number of the values.
  double sum = 0;
  uint32_t n = 0;

  /// Adds one value.
  void add(double x);

  /// Returns min/avg/max (zeros if empty).
  usage_range range() const;
};

/// The monitor's state; the handlers of memory_monitor() delegate here.
struct monitor_state {
  /// The actor's name in CAF.
  static inline const char* name = "memory_monitor";

  /// The actor.
  monitor_impl::pointer self = nullptr;
  /// Where /proc comes from (real, or scripted in the simulation).
  std::shared_ptr<rt::proc_source> proc;
  /// Self-metrics registry; may be null.
  std::shared_ptr<rt::metrics> metrics;
  /// Settings.
  monitor_config cfg;
  /// The "monitor" logger.
  std::shared_ptr<spdlog::logger> log;

  /// Pressure level with hysteresis.
  pressure_tracker pressure{monitor_config{}};
  /// Subscribers, each once, until they terminate.
  std::vector<pressure_listener_actor> pressure_listeners;
  std::vector<sample_listener_actor> sample_listeners;
  /// The last published event (for late subscribers).
  pressure_event last_event;
  /// Samples taken so far.
  uint64_t seq = 0;
  /// Set once an unreadable /proc was logged (it is logged once).
  bool warned_unreadable = false;

  /// The current window: its start, the ranges of each measure, the highest
  /// level, and the host's CPU and memory readings.
  int64_t window_start_ns = 0;
  range_accumulator agent_rss;
  range_accumulator tree_rss;
  range_accumulator fds;
  range_accumulator threads;
  range_accumulator children;
  pressure_level window_max = pressure_level::normal;
  rt::host_usage_window host;
  /// The previous CPU reading (for each sample's host_cpu_percent).
  rt::cpu_times prev_cpu;
  bool has_prev_cpu = false;

  /// Prepares the first window.
  void init();

  /// The timer fired: sample, then re-arm.
  void on_tick();

  /// Reads /proc, updates window, gauges and pressure, publishes the sample
  /// and, if the level changed, the pressure event. Returns the sample.
  resource_sample take_sample();

  /// Returns the current window's statistics and starts the next window.
  window_stats close_window();

  /// Adds a pressure listener (once) and watches it for termination.
  void subscribe(const pressure_listener_actor& who);

  /// Adds a sample listener (once) and watches it for termination.
  void subscribe(const sample_listener_actor& who);

  /// Forgets a listener that terminated.
  void on_down(const caf::actor_addr& who);

private:
  /// The host's CPU and memory counters now, as far as they could be read.
  struct host_reading {
    rt::cpu_times cpu;
    rt::mem_info mem;
    bool has_cpu = false;
    bool has_mem = false;
  };

  /// Reads the host's counters and adds them to the window's averages.
  host_reading read_host();
  /// The actor clock's time in nanoseconds since its epoch.
  int64_t now_ns() const;
  /// Builds the event of a level change and sends it to every listener.
  void publish_pressure(const rt::tree_usage& tree);
  /// Logs a level change: the actions that became due, once per episode.
  void log_change(const pressure_event& ev);
  /// Sets the footprint gauges from a sample.
  void update_gauges(const resource_sample& s);
};

/// Spawns as `sys.spawn(memory_monitor, proc, metrics, cfg)`. Takes a first
/// sample at once, then one every `cfg.interval`.
monitor_impl::behavior_type
memory_monitor(monitor_impl::stateful_pointer<monitor_state> self,
               std::shared_ptr<rt::proc_source> proc,
               std::shared_ptr<rt::metrics> metrics, monitor_config cfg);

} // namespace gpa

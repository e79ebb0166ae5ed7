#include "actors/memory_monitor.hpp"

#include <algorithm>

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include "runtime/log.hpp"
#include "runtime/metric_names.hpp"

namespace gpa {

namespace {

constexpr uint8_t bit(pressure_level x) {
  return static_cast<uint8_t>(1u << static_cast<unsigned>(x));
}

/// Renders KiB as MB with one decimal, for logs.
std::string mb(uint64_t kb) {
  return fmt::format("{:.1f} MB", static_cast<double>(kb) / 1024.0);
}

const char* action_of(pressure_level x) {
  switch (x) {
    case pressure_level::warning:
      return "caches are dropped and the HTTP session is recycled";
    case pressure_level::critical:
      return "runtime profilers are skipped while it lasts";
    case pressure_level::emergency:
      return "the slowest profiler's children are killed and a bloated perf "
             "is restarted";
    default: return "none";
  }
}

/// Adds `who` to `listeners` unless it is null or there already; returns
/// whether it was added.
template <class Handle>
bool add_listener(std::vector<Handle>& listeners, const Handle& who) {
  if (!who)
    return false;
  auto addr = who.address();
  if (std::any_of(listeners.begin(), listeners.end(), [&](auto& x) {
        return x.address() == addr;
      }))
    return false;
  listeners.push_back(who);
  return true;
}

} // namespace

// -- thresholds and hysteresis
// ---------------------------------------------------

uint64_t rss_thresholds::at(pressure_level x) const {
  switch (x) {
    case pressure_level::warning: return warning_kb;
    case pressure_level::critical: return critical_kb;
    case pressure_level::emergency: return emergency_kb;
    default: return 0;
  }
}

pressure_level rss_thresholds::level_of(uint64_t kb, double margin) const {
  auto reaches = [&](uint64_t threshold) {
    return static_cast<double>(kb)
           >= static_cast<double>(threshold) * (1.0 - margin);
  };
  if (reaches(emergency_kb))
    return pressure_level::emergency;
  if (reaches(critical_kb))
    return pressure_level::critical;
  if (reaches(warning_kb))
    return pressure_level::warning;
  return pressure_level::normal;
}

monitor_config make_monitor_config(const monitor_options& opts) {
  monitor_config cfg;
  cfg.interval = opts.interval;
  cfg.agent = agent_thresholds(opts);
  cfg.tree = tree_thresholds(opts);
  return cfg;
}

pressure_tracker::pressure_tracker(const monitor_config& cfg)
    : agent_(cfg.agent), tree_(cfg.tree), margin_(cfg.down_margin),
      down_samples_(std::max<uint32_t>(1, cfg.down_samples)) {}

bool pressure_tracker::update(uint64_t agent_kb, uint64_t tree_kb) {
  auto raw_agent = agent_.level_of(agent_kb);
  auto raw_tree = tree_.level_of(tree_kb);
  auto hold_agent = agent_.level_of(agent_kb, margin_);
  auto hold_tree = tree_.level_of(tree_kb, margin_);
  auto raw = std::max(raw_agent, raw_tree);
  auto hold = std::max(hold_agent, hold_tree);
  auto before = level_;
  if (raw > level_) {
    level_ = raw;
    below_ = 0;
  } else if (hold >= level_) {
    below_ = 0;
  } else {
    candidate_ = below_ == 0 ? hold : std::max(candidate_, hold);
    if (++below_ >= down_samples_) {
      level_ = candidate_;
      below_ = 0;
    }
  }
  due_ = 0;
  if (level_ == before)
    return false;
  previous_ = before;
  if (before == pressure_level::normal) {
    ++episode_;
    done_ = 0;
  }
  if (level_ > before) {
    uint8_t upto = 0;
    for (auto l : {pressure_level::warning, pressure_level::critical,
                   pressure_level::emergency})
      if (l <= level_)
        upto |= bit(l);
    due_ = upto & static_cast<uint8_t>(~done_);
    done_ |= upto;
  }
  // Which measure holds the new level: on a rise the raw levels, on a fall
  // the levels with the margin.
  auto a = level_ > before ? raw_agent : hold_agent;
  auto t = level_ > before ? raw_tree : hold_tree;
  if (level_ == pressure_level::normal) {
    cause_ = pressure_cause::none;
    threshold_kb_ = 0;
  } else {
    if (a >= level_ && t >= level_)
      cause_ = pressure_cause::both;
    else if (t >= level_ || (a < level_ && t > a))
      cause_ = pressure_cause::tree;
    else
      cause_ = pressure_cause::agent;
    threshold_kb_
        = cause_ == pressure_cause::tree ? tree_.at(level_) : agent_.at(level_);
  }
  return true;
}

void range_accumulator::add(double x) {
  if (n == 0) {
    min = max = x;
  } else {
    min = std::min(min, x);
    max = std::max(max, x);
  }
  sum += x;
  ++n;
}

usage_range range_accumulator::range() const {
  if (n == 0)
    return {};
  return {min, sum / n, max};
}

// -- state
// -----------------------------------------------------------------------

int64_t monitor_state::now_ns() const {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             self->clock().now().time_since_epoch())
      .count();
}

void monitor_state::init() {
  window_start_ns = now_ns();
  if (metrics) {
    rt::metric::set(*metrics, rt::metric::pressure_level, 0);
    rt::metric::add(*metrics, rt::metric::monitor_samples, 0);
  }
}

void monitor_state::on_tick() {
  take_sample();
  self->delayed_send(self, cfg.interval, tick_atom_v);
}

resource_sample monitor_state::take_sample() {
  resource_sample s;
  s.seq = ++seq;
  s.time_ns = now_ns();
  s.pid = proc->self_pid();
  auto tree = rt::scan_tree(*proc, s.pid, cfg.top_children);
  if (!tree.found && !warned_unreadable) {
    log->warn("cannot read /proc/{}/stat; the footprint is unknown", s.pid);
    warned_unreadable = true;
  }
  s.agent_rss_kb = tree.root_rss_kb;
  s.threads = tree.root_threads;
  s.tree_rss_kb = tree.tree_rss_kb;
  s.children = tree.descendants;
  s.direct_children = tree.children;
  if (!tree.largest.empty()) {
    s.largest_child_pid = tree.largest.front().pid;
    s.largest_child_rss_kb = tree.largest.front().rss_kb;
  }
  s.fds = proc->count_fds(s.pid);
  auto h = read_host();
  if (h.has_cpu && has_prev_cpu)
    s.host_cpu_percent = rt::cpu_busy_percent(prev_cpu, h.cpu);
  if (h.has_cpu) {
    prev_cpu = h.cpu;
    has_prev_cpu = true;
  }
  if (h.has_mem)
    s.host_mem_percent = h.mem.used_percent();
  // Window statistics.
  agent_rss.add(static_cast<double>(s.agent_rss_kb));
  tree_rss.add(static_cast<double>(s.tree_rss_kb));
  if (s.fds >= 0)
    fds.add(static_cast<double>(s.fds));
  threads.add(static_cast<double>(s.threads));
  children.add(static_cast<double>(s.children));
  // Pressure.
  if (tree.found && pressure.update(s.agent_rss_kb, s.tree_rss_kb))
    publish_pressure(tree);
  s.level = pressure.level();
  window_max = std::max(window_max, s.level);
  update_gauges(s);
  for (auto& l : sample_listeners)
    self->send(l, sample_atom_v, s);
  return s;
}

void monitor_state::publish_pressure(const rt::tree_usage& tree) {
  pressure_event ev;
  ev.level = pressure.level();
  ev.previous = pressure.previous();
  ev.agent_rss_kb = tree.root_rss_kb;
  ev.tree_rss_kb = tree.tree_rss_kb;
  if (!tree.largest.empty()) {
    ev.largest_child_pid = tree.largest.front().pid;
    ev.largest_child_rss_kb = tree.largest.front().rss_kb;
  }
  ev.cause = pressure.cause();
  ev.threshold_kb = pressure.threshold_kb();
  ev.episode = pressure.episode();
  ev.actions_due = pressure.actions_due();
  for (auto& c : tree.largest)
    ev.largest_children.push_back(child_usage{c.pid, c.ppid, c.rss_kb, c.comm});
  log_change(ev);
  for (auto& l : pressure_listeners)
    self->send(l, pressure_atom_v, ev);
  last_event = std::move(ev);
}

void monitor_state::log_change(const pressure_event& ev) {
  auto what = [&] {
    auto measured
        = ev.cause == pressure_cause::tree ? ev.tree_rss_kb : ev.agent_rss_kb;
    return fmt::format("{} RSS {} (threshold {}; agent {}, tree {})",
                       to_string(ev.cause), mb(measured), mb(ev.threshold_kb),
                       mb(ev.agent_rss_kb), mb(ev.tree_rss_kb));
  };
  bool logged = false;
  for (auto l : {pressure_level::warning, pressure_level::critical,
                 pressure_level::emergency}) {
    if (!ev.action_due(l))
      continue;
    logged = true;
    auto msg = fmt::format("memory pressure {} (episode {}): {}; action: {}",
                           to_string(l), ev.episode, what(), action_of(l));
    if (l == pressure_level::warning)
      log->warn("{}", msg);
    else
      log->error("{}", msg);
  }
  if (logged)
    return;
  if (ev.level == pressure_level::normal)
    log->info("memory pressure back to normal (episode {} over; agent {}, "
              "tree {})",
              ev.episode, mb(ev.agent_rss_kb), mb(ev.tree_rss_kb));
  else
    log->info("memory pressure {} -> {} (episode {}): {}",
              to_string(ev.previous), to_string(ev.level), ev.episode, what());
}

void monitor_state::update_gauges(const resource_sample& s) {
  if (!metrics)
    return;
  namespace m = rt::metric;
  m::set(*metrics, m::agent_rss, static_cast<double>(s.agent_rss_kb) * 1024);
  m::set(*metrics, m::tree_rss, static_cast<double>(s.tree_rss_kb) * 1024);
  if (s.fds >= 0)
    m::set(*metrics, m::open_fds, static_cast<double>(s.fds));
  m::set(*metrics, m::threads, static_cast<double>(s.threads));
  m::set(*metrics, m::children, s.children);
  m::set(*metrics, m::pressure_level, static_cast<double>(s.level));
  m::add(*metrics, m::monitor_samples, 1);
}

monitor_state::host_reading monitor_state::read_host() {
  host_reading h;
  h.has_cpu = proc->read_cpu(h.cpu);
  h.has_mem = proc->read_mem(h.mem);
  host.add(h.has_cpu ? &h.cpu : nullptr, h.has_mem ? &h.mem : nullptr);
  return h;
}

window_stats monitor_state::close_window() {
  read_host();
  window_stats w;
  w.samples = agent_rss.n;
  w.start_ns = window_start_ns;
  w.end_ns = now_ns();
  w.agent_rss_kb = agent_rss.range();
  w.tree_rss_kb = tree_rss.range();
  w.fds = fds.range();
  w.threads = threads.range();
  w.children = children.range();
  w.cpu_avg = host.cpu_avg();
  w.mem_avg = host.mem_avg();
  w.max_level = window_max;
  // The next window.
  host.restart();
  agent_rss = tree_rss = fds = threads = children = range_accumulator{};
  window_max = pressure.level();
  window_start_ns = w.end_ns;
  return w;
}

void monitor_state::subscribe(const pressure_listener_actor& who) {
  if (!add_listener(pressure_listeners, who))
    return;
  self->monitor(who);
  if (pressure.level() != pressure_level::normal)
    self->send(who, pressure_atom_v, last_event);
}

void monitor_state::subscribe(const sample_listener_actor& who) {
  if (add_listener(sample_listeners, who))
    self->monitor(who);
}

void monitor_state::on_down(const caf::actor_addr& who) {
  auto gone = [&](auto& x) {
    return x.address() == who;
  };
  pressure_listeners.erase(std::remove_if(pressure_listeners.begin(),
                                          pressure_listeners.end(), gone),
                           pressure_listeners.end());
  sample_listeners.erase(
      std::remove_if(sample_listeners.begin(), sample_listeners.end(), gone),
      sample_listeners.end());
}

// -- behaviour
// -------------------------------------------------------------------

monitor_impl::behavior_type
memory_monitor(monitor_impl::stateful_pointer<monitor_state> self,
               std::shared_ptr<rt::proc_source> proc,
               std::shared_ptr<rt::metrics> metrics, monitor_config cfg) {
  auto& st = self->state;
  st.self = self;
  st.proc = std::move(proc);
  st.metrics = std::move(metrics);
  st.cfg = cfg;
  st.log = log::get("monitor");
  st.pressure = pressure_tracker{cfg};
  st.init();
  self->set_down_handler([self](const caf::down_msg& msg) {
    self->state.on_down(msg.source);
  });
  // The first sample at once, then one per interval.
  self->send(self, tick_atom_v);
  return {
      [self](subscribe_atom, const pressure_listener_actor& who) {
        self->state.subscribe(who);
      },
      [self](subscribe_atom, const sample_listener_actor& who) {
        self->state.subscribe(who);
      },
      [self](sample_atom) {
        return self->state.take_sample();
      },
      [self](window_atom) {
        return self->state.close_window();
      },
      [self](tick_atom) {
        self->state.on_tick();
      },
  };
}

} // namespace gpa

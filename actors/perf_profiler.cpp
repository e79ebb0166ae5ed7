#include "actors/perf_profiler.hpp"

#include <algorithm>
#include <csignal>
#include <cstring>
#include <iterator>

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include "format/collapse.hpp"
#include "runtime/backoff.hpp"
#include "runtime/error.hpp"
#include "runtime/log.hpp"
#include "runtime/metric_names.hpp"
#include "runtime/proc.hpp"

namespace gpa {

namespace {

using namespace std::chrono_literals;

std::string describe_exit(const run_result& r) {
  std::string result;
  if (r.timed_out)
    result = "timed out";
  else if (r.cancelled)
    result = "cancelled";
  else if (r.exited)
    result = "exit status " + std::to_string(r.exit_code);
  else
    result = std::string{"killed by "} + strsignal(r.term_signal);
  if (auto line = first_message_line(r.err, {"rounding mmap pages size"});
      !line.empty())
    result += ": " + line;
  return result;
}

bool is_running(perf_phase x) {
  return x == perf_phase::launching || x == perf_phase::warming
         || x == perf_phase::recording;
}

bool is_final(perf_phase x) {
  return x == perf_phase::no_targets || x == perf_phase::failed;
}

} // namespace

// -- phases
// ----------------------------------------------------------------------

const char* to_string(perf_phase x) {
  switch (x) {
    case perf_phase::idle: return "idle";
    case perf_phase::probing: return "probing";
    case perf_phase::launching: return "launching";
    case perf_phase::warming: return "warming";
    case perf_phase::recording: return "recording";
    case perf_phase::stopping: return "stopping";
    case perf_phase::backing_off: return "backing_off";
    case perf_phase::no_targets: return "no_targets";
    case perf_phase::failed: return "failed";
  }
  return "unknown";
}

bool perf_transition_allowed(perf_phase from, perf_phase to) {
  using p = perf_phase;
  if (is_final(from))
    return false;
  switch (to) {
    case p::idle: return false;
    case p::probing: return from == p::idle;
    // From the probe, a restart, a back-off, or a --pids target gone while
    // perf runs (started again for the others).
    case p::launching:
      return from == p::probing || from == p::stopping || from == p::backing_off
             || is_running(from);
    case p::warming: return from == p::launching;
    case p::recording: return from == p::warming;
    case p::stopping:
    case p::backing_off: return is_running(from);
    // Every --pids process can be gone whenever perf is (re)started; perf
    // can fail for good whenever it runs something.
    case p::no_targets: return from != p::idle;
    case p::failed: return from != p::idle;
  }
  return false;
}

// -- event_probe
// -----------------------------------------------------------------

event_probe::event_probe() : event_probe({"", "cpu-clock", "task-clock"}) {}

event_probe::event_probe(std::vector<std::string> candidates)
    : candidates_(std::move(candidates)) {}

void event_probe::failed(const std::string& why) {
  failures_.push_back(event_name(current()) + ": " + why);
  ++index_;
}

std::string event_probe::summary() const {
  std::string result = "no event yields samples (";
  for (size_t i = 0; i < failures_.size(); ++i)
    result += (i ? "; " : "") + failures_[i];
  return result + ")";
}

std::string event_probe::notes() const {
  std::string result;
  for (auto& f : failures_)
    result += "; " + f;
  return result;
}

std::string event_probe::event_name(const std::string& ev) {
  return ev.empty() ? std::string{"perf's default event"} : "'" + ev + "'";
}

// -- rotation_book
// ---------------------------------------------------------------

std::vector<rotation_book::match>
rotation_book::take(const std::vector<rt::dir_entry>& listing,
                    const std::string& data_name) {
  std::vector<match> result;
  for (auto& e : listing) {
    if (!e.regular || e.name == data_name || seen_.count(e.name))
      continue;
    match m;
    m.file = e.name;
    if (!pending_.empty()) {
      m.owner = pending_.front();
      pending_.pop_front();
    }
    seen_.insert(e.name);
    result.push_back(std::move(m));
  }
  return result;
}

std::vector<uint64_t> rotation_book::abandon() {
  std::vector<uint64_t> owners;
  for (auto owner : pending_)
    if (owner != 0)
      owners.push_back(owner);
  pending_.clear();
  return owners;
}

// -- command lines
// ---------------------------------------------------------------

std::vector<std::string>
perf_state::record_argv(const std::string& output,
                        const std::optional<std::string>& ev,
                        bool probe) const {
  std::vector<std::string> argv{cfg.opts.path, "record", "-F",
                                std::to_string(cfg.frequency)};
  if (cfg.unwind == perf_unwind::dwarf)
    argv.push_back("--call-graph=dwarf,"
                   + std::to_string(cfg.opts.dwarf_stack_size));
  else
    argv.push_back("-g");
  if (ev && !ev->empty()) {
    argv.push_back("-e");
    argv.push_back(*ev);
  }
  // The test recording checks the event, so it samples the whole host: an
  // idle --pids target would give it no samples.
  if (cfg.pids.empty() || probe) {
    argv.push_back("-a");
  } else {
    argv.push_back("-p");
    argv.push_back(rt::join_pids(targets_.empty() ? cfg.pids : targets_));
  }
  if (cfg.inject_jit) {
    // jitdump files carry CLOCK_MONOTONIC times; perf inject matches them.
    argv.push_back("-k");
    argv.push_back("1");
  }
  argv.push_back("-m");
  argv.push_back(std::to_string(cfg.opts.mmap_pages));
  if (!probe)
    argv.push_back("--switch-output=signal");
  argv.push_back("-o");
  argv.push_back(output);
  return argv;
}

// -- the transition function
// -------------------------------------------------------

void perf_state::init(perf_config config, std::shared_ptr<perf_effects> effects,
                      std::shared_ptr<rt::file_system> files,
                      std::shared_ptr<rt::metrics> registry) {
  cfg = std::move(config);
  fx = std::move(effects);
  fs = std::move(files);
  metrics = std::move(registry);
  log = log::get(cfg.name);
}

void perf_state::enter(perf_phase to, const std::string& why) {
  auto from = phase_;
  if (!perf_transition_allowed(from, to)) {
    log->error("perf profiler: ignoring the impossible transition {} -> {} "
               "({})",
               to_string(from), to_string(to), why);
    return;
  }
  phase_ = to;
  log->debug("phase {} -> {}{}{}", to_string(from), to_string(to),
             why.empty() ? "" : ": ", why);
  switch (to) {
    case perf_phase::idle: break;
    case perf_phase::probing: probe_next(); break;
    case perf_phase::launching: launched_ = fx->now(); break;
    case perf_phase::warming:
      warm_signalled_ = fx->now();
      fx->signal(record_tag(), SIGUSR2, [this](caf::expected<uint32_t> n) {
        if (!n)
          log->warn("cannot signal perf record to see it ready: {}",
                    describe(n.error()));
      });
      break;
    case perf_phase::recording:
      log->info("perf record is running");
      start_timeouts_ = 0;
      early_exits_ = 0;
      answer_prepare({});
      break;
    case perf_phase::stopping:
      log->warn("restarting perf: {}", why);
      fx->cancel(record_tag());
      break;
    case perf_phase::backing_off:
      log->error("perf record exited unexpectedly ({})", why);
      break;
    case perf_phase::no_targets:
      final_reason_ = why;
      log->warn("{}: perf has nothing to record", why);
      answer_prepare(why);
      break;
    case perf_phase::failed:
      final_reason_ = why;
      log->error("perf cannot profile this host: {}", why);
      answer_prepare(why);
      break;
  }
}

void perf_state::answer_prepare(const std::string& status) {
  auto waiters = std::move(prepare_waiters_);
  prepare_waiters_.clear();
  for (auto& reply : waiters)
    reply(status);
}

// -- preparing: finding an event, starting perf record
// ---------------------------

void perf_state::prepare(std::function<void(std::string)> reply) {
  if (is_final(phase_)) {
    reply(final_reason_);
    return;
  }
  if (phase_ == perf_phase::recording) {
    reply(std::string{});
    return;
  }
  prepare_waiters_.push_back(std::move(reply));
  // The first request starts the probe; later ones wait for its result.
  if (phase_ == perf_phase::idle)
    enter(perf_phase::probing);
}

void perf_state::probe_failed(const std::string& why) {
  log->info("perf: {} does not work: {}",
            event_probe::event_name(probe_.current()), why);
  probe_.failed(why);
  probe_next();
}

void perf_state::probe_next() {
  if (probe_.exhausted()) {
    enter(perf_phase::failed, probe_.summary());
    return;
  }
  auto memo_key = cfg.name + "|" + cfg.opts.path + "|" + probe_.current();
  if (auto known = cfg.events ? cfg.events->find(memo_key) : std::nullopt) {
    // An earlier session's profiler found it: no second probe (if it fails
    // now, the restarts say so).
    event_ = *known;
    log->info("perf: sampling with {} at {} Hz, {} call graphs (the event "
              "found at start)",
              event_probe::event_name(*event_), cfg.frequency,
              cfg.unwind == perf_unwind::dwarf ? "DWARF" : "frame-pointer");
    launch();
    return;
  }
  std::string ev = probe_.current();
  auto file = cfg.temp_dir + "/" + cfg.name + "-probe.data";
  fs->remove(file);
  run_request req;
  req.argv = record_argv(file, ev, true);
  req.argv.insert(req.argv.end(), {"--", "sleep", "0.5"});
  req.timeout = caf::timespan{cfg.opts.start_timeout};
  req.kill_grace = cfg.kill_grace;
  req.out_mode = stdout_mode::discard;
  req.err_cap = 8 << 10;
  req.tag = cfg.name + "-probe";
  fx->run(std::move(req), [this, file, ev](caf::expected<run_result> r) {
    if (!r) {
      fs->remove(file);
      auto& err = r.error();
      // A tool that cannot start at all will not start for other events.
      if (err.category() == caf::atom("gpa")
          && static_cast<ec>(err.code()) == ec::spawn_failed)
        enter(perf_phase::failed, describe(err));
      else
        probe_failed(describe(err));
      return;
    }
    if (!r->success()) {
      fs->remove(file);
      probe_failed("perf record: " + describe_exit(*r));
      return;
    }
    run_request script;
    script.argv = {cfg.opts.path, "script", "-F", "comm,pid", "-i", file};
    script.timeout = caf::timespan{cfg.opts.start_timeout};
    script.kill_grace = cfg.kill_grace;
    script.out_cap = 64 << 10;
    script.err_cap = 8 << 10;
    script.tag = cfg.name + "-probe";
    fx->run(std::move(script), [this, file, ev](caf::expected<run_result> s) {
      fs->remove(file);
      if (!s) {
        probe_failed(describe(s.error()));
        return;
      }
      if (!s->success()) {
        probe_failed("perf script: " + describe_exit(*s));
        return;
      }
      if (s->out.find_first_not_of(" \t\n") == std::string::npos) {
        probe_failed("the test recording has no samples");
        return;
      }
      event_ = ev;
      if (cfg.events)
        cfg.events->remember(
            cfg.name + "|" + cfg.opts.path + "|" + probe_.first(), ev);
      log->info("perf: sampling with {} at {} Hz, {} call graphs{}",
                event_probe::event_name(ev), cfg.frequency,
                cfg.unwind == perf_unwind::dwarf ? "DWARF" : "frame-pointer",
                probe_.notes());
      launch();
    });
  });
}

std::vector<int64_t> perf_state::live_pids() const {
  std::vector<int64_t> result;
  for (auto pid : cfg.pids)
    if (!cfg.alive || cfg.alive(pid))
      result.push_back(pid);
  return result;
}

void perf_state::launch() {
  // A restart timer that fires after perf was started otherwise (or can
  // never run again) has nothing to do.
  if (is_final(phase_) || phase_ == perf_phase::idle
      || (phase_ == perf_phase::probing && !event_))
    return;
  if (is_running(phase_) && targets_.empty())
    return;
  if (!cfg.pids.empty()) {
    // perf record -p fails if one of the processes is gone: record the ones
    // left, or nothing if none is.
    auto live = live_pids();
    if (live.empty()) {
      enter(perf_phase::no_targets, "none of the --pids processes ("
                                        + rt::join_pids(cfg.pids)
                                        + ") is running");
      return;
    }
    if (live.size() < cfg.pids.size() && live != targets_)
      log->warn("--pids: recording {} ({} of the {} processes are gone)",
                rt::join_pids(live), cfg.pids.size() - live.size(),
                cfg.pids.size());
    if (is_running(phase_) && live == targets_)
      return; // already recording exactly these
    targets_ = std::move(live);
  }
  // Leftovers of a previous perf (its last segment) are not ours to use.
  if (auto entries = fs->list(cfg.temp_dir, data_name()))
    for (auto& e : *entries)
      fs->remove(cfg.temp_dir + "/" + e.name);
  rotations.reset_seen();
  enter(perf_phase::launching);
  run_request req;
  req.argv = record_argv(cfg.temp_dir + "/" + data_name(), event_, false);
  req.kill_grace = cfg.kill_grace;
  req.out_mode = stdout_mode::discard;
  req.err_cap = 16 << 10;
  req.tag = record_tag();
  fx->run(std::move(req), [this](caf::expected<run_result> r) {
    on_record_exit(r);
  });
  schedule_poll();
}

void perf_state::on_record_exit(const caf::expected<run_result>& r) {
  segment_window_ = 0;
  // Rotations that were asked for will not produce files any more.
  for (auto owner : rotations.abandon())
    fail_window(owner, "failed", "perf record stopped");
  if (!r) {
    enter(perf_phase::failed, "cannot run perf record: " + describe(r.error()));
    return;
  }
  if (phase_ == perf_phase::stopping) {
    launch();
    return;
  }
  if (!targets_.empty() && live_pids() != targets_) {
    // perf record -p ends when its processes do: go on with the ones left,
    // if any.
    log->info("perf record ended: a --pids process exited");
    launch();
    return;
  }
  count_restart();
  // Exits before perf got ready (a bad option, a gone target, a broken
  // perf) back off; one after a good run waits the first delay only.
  auto delay = rt::doubled_delay(cfg.restart_delay, cfg.restart_delay_max,
                                 early_exits_++);
  enter(perf_phase::backing_off,
        describe_exit(*r) + "; restarting it in "
            + std::to_string(
                std::chrono::duration_cast<std::chrono::seconds>(delay).count())
            + " s");
  fx->restart_in(delay);
}

void perf_state::restart_perf(const std::string& why) {
  count_restart();
  if (is_running(phase_)) {
    enter(perf_phase::stopping, why);
    return;
  }
  log->warn("restarting perf: {}", why);
  launch();
}

// -- windows
// ---------------------------------------------------------------------

void perf_state::on_start(const window_info& info) {
  // Unless the rotation that closed the previous window also opened this
  // one, what perf recorded before this window is discarded.
  bool follows = last_closed_ != 0 && last_closed_ + 1 == info.snapshot_id;
  if (!follows && phase_ == perf_phase::recording)
    rotate(0);
  segment_window_ = info.snapshot_id;
  last_closed_ = 0;
}

void perf_state::on_snapshot(const snapshot_request& req,
                             std::function<void(profile_part)> reply) {
  auto& w = windows[req.snapshot_id];
  w.id = req.snapshot_id;
  w.reply = std::move(reply);
  w.tag = req.tag;
  w.budget = req.budget;
  if (is_final(phase_)) {
    fail_window(req.snapshot_id, "failed", final_reason_);
    segment_window_ = 0;
    return;
  }
  if (phase_ != perf_phase::recording) {
    // perf is not recording (it died, or hangs while starting): there is no
    // data of this window to wait for.
    if (start_timeouts_ > 0)
      fail_window(req.snapshot_id, "timed out",
                  not_ready() + " (" + std::to_string(start_timeouts_)
                      + " times in a row)");
    else
      fail_window(req.snapshot_id, "failed", "perf record is restarting");
    segment_window_ = 0;
    return;
  }
  rotate(req.snapshot_id);
  segment_window_ = 0;
  last_closed_ = req.snapshot_id;
  check_rss();
}

void perf_state::rotate(uint64_t owner) {
  rotations.asked(owner);
  fx->signal(record_tag(), SIGUSR2, [this, owner](caf::expected<uint32_t> n) {
    if (!n) {
      if (owner != 0)
        fail_window(owner, "failed", describe(n.error()));
      else
        log->warn("cannot signal perf record: {}", describe(n.error()));
      return;
    }
    log->debug("rotation for window {} signalled {} process(es)", owner, *n);
    if (*n == 0 && owner != 0)
      fail_window(owner, "failed", "perf record is not running");
  });
  schedule_poll();
}

void perf_state::schedule_poll() {
  if (poll_pending_)
    return;
  poll_pending_ = true;
  fx->poll_in(cfg.poll_interval);
}

void perf_state::on_poll() {
  poll_pending_ = false;
  auto entries = fs->list(cfg.temp_dir, data_name());
  if (!entries) {
    log->error("cannot watch perf's output: {}", describe(entries.error()));
    return;
  }
  if (phase_ == perf_phase::launching || phase_ == perf_phase::warming) {
    // Ready means perf runs its main loop: a rotation file answers the
    // warming signal. Files seen earlier are late answers: removed.
    bool rotated = false;
    for (auto& e : *entries)
      if (e.regular && e.name != data_name()) {
        fs->remove(cfg.temp_dir + "/" + e.name);
        rotated = phase_ == perf_phase::warming;
      }
    auto now = fx->now();
    if (rotated) {
      enter(perf_phase::recording);
      if (rotations.pending() > 0)
        schedule_poll();
      return;
    }
    bool started
        = std::any_of(entries->begin(), entries->end(), [this](auto& e) {
            return e.name == data_name() && e.size > 0;
          });
    if (started && phase_ == perf_phase::launching) {
      enter(perf_phase::warming);
    } else if (started
               && now - warm_signalled_ > intervals::perf_signal_retry) {
      // perf did not answer yet (still synthesizing): ask again.
      warm_signalled_ = now;
      fx->signal(record_tag(), SIGUSR2, [this](caf::expected<uint32_t> n) {
        if (!n)
          log->warn("cannot signal perf record to see it ready: {}",
                    describe(n.error()));
      });
    }
    if (now - launched_ > caf::timespan{cfg.opts.start_timeout}) {
      ++start_timeouts_;
      restart_perf(not_ready());
      return;
    }
    schedule_poll();
    return;
  }
  for (auto& m : rotations.take(*entries, data_name())) {
    auto path = cfg.temp_dir + "/" + m.file;
    auto w = windows.find(m.owner);
    if (m.owner == 0 || w == windows.end()) {
      // Data outside any window, or a late answer to a start-up signal.
      forget(path);
      continue;
    }
    log->debug("rotation file {} belongs to window {}", m.file, m.owner);
    w->second.data_file = path;
    run_script(w->second);
  }
  if (rotations.pending() == 0 && !restart_after_rotation_.empty()) {
    auto why = std::move(restart_after_rotation_);
    restart_after_rotation_.clear();
    restart_perf(why);
  }
  if (rotations.pending() > 0)
    schedule_poll();
}

void perf_state::run_script(perf_window& w) {
  if (cfg.inject_jit)
    run_inject(w);
  else
    script_file(w.id, w.data_file, w.data_file);
}

void perf_state::run_inject(perf_window& w) {
  // perf inject --jit writes an ELF file per jitted function next to each
  // jitdump it reads (node --perf-prof: in the process's working
  // directory), as gProfiler's perf mode does; its output is the data with
  // those files mapped in.
  run_request req;
  auto injected = w.data_file + ".jit";
  req.argv
      = {cfg.opts.path, "inject", "--jit", "-i", w.data_file, "-o", injected};
  req.timeout = w.budget;
  req.kill_grace = cfg.kill_grace;
  req.out_cap = 16 << 10;
  req.err_cap = 16 << 10;
  req.tag = w.tag;
  auto id = w.id;
  auto data_file = w.data_file;
  fx->run(std::move(req),
          [this, id, data_file, injected](caf::expected<run_result> r) {
            if (windows.find(id) == windows.end()) {
              forget(data_file);
              fs->remove(injected);
              return;
            }
            if (r && r->success()) {
              script_file(id, data_file, injected);
              return;
            }
            // Nothing is lost: the window's stacks, without jitdump names.
            log->warn("perf inject --jit failed for window {} ({}); its "
                      "stacks come without jitdump symbols",
                      id, r ? describe_exit(*r) : describe(r.error()));
            fs->remove(injected);
            script_file(id, data_file, data_file);
          });
}

void perf_state::script_file(uint64_t id, const std::string& data_file,
                             const std::string& input) {
  auto wi = windows.find(id);
  if (wi == windows.end()) {
    forget(data_file);
    if (input != data_file)
      fs->remove(input);
    return;
  }
  auto& w = wi->second;
  run_request req;
  req.argv
      = {cfg.opts.path, "script", "-F", "+pid", "--no-inline", "-i", input};
  req.timeout = w.budget;
  req.kill_grace = cfg.kill_grace;
  req.out_mode = stdout_mode::file;
  req.out_file = "script-" + cfg.name + "-" + std::to_string(w.id) + ".txt";
  req.err_cap = 16 << 10;
  req.tag = w.tag;
  fx->run(std::move(req),
          [this, id, data_file, input](caf::expected<run_result> r) {
            forget(data_file);
            if (input != data_file)
              fs->remove(input);
            if (!r) {
              fail_window(id, "failed", "perf script: " + describe(r.error()));
              return;
            }
            if (!r->success()) {
              fs->remove(r->out_path);
              fail_window(id, r->timed_out ? "timed out" : "failed",
                          "perf script: " + describe_exit(*r));
              return;
            }
            // Parsing a large file blocks: it runs on the work queue.
            fx->collapse(r->out_path, id);
          });
}

void perf_state::on_collapsed(profile_part& part) {
  auto w = windows.find(part.snapshot_id);
  if (w == windows.end())
    return;
  uint64_t samples = 0;
  for (auto& p : part.processes)
    for (auto& s : p.stacks)
      samples += s.count;
  if (metrics)
    rt::metric::add(*metrics, rt::metric::perf_samples,
                    static_cast<double>(samples));
  log->info("window {}: perf recorded {} samples of {} processes",
            part.snapshot_id, samples, part.processes.size());
  auto reply = std::move(w->second.reply);
  windows.erase(w);
  reply(std::move(part));
}

void perf_state::fail_window(uint64_t id, const std::string& what,
                             const std::string& reason) {
  auto w = windows.find(id);
  if (w == windows.end())
    return;
  log->warn("no perf data for window {}: {} ({})", id, what, reason);
  profile_part part;
  part.snapshot_id = id;
  part.profiler = cfg.name;
  part.errors.push_back({0, cfg.name, what, reason});
  auto reply = std::move(w->second.reply);
  windows.erase(w);
  reply(std::move(part));
}

std::string perf_state::not_ready() const {
  return "perf record did not get ready within "
         + std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                              caf::timespan{cfg.opts.start_timeout})
                              .count())
         + " s";
}

void perf_state::count_restart() {
  ++restarts;
  if (metrics)
    rt::metric::add(*metrics, rt::metric::perf_restarts, 1);
}

void perf_state::forget(const std::string& data_file) {
  fs->remove(data_file);
  rotations.forget(data_file.substr(data_file.rfind('/') + 1));
}

void perf_state::restart_after_window_if(
    std::function<std::string(const child_info&)> why) {
  fx->list(record_tag(), [this, why](child_list list) {
    for (auto& c : list.children) {
      if (!restart_after_rotation_.empty())
        return;
      if (auto reason = why(c); !reason.empty()) {
        log->warn("{}; restarting it after this window", reason);
        restart_after_rotation_ = reason;
      }
    }
  });
}

void perf_state::check_rss() {
  if (!cfg.rss_kb || cfg.opts.no_memory_restart)
    return;
  restart_after_window_if([this](const child_info& c) {
    auto rss = cfg.rss_kb(c.pid);
    if (rss <= rss_limit_kb())
      return std::string{};
    return "perf record (pid " + std::to_string(c.pid) + ") uses "
           + std::to_string(rss / 1024) + " MB, above the limit of "
           + std::to_string(rss_limit_kb() / 1024) + " MB";
  });
}

void perf_state::on_pressure(const pressure_event& ev) {
  if (!ev.action_due(pressure_level::emergency) || ev.largest_child_pid == 0)
    return;
  restart_after_window_if([pid = ev.largest_child_pid](const child_info& c) {
    if (c.pid != pid)
      return std::string{};
    return "memory emergency and perf (pid " + std::to_string(c.pid)
           + ") is the largest child";
  });
}

// -- the actor: effects over the reaper, timers and the work queue
// -----------------------------------------------

namespace {

/// perf_effects for a real (or simulated) actor.
class actor_effects : public perf_effects {
public:
  actor_effects(perf_profiler_impl::pointer self, reaper_actor reaper,
                std::shared_ptr<rt::work_queue> work,
                std::shared_ptr<rt::file_system> fs, std::string name,
                std::shared_ptr<spdlog::logger> log,
                std::function<bool(int32_t)> java_process)
      : self_(self), reaper_(std::move(reaper)), work_(std::move(work)),
        fs_(std::move(fs)), name_(std::move(name)), log_(std::move(log)),
        java_process_(std::move(java_process)) {}

  void run(run_request req,
           std::function<void(caf::expected<run_result>)> done) override {
    self_->request(reaper_, caf::infinite, run_atom_v, std::move(req))
        .then(
            [done](run_result& r) {
              done(std::move(r));
            },
            [done](caf::error& err) {
              done(std::move(err));
            });
  }

  void signal(const std::string& tag, int sig,
              std::function<void(caf::expected<uint32_t>)> done) override {
    self_->request(reaper_, caf::infinite, signal_atom_v, tag, int32_t{sig})
        .then(
            [done](uint32_t n) {
              done(n);
            },
            [done](caf::error& err) {
              done(std::move(err));
            });
  }

  void cancel(const std::string& tag) override {
    auto lg = log_;
    self_->request(reaper_, caf::infinite, cancel_atom_v, tag)
        .then([](uint32_t) {},
              [lg, tag](caf::error& err) {
                lg->warn("cannot stop {}: {}", tag, describe(err));
              });
  }

  void list(const std::string& tag,
            std::function<void(child_list)> done) override {
    auto lg = log_;
    self_->request(reaper_, caf::infinite, list_atom_v, tag)
        .then(
            [done](child_list& list) {
              done(std::move(list));
            },
            [lg, tag](caf::error& err) {
              lg->warn("cannot list {}: {}", tag, describe(err));
            });
  }

  void poll_in(caf::timespan delay) override {
    self_->delayed_send(self_, delay, poll_atom_v);
  }

  void restart_in(caf::timespan delay) override {
    self_->delayed_send(self_, delay, restart_atom_v);
  }

  caf::actor_clock::time_point now() override {
    return self_->clock().now();
  }

  void collapse(std::string path, uint64_t window) override {
    auto files = fs_;
    auto weak = caf::actor_cast<caf::weak_actor_ptr>(self_);
    auto name = name_;
    auto is_jvm = java_process_;
    work_->post([files, path, window, weak, name, is_jvm] {
      profile_part part;
      part.snapshot_id = window;
      part.profiler = name;
      format::perf_collapser collapser;
      auto err = files->read_chunks(path, [&](std::string_view chunk) {
        collapser.feed(chunk);
      });
      collapser.finish();
      files->remove(path);
      if (err)
        part.errors.push_back({0, name, "failed", describe(err)});
      else
        part.processes = collapser.per_process(is_jvm);
      if (auto bad = collapser.stats().malformed; bad > 0)
        part.errors.push_back(
            {0, name, "warning",
             std::to_string(bad) + " malformed perf script records"});
      if (auto strong = weak.lock())
        caf::anon_send(caf::actor_cast<perf_profiler_impl>(strong), done_atom_v,
                       std::move(part));
    });
  }

private:
  perf_profiler_impl::pointer self_;
  reaper_actor reaper_;
  std::shared_ptr<rt::work_queue> work_;
  std::shared_ptr<rt::file_system> fs_;
  std::string name_;
  std::shared_ptr<spdlog::logger> log_;
  std::function<bool(int32_t)> java_process_;
};

} // namespace

perf_profiler_impl::behavior_type
perf_profiler(perf_profiler_impl::stateful_pointer<perf_state> self,
              perf_config cfg, reaper_actor reaper,
              std::shared_ptr<rt::file_system> fs,
              std::shared_ptr<rt::work_queue> work,
              std::shared_ptr<rt::metrics> metrics) {
  auto& st = self->state;
  auto name = cfg.name;
  st.log = log::get(name);
  auto fx = std::make_shared<actor_effects>(self, std::move(reaper),
                                            std::move(work), fs, name, st.log,
                                            cfg.java_process);
  st.init(std::move(cfg), std::move(fx), std::move(fs), std::move(metrics));
  return {
      [self](prepare_atom) {
        auto promise = self->make_response_promise<std::string>();
        self->state.prepare([promise](std::string status) mutable {
          promise.deliver(std::move(status));
        });
        return promise;
      },
      [self](start_atom, const window_info& info) {
        self->state.on_start(info);
      },
      [self](snapshot_atom, const snapshot_request& req) {
        auto promise = self->make_response_promise<profile_part>();
        self->state.on_snapshot(req, [promise](profile_part part) mutable {
          promise.deliver(std::move(part));
        });
        return promise;
      },
      [self](pressure_atom, const pressure_event& ev) {
        self->state.on_pressure(ev);
      },
      [self](poll_atom) {
        self->state.on_poll();
      },
      [self](restart_atom) {
        self->state.launch();
      },
      [self](done_atom, profile_part& part) {
        self->state.on_collapsed(part);
      },
  };
}

} // namespace gpa

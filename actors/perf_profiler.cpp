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

const char* const candidate_events[] = {"", "cpu-clock", "task-clock"};

std::string event_name(const std::string& ev) {
  return ev.empty() ? std::string{"perf's default event"} : "'" + ev + "'";
}

/// First line of a tool's stderr, for error messages.
std::string first_line(const std::string& text) {
  auto start = text.find_first_not_of(" \t\n");
  // perf's notice that it rounded -m up says nothing about a failure.
  static constexpr std::string_view notice = "rounding mmap pages size";
  while (start != std::string::npos
         && text.compare(start, notice.size(), notice) == 0) {
    auto nl = text.find('\n', start);
    start = nl == std::string::npos ? nl : text.find_first_not_of(" \t\n", nl);
  }
  if (start == std::string::npos)
    return {};
  auto end = text.find('\n', start);
  auto line = text.substr(start, end == std::string::npos ? std::string::npos
                                                          : end - start);
  if (line.size() > 200)
    line = line.substr(0, 200) + "...";
  return line;
}

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
  if (auto line = first_line(r.err); !line.empty())
    result += ": " + line;
  return result;
}

} // namespace

// -- command lines
// ---------------------------------------------------------------

std::vector<std::string>
perf_state::record_argv(const std::string& output,
                        const std::optional<std::string>& ev,
                        bool probe) const {
  std::vector<std::string> argv{cfg.perf_path, "record", "-F",
                                std::to_string(cfg.frequency)};
  if (cfg.mode == "dwarf")
    argv.push_back("--call-graph=dwarf,"
                   + std::to_string(cfg.dwarf_stack_size));
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
    argv.push_back(rt::join_pids(targets.empty() ? cfg.pids : targets));
  }
  argv.push_back("-m");
  argv.push_back(std::to_string(cfg.mmap_pages));
  if (!probe)
    argv.push_back("--switch-output=signal");
  argv.push_back("-o");
  argv.push_back(output);
  return argv;
}

// -- preparing: finding an event, starting perf record
// ---------------------------

void perf_state::prepare(caf::typed_response_promise<std::string> promise) {
  if (!fatal.empty()) {
    promise.deliver(fatal);
    return;
  }
  if (ready) {
    promise.deliver(std::string{});
    return;
  }
  prepare_waiters.push_back(std::move(promise));
  // The first request starts the probe; later ones wait for its result.
  if (!probing) {
    probing = true;
    probe_next();
  }
}

void perf_state::set_fatal(std::string why) {
  fatal = std::move(why);
  log->error("perf cannot profile this host: {}", fatal);
  for (auto& p : prepare_waiters)
    p.deliver(fatal);
  prepare_waiters.clear();
}

void perf_state::probe_failed(std::string why) {
  log->info("perf: {} does not work: {}",
            event_name(candidate_events[probe_index]), why);
  probe_failures.push_back(event_name(candidate_events[probe_index]) + ": "
                           + why);
  ++probe_index;
  probe_next();
}

void perf_state::probe_next() {
  if (probe_index >= std::size(candidate_events)) {
    std::string why = "no event yields samples (";
    for (size_t i = 0; i < probe_failures.size(); ++i)
      why += (i ? "; " : "") + probe_failures[i];
    set_fatal(why + ")");
    return;
  }
  std::string ev = candidate_events[probe_index];
  auto file = cfg.temp_dir + "/" + cfg.name + "-probe.data";
  fs->remove(file);
  run_request req;
  req.argv = record_argv(file, ev, true);
  req.argv.insert(req.argv.end(), {"--", "sleep", "0.5"});
  req.timeout = cfg.probe_timeout;
  req.kill_grace = cfg.kill_grace;
  req.out_mode = stdout_mode::discard;
  req.err_cap = 8 << 10;
  req.tag = cfg.name + "-probe";
  self->request(reaper, caf::infinite, run_atom_v, std::move(req))
      .then(
          [this, file, ev](run_result& r) {
            if (!r.success()) {
              fs->remove(file);
              probe_failed("perf record: " + describe_exit(r));
              return;
            }
            run_request script;
            script.argv
                = {cfg.perf_path, "script", "-F", "comm,pid", "-i", file};
            script.timeout = cfg.probe_timeout;
            script.kill_grace = cfg.kill_grace;
            script.out_cap = 64 << 10;
            script.err_cap = 8 << 10;
            script.tag = cfg.name + "-probe";
            self->request(reaper, caf::infinite, run_atom_v, std::move(script))
                .then(
                    [this, file, ev](run_result& s) {
                      fs->remove(file);
                      if (!s.success()) {
                        probe_failed("perf script: " + describe_exit(s));
                        return;
                      }
                      if (s.out.find_first_not_of(" \t\n")
                          == std::string::npos) {
                        probe_failed("the test recording has no samples");
                        return;
                      }
                      event = ev;
                      std::string note;
                      for (auto& f : probe_failures)
                        note += "; " + f;
                      log->info(
                          "perf: sampling with {} at {} Hz, {} call graphs{}",
                          event_name(ev), cfg.frequency,
                          cfg.mode == "dwarf" ? "DWARF" : "frame-pointer",
                          note);
                      launch_record();
                    },
                    [this, file](caf::error& err) {
                      fs->remove(file);
                      probe_failed(describe(err));
                    });
          },
          [this](caf::error& err) {
            // A tool that cannot start at all will not start for other events.
            if (err.category() == caf::atom("gpa")
                && static_cast<ec>(err.code()) == ec::spawn_failed)
              set_fatal(describe(err));
            else
              probe_failed(describe(err));
          });
}

std::vector<int64_t> perf_state::live_pids() const {
  std::vector<int64_t> result;
  for (auto pid : cfg.pids)
    if (!cfg.alive || cfg.alive(pid))
      result.push_back(pid);
  return result;
}

void perf_state::launch_record() {
  if (!fatal.empty() || recording)
    return;
  if (!cfg.pids.empty()) {
    // perf record -p fails if one of the processes is gone: record the ones
    // left, or nothing if none is.
    auto live = live_pids();
    if (live.empty()) {
      if (no_targets.empty()) {
        no_targets = "none of the --pids processes (" + rt::join_pids(cfg.pids)
                     + ") is running";
        log->warn("{}: perf has nothing to record", no_targets);
      }
      for (auto& p : prepare_waiters)
        p.deliver(no_targets);
      prepare_waiters.clear();
      return;
    }
    if (live.size() < cfg.pids.size() && live != targets)
      log->warn("--pids: recording {} ({} of the {} processes are gone)",
                rt::join_pids(live), cfg.pids.size() - live.size(),
                cfg.pids.size());
    targets = std::move(live);
  }
  // Leftovers of a previous perf (its last segment) are not ours to use.
  if (auto entries = fs->list(cfg.temp_dir, data_name()))
    for (auto& e : *entries)
      fs->remove(cfg.temp_dir + "/" + e.name);
  seen_files.clear();
  recording = true;
  ready = false;
  warming = false;
  stopping = false;
  launched = self->clock().now();
  run_request req;
  req.argv = record_argv(cfg.temp_dir + "/" + data_name(), event, false);
  req.kill_grace = cfg.kill_grace;
  req.out_mode = stdout_mode::discard;
  req.err_cap = 16 << 10;
  req.tag = record_tag();
  self->request(reaper, caf::infinite, run_atom_v, std::move(req))
      .then(
          [this](run_result& r) {
            recording = false;
            ready = false;
            segment_window = 0;
            // Rotations that were asked for will not produce files any more.
            for (auto owner : rotations)
              if (owner != 0)
                fail_window(owner, "failed", "perf record stopped");
            rotations.clear();
            if (stopping) {
              launch_record();
              return;
            }
            if (!targets.empty() && live_pids() != targets) {
              // perf record -p ends when its processes do: go on with the
              // ones left, if any.
              log->info("perf record ended: a --pids process exited");
              launch_record();
              return;
            }
            count_restart();
            // Exits before perf got ready (a bad option, a gone target, a
            // broken perf) back off; one after a good run waits the first
            // delay only.
            auto delay = rt::doubled_delay(
                cfg.restart_delay, cfg.restart_delay_max, early_exits++);
            log->error("perf record exited unexpectedly ({}); restarting it in "
                       "{} s",
                       describe_exit(r),
                       std::chrono::duration_cast<std::chrono::seconds>(delay)
                           .count());
            self->delayed_send(self, delay, restart_atom_v);
          },
          [this](caf::error& err) {
            recording = false;
            set_fatal("cannot run perf record: " + describe(err));
          });
  schedule_poll();
}

void perf_state::restart_perf(const std::string& why) {
  log->warn("restarting perf: {}", why);
  count_restart();
  if (!recording) {
    launch_record();
    return;
  }
  stopping = true;
  ready = false;
  self->request(reaper, caf::infinite, cancel_atom_v, record_tag())
      .then([](uint32_t) {}, [](caf::error&) {});
}

// -- windows
// ---------------------------------------------------------------------

void perf_state::on_start(const window_info& info) {
  // Unless the rotation that closed the previous window also opened this
  // one, what perf recorded before this window is discarded.
  bool follows = last_closed != 0 && last_closed + 1 == info.snapshot_id;
  if (!follows && ready)
    rotate(0);
  segment_window = info.snapshot_id;
  last_closed = 0;
}

void perf_state::on_snapshot(
    const snapshot_request& req,
    caf::typed_response_promise<profile_part> promise) {
  auto& w = windows[req.snapshot_id];
  w.id = req.snapshot_id;
  w.promise = std::move(promise);
  w.tag = req.tag;
  w.budget = req.budget;
  if (!fatal.empty()) {
    fail_window(req.snapshot_id, "failed", fatal);
    return;
  }
  if (!ready && !no_targets.empty()) {
    fail_window(req.snapshot_id, "failed", no_targets);
    segment_window = 0;
    return;
  }
  if (!ready) {
    // perf is not recording (it died, or hangs while starting): there is no
    // data of this window to wait for.
    if (start_timeouts > 0)
      fail_window(req.snapshot_id, "timed out",
                  not_ready() + " (" + std::to_string(start_timeouts)
                      + " times in a row)");
    else
      fail_window(req.snapshot_id, "failed", "perf record is restarting");
    segment_window = 0;
    return;
  }
  rotate(req.snapshot_id);
  segment_window = 0;
  last_closed = req.snapshot_id;
  check_rss();
}

void perf_state::rotate(uint64_t owner) {
  rotations.push_back(owner);
  self->request(reaper, caf::infinite, signal_atom_v, record_tag(),
                int32_t{SIGUSR2})
      .then(
          [this, owner](uint32_t n) {
            log->debug("rotation for window {} signalled {} process(es)", owner,
                       n);
            if (n == 0 && owner != 0)
              fail_window(owner, "failed", "perf record is not running");
          },
          [this, owner](caf::error& err) {
            if (owner != 0)
              fail_window(owner, "failed", describe(err));
          });
  schedule_poll();
}

void perf_state::schedule_poll() {
  if (polling)
    return;
  polling = true;
  self->delayed_send(self, cfg.poll_interval, poll_atom_v);
}

void perf_state::on_poll() {
  polling = false;
  auto entries = fs->list(cfg.temp_dir, data_name());
  if (!entries) {
    log->error("cannot watch perf's output: {}", describe(entries.error()));
    return;
  }
  if (recording && !ready) {
    // Ready means perf runs its main loop. perf ignores SIGUSR2 until then
    // (it is still synthesizing the existing processes), so signal it now
    // and then until a first rotation file shows up.
    bool rotated = false;
    for (auto& e : *entries)
      if (e.regular && e.name != data_name() && !seen_files.count(e.name)) {
        fs->remove(cfg.temp_dir + "/" + e.name);
        rotated = warming;
      }
    auto now = self->clock().now();
    if (rotated) {
      ready = true;
      warming = false;
      log->info("perf record is running");
      start_timeouts = 0;
      early_exits = 0;
      for (auto& p : prepare_waiters)
        p.deliver(std::string{});
      prepare_waiters.clear();
    } else if (!warming || now - warm_signalled > std::chrono::seconds(1)) {
      bool started
          = std::any_of(entries->begin(), entries->end(), [this](auto& e) {
              return e.name == data_name() && e.size > 0;
            });
      if (started) {
        warming = true;
        warm_signalled = now;
        self->request(reaper, caf::infinite, signal_atom_v, record_tag(),
                      int32_t{SIGUSR2})
            .then([](uint32_t) {}, [](caf::error&) {});
      }
    }
    if (!ready && now - launched > cfg.probe_timeout) {
      ++start_timeouts;
      restart_perf(not_ready());
      return;
    }
    if (!ready) {
      schedule_poll();
      return;
    }
  }
  // Rotation files appear in the order perf was signalled; their names
  // (perf.data.<timestamp>) sort the same way.
  for (auto& e : *entries) {
    if (!e.regular || e.name == data_name() || seen_files.count(e.name))
      continue;
    if (rotations.empty()) {
      // A late answer to a start-up signal: nobody's data.
      fs->remove(cfg.temp_dir + "/" + e.name);
      continue;
    }
    auto owner = rotations.front();
    rotations.pop_front();
    auto path = cfg.temp_dir + "/" + e.name;
    log->debug("rotation file {} belongs to window {}", e.name, owner);
    auto w = windows.find(owner);
    if (owner == 0 || w == windows.end()) {
      fs->remove(path);
      continue;
    }
    seen_files.insert(e.name);
    w->second.data_file = path;
    run_script(w->second);
  }
  if (rotations.empty() && restart_after_rotation) {
    restart_after_rotation = false;
    restart_perf("its RSS passed the limit of "
                 + std::to_string(cfg.rss_limit_kb / 1024) + " MB");
  }
  if ((recording && !ready) || !rotations.empty())
    schedule_poll();
}

void perf_state::run_script(perf_window& w) {
  run_request req;
  req.argv = {cfg.perf_path, "script", "-F",       "+pid",
              "--no-inline", "-i",     w.data_file};
  req.timeout = w.budget;
  req.kill_grace = cfg.kill_grace;
  req.out_mode = stdout_mode::file;
  req.out_file = "script-" + cfg.name + "-" + std::to_string(w.id) + ".txt";
  req.err_cap = 16 << 10;
  req.tag = w.tag;
  auto id = w.id;
  auto data_file = w.data_file;
  self->request(reaper, caf::infinite, run_atom_v, std::move(req))
      .then(
          [this, id, data_file](run_result& r) {
            forget(data_file);
            if (!r.success()) {
              fs->remove(r.out_path);
              fail_window(id, r.timed_out ? "timed out" : "failed",
                          "perf script: " + describe_exit(r));
              return;
            }
            // Parsing a large file blocks: it runs on the work queue.
            auto files = fs;
            auto path = r.out_path;
            auto weak = caf::actor_cast<caf::weak_actor_ptr>(self);
            auto name = cfg.name;
            work->post([files, path, id, weak, name] {
              profile_part part;
              part.snapshot_id = id;
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
                part.processes = collapser.per_process();
              if (auto bad = collapser.stats().malformed; bad > 0)
                part.errors.push_back(
                    {0, name, "warning",
                     std::to_string(bad) + " malformed perf script records"});
              if (auto strong = weak.lock())
                caf::anon_send(caf::actor_cast<perf_profiler_impl>(strong),
                               done_atom_v, std::move(part));
            });
          },
          [this, id, data_file](caf::error& err) {
            forget(data_file);
            fail_window(id, "failed", "perf script: " + describe(err));
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
  w->second.promise.deliver(std::move(part));
  windows.erase(w);
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
  w->second.promise.deliver(std::move(part));
  windows.erase(w);
}

std::string perf_state::not_ready() const {
  return "perf record did not get ready within "
         + std::to_string(
             std::chrono::duration_cast<std::chrono::seconds>(cfg.probe_timeout)
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
  seen_files.erase(data_file.substr(data_file.rfind('/') + 1));
}

void perf_state::restart_after_window_if(
    std::function<std::string(const child_info&)> why) {
  self->request(reaper, caf::infinite, list_atom_v, record_tag())
      .then(
          [this, why](const child_list& list) {
            for (auto& c : list.children) {
              if (restart_after_rotation)
                return;
              if (auto reason = why(c); !reason.empty()) {
                log->warn("{}; restarting it after this window", reason);
                restart_after_rotation = true;
              }
            }
          },
          [](caf::error&) {});
}

void perf_state::check_rss() {
  if (!cfg.rss_kb)
    return;
  restart_after_window_if([this](const child_info& c) {
    auto rss = cfg.rss_kb(c.pid);
    if (rss <= cfg.rss_limit_kb)
      return std::string{};
    return "perf record (pid " + std::to_string(c.pid) + ") uses "
           + std::to_string(rss / 1024) + " MB, above the limit of "
           + std::to_string(cfg.rss_limit_kb / 1024) + " MB";
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

// -- behaviour
// ---------------------------------------------------------------------

perf_profiler_impl::behavior_type
perf_profiler(perf_profiler_impl::stateful_pointer<perf_state> self,
              perf_config cfg, reaper_actor reaper,
              std::shared_ptr<rt::file_system> fs,
              std::shared_ptr<rt::work_queue> work,
              std::shared_ptr<rt::metrics> metrics) {
  auto& st = self->state;
  st.self = self;
  st.cfg = std::move(cfg);
  st.reaper = std::move(reaper);
  st.fs = std::move(fs);
  st.work = std::move(work);
  st.metrics = std::move(metrics);
  st.log = log::get(st.cfg.name);
  return {
      [self](prepare_atom) {
        auto promise = self->make_response_promise<std::string>();
        self->state.prepare(promise);
        return promise;
      },
      [self](start_atom, const window_info& info) {
        self->state.on_start(info);
      },
      [self](snapshot_atom, const snapshot_request& req) {
        auto promise = self->make_response_promise<profile_part>();
        self->state.on_snapshot(req, promise);
        return promise;
      },
      [self](pressure_atom, const pressure_event& ev) {
        self->state.on_pressure(ev);
      },
      [self](poll_atom) {
        self->state.on_poll();
      },
      [self](restart_atom) {
        self->state.launch_record();
      },
      [self](done_atom, profile_part& part) {
        self->state.on_collapsed(part);
      },
  };
}

} // namespace gpa

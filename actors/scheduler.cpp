#include "actors/scheduler.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "runtime/error.hpp"
#include "runtime/log.hpp"
#include "runtime/metric_names.hpp"

namespace gpa {

namespace {

/// The reaper tag of the processes a profiler runs for one snapshot, so that
/// cutting the snapshot cancels them.
std::string snapshot_tag(uint64_t snapshot_id, const std::string& profiler) {
  return "snap-" + std::to_string(snapshot_id) + "/" + profiler;
}

std::string join(const std::set<std::string>& xs) {
  std::string result;
  for (auto& x : xs)
    result += (result.empty() ? "" : ", ") + x;
  return result;
}

profile_part error_part(uint64_t id, const std::string& profiler,
                        std::string what, std::string reason) {
  profile_part part;
  part.snapshot_id = id;
  part.profiler = profiler;
  part.errors.push_back({0, profiler, std::move(what), std::move(reason)});
  return part;
}

} // namespace

// -- helpers ------------------------------------------------------------------

int64_t scheduler_state::wall_now() const {
  auto elapsed = self->clock().now() - t0;
  return wall0_ms
         + std::chrono::duration_cast<std::chrono::milliseconds>(elapsed)
               .count();
}

profiler_slot* scheduler_state::find(const std::string& name) {
  for (auto& p : profilers)
    if (p.name == name)
      return &p;
  return nullptr;
}

bool scheduler_state::resting(const profiler_slot& p, uint64_t id) const {
  return id < p.backoff_until;
}

void scheduler_state::count_failure(profiler_slot& p, uint64_t id, bool failed,
                                    const std::string& what) {
  if (!failed) {
    if (p.failures >= backoff_after())
      log->info("profiler {} works again after {} failures", p.name,
                p.failures);
    p.failures = 0;
    p.backoff_until = 0;
    return;
  }
  ++p.failures;
  p.last_failure = what;
  if (p.failures < backoff_after())
    return;
  auto exponent = std::min<uint32_t>(p.failures - backoff_after(), 30);
  auto rest = std::min<uint64_t>(uint64_t{1} << exponent, backoff_max());
  // The window after `id` is open already (its part is still to come): the
  // rest starts with the next window to open.
  p.backoff_until = std::max(id + 1, next_id) + rest;
  if (p.failures == backoff_after())
    log->warn("profiler {} failed {} snapshots in a row; backing off "
              "(resting {} window(s) now, at most {} later)",
              p.name, p.failures, rest, backoff_max());
  else
    log->debug("profiler {} failed again; resting {} window(s)", p.name, rest);
}

// -- state machine
// --------------------------------------------------------------

void scheduler_state::start() {
  // A session finished before its profilers were ready never starts.
  if (started || done)
    return;
  started = true;
  t0 = self->clock().now();
  wall0_ms = cfg.wall_clock_ms ? cfg.wall_clock_ms() : 0;
  open_window();
  self->delayed_send(self, cfg.opts.duration, tick_atom_v, uint64_t{1});
}

void scheduler_state::open_window() {
  snapshot_rec rec;
  rec.id = next_id++;
  rec.start_ms = wall_now();
  rec.opened = self->clock().now();
  window_info info;
  info.snapshot_id = rec.id;
  info.start_ms = rec.start_ms;
  info.duration = cfg.opts.duration;
  info.skip_runtime = skip_runtime;
  for (auto& p : profilers) {
    if (resting(p, rec.id)) {
      // The entry keeps the kind of the failures that caused the rest.
      rec.skipped.push_back({p.name, p.last_failure,
                             "backing off after " + std::to_string(p.failures)
                                 + " failures in a row"});
      continue;
    }
    if (p.runtime && skip_runtime) {
      rec.skipped.push_back({p.name, "skipped", "memory pressure"});
      continue;
    }
    rec.participants.push_back(p.name);
    self->send(p.handle, start_atom_v, info);
  }
  if (cfg.on_window)
    cfg.on_window(rec.id);
  recording = std::move(rec);
}

void scheduler_state::on_tick(uint64_t n) {
  if (done)
    return;
  auto schedule_next = [&] {
    auto due = t0 + cfg.opts.duration * static_cast<int64_t>(n + 1);
    auto delay = due - self->clock().now();
    if (delay < caf::timespan{0})
      delay = caf::timespan{0};
    self->delayed_send(self, delay, tick_atom_v, n + 1);
  };
  if (collecting) {
    if (cfg.opts.overlap == overlap_policy::skip) {
      ++stats.ticks_skipped;
      if (metrics)
        rt::metric::add(*metrics, rt::metric::ticks_skipped, 1);
      log->warn("snapshot {} is still collecting (waiting for {}); skipping "
                "this tick: window {} goes on until the next one",
                collecting->id, join(collecting->waiting),
                recording ? recording->id : 0);
      schedule_next();
      return;
    }
    cut("the next window ended");
  }
  close_window();
  if (closing) {
    check_finished();
    return;
  }
  if (cfg.opts.continuous) {
    open_window();
    schedule_next();
  }
}

void scheduler_state::close_window() {
  if (!recording)
    return;
  auto rec = std::move(*recording);
  recording.reset();
  rec.end_ms = wall_now();
  rec.closed = self->clock().now();
  for (auto& p : profilers) {
    bool asked
        = std::find(rec.participants.begin(), rec.participants.end(), p.name)
          != rec.participants.end();
    if (!asked)
      continue;
    snapshot_request req;
    req.snapshot_id = rec.id;
    req.start_ms = rec.start_ms;
    req.end_ms = rec.end_ms;
    req.tag = snapshot_tag(rec.id, p.name);
    req.budget = cfg.opts.profiler_grace;
    p.outstanding.insert(rec.id);
    rec.waiting.insert(p.name);
    auto id = rec.id;
    auto name = p.name;
    self->request(p.handle, caf::infinite, snapshot_atom_v, std::move(req))
        .then(
            [this, name, id](profile_part& part) {
              on_part(name, id, std::move(part));
            },
            [this, name, id](caf::error& err) {
              on_part(name, id, error_part(id, name, "failed", describe(err)));
            });
  }
  // Every profiler has an entry in every snapshot: the ones that sat this
  // window out say why.
  for (auto& skip : rec.skipped) {
    if (metrics)
      rt::metric::count_snapshot(*metrics, skip.profiler,
                                 rt::metric::snapshot_result::skipped);
    rec.parts.push_back(
        error_part(rec.id, skip.profiler, skip.what, skip.reason));
  }
  collecting = std::move(rec);
  if (collecting->waiting.empty()) {
    finish_collecting();
    return;
  }
  self->delayed_send(self, cfg.opts.profiler_grace, deadline_atom_v,
                     collecting->id);
}

void scheduler_state::on_part(const std::string& profiler, uint64_t id,
                              profile_part part) {
  auto slot = find(profiler);
  if (slot)
    slot->outstanding.erase(id);
  if (!collecting || collecting->id != id
      || collecting->waiting.count(profiler) == 0) {
    ++stats.late_parts;
    if (metrics)
      rt::metric::add(*metrics, rt::metric::late_parts, 1,
                      {{"profiler", profiler}});
    log->info("dropping the part of {} for snapshot {}: it came after the "
              "snapshot was done",
              profiler, id);
    return;
  }
  // The profiler failed when it gave nothing but an error of its own (pid
  // 0); errors of single processes (a runtime tool that cannot attach to one
  // of its targets) are data, not a failure to back off from.
  auto own = std::find_if(part.errors.begin(), part.errors.end(),
                          [](const profiler_error& e) {
                            return e.pid == 0;
                          });
  bool failed = part.processes.empty() && own != part.errors.end();
  if (slot)
    count_failure(*slot, id, failed, failed ? own->what : std::string{});
  part.snapshot_id = id;
  part.profiler = profiler;
  if (metrics)
    rt::metric::count_snapshot(*metrics, profiler,
                               rt::metric::snapshot_result::done);
  collecting->waiting.erase(profiler);
  collecting->parts.push_back(std::move(part));
  if (collecting->waiting.empty())
    finish_collecting();
}

void scheduler_state::on_deadline(uint64_t id) {
  if (collecting && collecting->id == id)
    cut("its deadline passed");
}

void scheduler_state::cut(const char* why) {
  auto& rec = *collecting;
  auto waited = std::chrono::duration_cast<std::chrono::seconds>(
                    self->clock().now() - rec.closed)
                    .count();
  for (auto& name : rec.waiting) {
    ++stats.timeouts;
    if (metrics)
      rt::metric::count_snapshot(*metrics, name,
                                 rt::metric::snapshot_result::timed_out);
    log->warn("snapshot {}: profiler {} gave no part {} s after the window "
              "({}); cutting it",
              rec.id, name, waited, why);
    rec.parts.push_back(error_part(rec.id, name, "timed out",
                                   "no result " + std::to_string(waited)
                                       + " s after the window (" + why + ")"));
    if (reaper) {
      auto tag = snapshot_tag(rec.id, name);
      self->request(reaper, caf::infinite, cancel_atom_v, tag)
          .then([](uint32_t) {},
                [this, tag](caf::error& err) {
                  log->warn("cannot stop the children of {}: {}", tag,
                            describe(err));
                });
    }
    if (auto slot = find(name))
      count_failure(*slot, rec.id, true, "timed out");
  }
  rec.waiting.clear();
  finish_collecting();
}

void scheduler_state::finish_collecting() {
  auto rec = std::move(*collecting);
  collecting.reset();
  // One entry per profiler: a part, a timeout or a skip.
  std::set<std::string> entries;
  for (auto& part : rec.parts)
    entries.insert(part.profiler);
  if (entries.size() != profilers.size()
      || rec.parts.size() != profilers.size()) {
    ++stats.incomplete;
    log->error("snapshot {} has {} entries for {} profilers", rec.id,
               rec.parts.size(), profilers.size());
  }
  merge_job job;
  job.snapshot_id = rec.id;
  job.start_ms = rec.start_ms;
  job.end_ms = rec.end_ms;
  job.parts = std::move(rec.parts);
  auto took = self->clock().now() - rec.opened;
  ++merging;
  auto id = rec.id;
  self->request(merger, caf::infinite, merge_atom_v, std::move(job))
      .then(
          [this, took](merge_summary&) {
            ++stats.snapshots_done;
            if (metrics)
              rt::metric::set_last_snapshot_duration(*metrics, took);
            merged();
          },
          [this, id](caf::error& err) {
            log->error("merging snapshot {} failed: {}", id, describe(err));
            merged();
          });
}

void scheduler_state::merged() {
  --merging;
  if (closing) {
    check_finished();
    return;
  }
  // One-shot: the agent is done once its only snapshot is merged.
  if (!cfg.opts.continuous && !done) {
    done = true;
    if (cfg.on_done)
      cfg.on_done();
  }
}

void scheduler_state::on_pressure(const pressure_event& ev) {
  bool skip = ev.level >= pressure_level::critical;
  if (skip != skip_runtime)
    log->warn("memory pressure {}: runtime profilers {} from the next window",
              to_string(ev.level), skip ? "sit out" : "are back");
  skip_runtime = skip;
  if (ev.action_due(pressure_level::emergency) && collecting
      && !collecting->waiting.empty()) {
    log->warn("memory emergency: stopping the profilers still running for "
              "snapshot {} ({})",
              collecting->id, join(collecting->waiting));
    cut("memory emergency");
  }
}

void scheduler_state::on_finish(bool now,
                                caf::typed_response_promise<bool> promise) {
  finish_promises.push_back(std::move(promise));
  if (!closing)
    log->info("ending the session {}", now ? "now: the window in progress "
                                             "closes early and is merged"
                                           : "at the end of the window in "
                                             "progress");
  closing = true;
  if (now && recording) {
    if (recording->start_ms >= wall_now()) {
      // The window opened this very moment: it has nothing to give.
      recording.reset();
    } else {
      if (collecting)
        cut("the session was stopped");
      close_window();
    }
  }
  check_finished();
}

void scheduler_state::check_finished() {
  if (!closing || recording || collecting || merging > 0)
    return;
  done = true;
  for (auto& p : finish_promises)
    p.deliver(true);
  finish_promises.clear();
}

scheduler_stats scheduler_state::current_stats() const {
  auto result = stats;
  result.recording = recording ? 1 : 0;
  result.collecting = collecting ? 1 : 0;
  result.merging = merging;
  return result;
}

// -- behaviour
// ------------------------------------------------------------------

scheduler_impl::behavior_type
scheduler(scheduler_impl::stateful_pointer<scheduler_state> self,
          scheduler_config cfg, std::vector<profiler_slot> profilers,
          merger_actor merger, reaper_actor reaper,
          std::shared_ptr<rt::metrics> metrics) {
  auto& st = self->state;
  st.self = self;
  st.cfg = std::move(cfg);
  st.profilers = std::move(profilers);
  st.merger = std::move(merger);
  st.reaper = std::move(reaper);
  st.metrics = std::move(metrics);
  st.log = log::get("scheduler");
  return {
      [self](start_atom) {
        self->state.start();
      },
      [self](stats_atom) {
        return self->state.current_stats();
      },
      [self](pressure_atom, const pressure_event& ev) {
        self->state.on_pressure(ev);
      },
      [self](tick_atom, uint64_t n) {
        self->state.on_tick(n);
      },
      [self](deadline_atom, uint64_t id) {
        self->state.on_deadline(id);
      },
      [self](finish_atom, bool now) {
        auto promise = self->make_response_promise<bool>();
        self->state.on_finish(now, promise);
        return promise;
      },
  };
}

} // namespace gpa

#include "actors/controller.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "runtime/error.hpp"
#include "runtime/log.hpp"
#include "runtime/proc.hpp"

namespace gpa {

namespace {

const char* kind_name(controller_state::kind k) {
  switch (k) {
    case controller_state::kind::base: return "the agent's own";
    case controller_state::kind::adhoc: return "ad-hoc";
    case controller_state::kind::continuous: return "continuous";
  }
  return "?";
}

const char* reason_name(close_reason r) {
  switch (r) {
    case close_reason::none: return "none";
    case close_reason::reload: return "the configuration was reloaded";
    case close_reason::stop: return "a stop command";
    case close_reason::narrow: return "a process-level stop command";
    case close_reason::pause: return "an ad-hoc command pauses it";
    case close_reason::replace: return "a newer continuous command";
  }
  return "?";
}

std::string describe_command(const control_command& c) {
  std::string s = c.type + " command " + c.id;
  if (c.type == "start") {
    s += c.continuous ? " (continuous" : " (ad-hoc";
    if (c.duration_s > 0)
      s += ", " + std::to_string(c.duration_s) + " s windows";
    if (c.frequency > 0)
      s += ", " + std::to_string(c.frequency) + " Hz";
    s += c.pids.empty() ? ", whole host" : ", pids " + rt::join_pids(c.pids);
    s += ")";
  } else if (c.type == "stop") {
    s += " (" + c.stop_level + " level";
    if (!c.pids.empty())
      s += ", pids " + rt::join_pids(c.pids);
    s += ")";
  }
  return s;
}

} // namespace

int64_t controller_state::now_s() const {
  if (cfg.now_s)
    return cfg.now_s();
  return std::chrono::duration_cast<std::chrono::seconds>(
             self->clock().now().time_since_epoch())
      .count();
}

void controller_state::remember_received(const std::string& id) {
  if (received.insert(id).second) {
    received_order.push_back(id);
    if (received_order.size() > command_history) {
      received.erase(received_order.front());
      received_order.pop_front();
    }
  }
}

void controller_state::executed(const std::string& id) {
  ++stats.executed;
  if (cfg.remember_executed)
    cfg.remember_executed(id);
}

void controller_state::report(const control_command& cmd,
                              const std::string& status, int64_t secs,
                              const std::string& error) {
  log->info("{}: {}{}{}", describe_command(cmd), status,
            error.empty() ? "" : ": ", error);
  if (cfg.report)
    cfg.report({cmd.id, status, secs, error});
}

void controller_state::on_command(control_command cmd) {
  ++stats.commands;
  if (cmd.id.empty()) {
    ++stats.refused;
    log->warn("a command without an id: ignored");
    return;
  }
  if (received.count(cmd.id) > 0) {
    // Studio repeats the current command in each heartbeat answer.
    ++stats.repeats;
    log->debug("command {} was received before: skipped", cmd.id);
    return;
  }
  remember_received(cmd.id);
  if (cfg.executed_before && cfg.executed_before(cmd.id)) {
    ++stats.repeats;
    log->info("command {} was executed before (by an earlier run of the "
              "agent): skipped",
              cmd.id);
    return;
  }
  if (cmd.type != "start" && cmd.type != "stop") {
    ++stats.refused;
    executed(cmd.id);
    report(cmd, "failed", 0, "unknown command type '" + cmd.type + "'");
    return;
  }
  log->info("received {}", describe_command(cmd));
  if (cmd.type == "stop") {
    if (!stop_q.empty())
      log->warn("{} stop command(s) wait already; queueing {} anyway",
                stop_q.size(), cmd.id);
    stop_q.push_back({std::move(cmd)});
  } else if (cmd.continuous) {
    // A newer continuous command replaces the one waiting (gProfiler keeps
    // one); if the replaced one runs, step() closes it.
    if (!continuous_q.empty())
      log->info("continuous command {} replaces {}", cmd.id,
                continuous_q.front().cmd.id);
    continuous_q.clear();
    continuous_q.push_back({std::move(cmd)});
  } else {
    if (adhoc_q.size() >= adhoc_queue_warn)
      log->warn("{} ad-hoc commands wait already; queueing {} anyway",
                adhoc_q.size(), cmd.id);
    adhoc_q.push_back({std::move(cmd)});
  }
  step();
}

void controller_state::on_reload() {
  ++stats.reloads;
  if (!running) {
    log->info("configuration reloaded: the next session uses it");
    return;
  }
  if (running->what == kind::adhoc) {
    log->info("configuration reloaded: the next session uses it (the "
              "running ad-hoc session ends with the old one)");
    return;
  }
  reload_pending = true;
  step();
}

controller_state::queued* controller_state::head_of_running() {
  if (!running || !running->command)
    return nullptr;
  auto& q = running->what == kind::adhoc ? adhoc_q : continuous_q;
  if (!q.empty() && q.front().cmd.id == running->command->id)
    return &q.front();
  return nullptr;
}

void controller_state::start(kind what, std::optional<control_command> cmd) {
  run r;
  r.number = next_number++;
  r.what = what;
  r.command = cmd;
  r.since = self->clock().now();
  r.since_s = now_s();
  session_spec spec;
  spec.number = r.number;
  spec.command = std::move(cmd);
  auto handle = caf::actor_cast<controller_actor>(self);
  spec.on_done = [handle, n = r.number] {
    caf::anon_send(handle, done_atom_v, n);
  };
  // What runs now uses the options as they are now.
  reload_pending = false;
  auto started = cfg.start_session(spec);
  if (!started.scheduler) {
    log->error("cannot start the {} session{}: {}", kind_name(what),
               r.command ? " of command " + r.command->id : std::string{},
               started.error);
    if (r.command) {
      auto& q = what == kind::adhoc ? adhoc_q : continuous_q;
      if (!q.empty() && q.front().cmd.id == r.command->id) {
        bool was_started = q.front().started;
        q.pop_front();
        if (!was_started) {
          executed(r.command->id);
          report(*r.command, "failed", 0, started.error);
        }
      }
    } else {
      base_finished = true;
      if (cfg.on_finished)
        cfg.on_finished();
    }
    return;
  }
  ++stats.sessions_started;
  r.scheduler = started.scheduler;
  log->info("session {} started: {}{}", r.number, kind_name(what),
            r.command ? " " + describe_command(*r.command)
                      : std::string{" options"});
  if (r.command) {
    auto& q = what == kind::adhoc ? adhoc_q : continuous_q;
    if (!q.empty() && q.front().cmd.id == r.command->id) {
      auto& head = q.front();
      head.paused = false;
      if (!head.started) {
        head.started = true;
        executed(r.command->id);
        // A continuous command is done, for Studio, once it runs (it runs
        // until stopped, as gProfiler reports it); an ad-hoc one when its
        // window is merged.
        if (what == kind::continuous)
          report(*r.command, "completed", 0, "");
      }
    }
  }
  running = std::move(r);
}

void controller_state::close(close_reason why, bool now) {
  auto& r = *running;
  r.closing = why;
  log->info("closing session {} ({}): {}", r.number, reason_name(why),
            now ? "its window in progress ends now"
                : "at the end of its window in progress");
  auto number = r.number;
  self->request(r.scheduler, caf::infinite, finish_atom_v, now)
      .then(
          [this, number](bool) {
            ended(number);
          },
          [this, number](caf::error& err) {
            log->warn("session {} did not end cleanly: {}", number,
                      describe(err));
            ended(number);
          });
}

void controller_state::on_done(uint64_t number) {
  ended(number);
}

void controller_state::ended(uint64_t number) {
  if (!running || running->number != number)
    return; // the other of "done" and the finish reply came first
  auto r = std::move(*running);
  running.reset();
  ++stats.sessions_ended;
  if (cfg.end_session)
    cfg.end_session(number);
  auto secs = now_s() - r.since_s;
  log->info("session {} ended after {} s", number, secs);
  switch (r.closing) {
    case close_reason::none:
      // It ended by itself: its one window is merged.
      if (r.what == kind::base) {
        base_finished = true;
        if (cfg.on_finished)
          cfg.on_finished();
      } else if (r.what == kind::adhoc) {
        if (!adhoc_q.empty() && adhoc_q.front().cmd.id == r.command->id)
          adhoc_q.pop_front();
        report(*r.command, "completed", secs, "");
      }
      break;
    case close_reason::pause:
      for (auto& q : continuous_q)
        if (r.command && q.cmd.id == r.command->id)
          q.paused = true;
      if (r.command)
        log->info("continuous command {} paused for ad-hoc command {}",
                  r.command->id,
                  adhoc_q.empty() ? "?" : adhoc_q.front().cmd.id);
      break;
    case close_reason::stop:
      if (r.what == kind::adhoc && r.command) {
        if (!adhoc_q.empty() && adhoc_q.front().cmd.id == r.command->id)
          adhoc_q.pop_front();
        report(*r.command, "completed", secs,
               "stopped after " + std::to_string(secs) + " s");
      }
      break;
    case close_reason::reload:
    case close_reason::narrow:
    case close_reason::replace: break;
  }
  step();
}

bool controller_state::serve_stop() {
  auto& s = stop_q.front();
  bool process_level = s.cmd.stop_level == "process" && !s.cmd.pids.empty();
  auto finish = [&](const std::string& status, const std::string& note) {
    auto cmd = std::move(s.cmd);
    stop_q.pop_front();
    executed(cmd.id);
    report(cmd, status, 0, note);
  };
  // It closed the session of all of its processes already.
  if (process_level && s.started) {
    finish("completed", "");
    return true;
  }
  if (!process_level) {
    if (running) {
      close(close_reason::stop, true);
      return false;
    }
    // Nothing runs (any more): what waits is dropped, as gProfiler clears
    // its queues.
    for (auto* q : {&adhoc_q, &continuous_q})
      for (auto& w : *q)
        if (!w.started && w.cmd.type == "start") {
          executed(w.cmd.id);
          report(w.cmd, "failed", 0,
                 "dropped by stop command " + s.cmd.id + " before it ran");
        }
    adhoc_q.clear();
    continuous_q.clear();
    finish("completed", "");
    return true;
  }
  // A process-level stop: the running session goes on without those
  // processes; without any left, it stops.
  if (!running || !running->command) {
    finish("completed", "no session runs: nothing to stop");
    return true;
  }
  auto& pids = running->command->pids;
  if (pids.empty()) {
    finish("failed", "the running session profiles the whole host, not a "
                     "list of processes: nothing stopped (send a host-level "
                     "stop to stop it)");
    return true;
  }
  std::vector<int64_t> left;
  for (auto pid : pids)
    if (std::find(s.cmd.pids.begin(), s.cmd.pids.end(), pid)
        == s.cmd.pids.end())
      left.push_back(pid);
  if (left.size() == pids.size()) {
    finish("failed", "none of " + rt::join_pids(s.cmd.pids)
                         + " is profiled: nothing stopped");
    return true;
  }
  if (left.empty()) {
    // Every process of the session: stop it, and drop its command.
    auto* head = head_of_running();
    if (running->what == kind::continuous && head)
      continuous_q.pop_front();
    s.started = true;
    close(close_reason::stop, true);
    return false;
  }
  if (auto* head = head_of_running())
    head->cmd.pids = left;
  running->command->pids = left;
  close(close_reason::narrow, true);
  finish("completed", "profiling goes on for " + rt::join_pids(left));
  return true;
}

void controller_state::step() {
  while (true) {
    if (running && running->closing != close_reason::none)
      return; // what comes next waits for its end
    if (!stop_q.empty()) {
      if (!serve_stop())
        return;
      continue;
    }
    if (running) {
      auto& r = *running;
      if (r.what == kind::adhoc)
        return; // ad-hoc sessions run to their end
      if (!adhoc_q.empty()) {
        close(close_reason::pause, true);
        return;
      }
      if (r.what == kind::continuous
          && (continuous_q.empty()
              || continuous_q.front().cmd.id != r.command->id)) {
        close(close_reason::replace, true);
        return;
      }
      if (reload_pending)
        close(close_reason::reload, false);
      return;
    }
    if (!adhoc_q.empty()) {
      start(kind::adhoc, adhoc_q.front().cmd);
    } else if (!continuous_q.empty()) {
      auto& head = continuous_q.front();
      if (head.paused)
        log->info("resuming continuous command {}", head.cmd.id);
      start(kind::continuous, head.cmd);
    } else if (cfg.base_run && !base_finished) {
      start(kind::base, std::nullopt);
    } else {
      return;
    }
    if (running)
      return;
    // It could not start: try what comes next.
  }
}

controller_stats controller_state::current_stats() const {
  auto s = stats;
  s.running = running ? running->number : 0;
  s.running_command
      = running && running->command ? running->command->id : std::string{};
  s.closing = running && running->closing != close_reason::none;
  s.queued_stop = static_cast<uint32_t>(stop_q.size());
  s.queued_adhoc = static_cast<uint32_t>(adhoc_q.size());
  s.queued_continuous = static_cast<uint32_t>(continuous_q.size());
  s.continuous_paused = !continuous_q.empty() && continuous_q.front().paused;
  return s;
}

controller_actor::behavior_type
controller(controller_actor::stateful_pointer<controller_state> self,
           controller_config cfg) {
  auto& st = self->state;
  st.self = self;
  st.cfg = std::move(cfg);
  st.log = log::get("controller");
  if (st.cfg.base_run && st.cfg.first.scheduler) {
    controller_state::run r;
    r.number = st.next_number++;
    r.what = controller_state::kind::base;
    r.scheduler = st.cfg.first.scheduler;
    r.since = self->clock().now();
    r.since_s = st.now_s();
    st.running = std::move(r);
    ++st.stats.sessions_started;
  } else if (st.cfg.base_run && !st.cfg.first.error.empty()) {
    st.log->error("cannot start profiling: {}", st.cfg.first.error);
    st.base_finished = true;
    if (st.cfg.on_finished)
      st.cfg.on_finished();
  }
  st.step();
  return {
      [self](command_atom, control_command& cmd) {
        self->state.on_command(std::move(cmd));
      },
      [self](reload_atom) {
        self->state.on_reload();
      },
      [self](done_atom, uint64_t number) {
        self->state.on_done(number);
      },
      [self](stats_atom) {
        return self->state.current_stats();
      },
  };
}

} // namespace gpa

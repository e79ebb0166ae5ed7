#include "actors/process_reaper.hpp"

#include <algorithm>
#include <csignal>

#include <sys/wait.h>

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include "runtime/error.hpp"
#include "runtime/log.hpp"

namespace gpa {

namespace {

std::string command_name(const run_request& req) {
  return req.argv.empty() ? std::string{"<empty>"} : req.argv[0];
}

/// A file name for stdout_mode::file must stay inside the temp directory.
bool safe_file_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".."
         && name.find('/') == std::string::npos
         && name.find('\0') == std::string::npos;
}

} // namespace

// -- requests
// ------------------------------------------------------------------

caf::result<run_result> reaper_state::on_run(run_request& req) {
  auto requester = caf::actor_cast<caf::actor_addr>(self->current_sender());
  if (req.argv.empty() || req.argv[0].empty())
    return make_gpa_error(ec::invalid_request, "run request without a command");
  if (req.out_mode == stdout_mode::file
      && (!safe_file_name(req.out_file) || cfg.temp_dir.empty()))
    return make_gpa_error(ec::invalid_request,
                          "output file name '" + req.out_file
                              + "' must be a plain name inside the temp dir");
  bool has_slot = live.size() < static_cast<size_t>(cfg.opts.max_children);
  if (!has_slot && queue.size() >= static_cast<size_t>(cfg.opts.max_queued)) {
    ++totals.rejected_total;
    log->warn("refusing {}: {} children running and {} requests waiting",
              command_name(req), live.size(), queue.size());
    return make_gpa_error(ec::queue_full, std::to_string(live.size())
                                              + " children running and "
                                              + std::to_string(queue.size())
                                              + " requests waiting; cannot run "
                                              + command_name(req));
  }
  reaper_job job;
  job.id = next_id++;
  job.req = std::move(req);
  job.promise = self->make_response_promise<run_result>();
  job.requester = requester;
  auto promise = job.promise;
  track(requester);
  if (has_slot)
    launch(std::move(job));
  else
    queue.push_back(std::move(job));
  return promise;
}

void reaper_state::launch(reaper_job job) {
  rt::launch_spec spec;
  spec.argv = job.req.argv;
  spec.env = job.req.env;
  spec.replace_env = job.req.replace_env;
  spec.cwd = job.req.cwd;
  spec.out_mode = job.req.out_mode;
  spec.out_cap = job.req.out_cap;
  spec.err_cap = job.req.err_cap;
  if (spec.out_mode == stdout_mode::file)
    spec.out_path = cfg.temp_dir + "/" + job.req.out_file;
  auto pid = launcher->start(job.id, spec);
  if (!pid) {
    log->warn("{}", describe(pid.error()));
    job.promise.deliver(pid.error());
    untrack(job.requester);
    return;
  }
  ++totals.started_total;
  auto id = job.id;
  auto timeout = job.req.timeout;
  log->debug("started {} (pid {}, tag '{}')", command_name(job.req), *pid,
             job.req.tag);
  reaper_child child;
  child.job = std::move(job);
  child.pid = *pid;
  child.started = self->clock().now();
  live.emplace(id, std::move(child));
  if (timeout.count() > 0)
    self->delayed_send(self, timeout, deadline_atom_v, id);
}

void reaper_state::start_queued() {
  while (!queue.empty()
         && live.size() < static_cast<size_t>(cfg.opts.max_children)) {
    auto job = std::move(queue.front());
    queue.pop_front();
    launch(std::move(job));
  }
}

// -- children
// ------------------------------------------------------------------

void reaper_state::on_exit(child_exit& report) {
  auto i = live.find(report.id);
  if (i == live.end()) {
    log->error("report for unknown child {}", report.id);
    return;
  }
  auto& child = i->second;
  auto& req = child.job.req;
  run_result result;
  result.pid = child.pid;
  auto status = report.wait_status;
  result.exited = WIFEXITED(status);
  result.exit_code = result.exited ? WEXITSTATUS(status) : 0;
  result.term_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  result.timed_out = child.timed_out;
  result.cancelled = child.cancelled;
  result.killed = child.killed;
  result.out = std::move(report.out);
  result.out_truncated = report.out_truncated;
  result.out_bytes = report.out_bytes;
  if (req.out_mode == stdout_mode::file)
    result.out_path = cfg.temp_dir + "/" + req.out_file;
  result.err = std::move(report.err);
  result.err_truncated = report.err_truncated;
  result.run_time = self->clock().now() - child.started;
  ++totals.reaped_total;
  if (result.timed_out)
    log->warn("{} (pid {}) timed out after {} ms{}", command_name(req),
              child.pid,
              std::chrono::duration_cast<std::chrono::milliseconds>(req.timeout)
                  .count(),
              result.killed ? " and needed SIGKILL" : "");
  else
    log->debug("reaped {} (pid {}): {} {}", command_name(req), child.pid,
               result.exited ? "exit" : "signal",
               result.exited ? result.exit_code : result.term_signal);
  child.job.promise.deliver(std::move(result));
  auto requester = child.job.requester;
  live.erase(i);
  untrack(requester);
  start_queued();
}

void reaper_state::stop(uint64_t id, reaper_child& child) {
  if (child.state != reaper_child::phase::running)
    return;
  auto grace = child.job.req.kill_grace;
  if (grace.count() <= 0) {
    child.state = reaper_child::phase::killing;
    child.killed = true;
    ++totals.killed_total;
    launcher->signal(id, SIGKILL);
    return;
  }
  child.state = reaper_child::phase::terminating;
  launcher->signal(id, SIGTERM);
  self->delayed_send(self, grace, kill_atom_v, id);
}

void reaper_state::on_deadline(uint64_t id) {
  auto i = live.find(id);
  if (i == live.end() || i->second.state != reaper_child::phase::running)
    return;
  i->second.timed_out = true;
  ++totals.timed_out_total;
  stop(id, i->second);
}

void reaper_state::on_kill(uint64_t id) {
  auto i = live.find(id);
  if (i == live.end() || i->second.state != reaper_child::phase::terminating)
    return;
  auto& child = i->second;
  child.state = reaper_child::phase::killing;
  child.killed = true;
  ++totals.killed_total;
  log->warn("{} (pid {}) ignored SIGTERM for {} ms; sending SIGKILL",
            command_name(child.job.req), child.pid,
            std::chrono::duration_cast<std::chrono::milliseconds>(
                child.job.req.kill_grace)
                .count());
  launcher->signal(id, SIGKILL);
}

uint32_t reaper_state::on_signal(const std::string& tag, int32_t sig) {
  uint32_t n = 0;
  for (auto& [id, child] : live)
    if (child.job.req.tag == tag && launcher->signal(id, sig))
      ++n;
  return n;
}

uint32_t reaper_state::on_cancel(const std::string& tag) {
  uint32_t n = 0;
  for (auto i = queue.begin(); i != queue.end();) {
    if (i->req.tag == tag) {
      i->promise.deliver(
          make_gpa_error(ec::cancelled, command_name(i->req)
                                            + " cancelled before it started"));
      untrack(i->requester);
      i = queue.erase(i);
      ++n;
    } else {
      ++i;
    }
  }
  for (auto& [id, child] : live) {
    if (child.job.req.tag == tag
        && child.state == reaper_child::phase::running) {
      child.cancelled = true;
      stop(id, child);
      ++n;
    }
  }
  return n;
}

void reaper_state::on_requester_down(const caf::actor_addr& who,
                                     const caf::error& reason) {
  bool planned = !reason || reason == caf::exit_reason::normal
                 || reason == caf::exit_reason::user_shutdown;
  monitored.erase(who);
  for (auto i = queue.begin(); i != queue.end();) {
    if (i->requester == who)
      i = queue.erase(i);
    else
      ++i;
  }
  for (auto& [id, child] : live) {
    if (child.job.requester == who) {
      if (planned)
        log->info("stopping {} (pid {}): its requester stopped",
                  command_name(child.job.req), child.pid);
      else
        log->warn("the requester of {} (pid {}) died ({}); stopping it",
                  command_name(child.job.req), child.pid, describe(reason));
      child.cancelled = true;
      stop(id, child);
    }
  }
}

reaper_stats reaper_state::stats() const {
  auto result = totals;
  auto counts = launcher->counts();
  result.live = static_cast<uint32_t>(live.size());
  result.queued = static_cast<uint32_t>(queue.size());
  result.fds = counts.fds;
  result.monitored = static_cast<uint32_t>(monitored.size());
  return result;
}

child_list reaper_state::children(const std::string& tag) const {
  child_list result;
  auto now = self->clock().now();
  for (auto& [id, child] : live) {
    if (!tag.empty() && child.job.req.tag != tag)
      continue;
    child_info info;
    info.pid = child.pid;
    info.tag = child.job.req.tag;
    info.program = command_name(child.job.req);
    info.running_for = now - child.started;
    result.children.push_back(std::move(info));
  }
  return result;
}

void reaper_state::track(const caf::actor_addr& who) {
  if (!who)
    return;
  if (monitored[who]++ == 0)
    self->monitor(who);
}

void reaper_state::untrack(const caf::actor_addr& who) {
  auto i = monitored.find(who);
  if (i == monitored.end())
    return;
  if (--i->second == 0) {
    self->demonitor(who);
    monitored.erase(i);
  }
}

// -- behaviour
// -------------------------------------------------------------------

reaper_impl::behavior_type
process_reaper(reaper_impl::stateful_pointer<reaper_state> self,
               std::shared_ptr<rt::process_launcher> launcher,
               reaper_config cfg) {
  auto& st = self->state;
  st.self = self;
  st.launcher = launcher;
  st.cfg = std::move(cfg);
  st.log = log::get("reaper");
  // Reports come from the launcher's thread; a weak handle lets the reaper
  // terminate while the launcher lives on.
  caf::weak_actor_ptr weak = caf::actor_cast<caf::weak_actor_ptr>(self);
  launcher->set_exit_handler([weak](child_exit report) {
    if (auto strong = weak.lock())
      caf::anon_send(caf::actor_cast<reaper_impl>(strong), std::move(report));
  });
  self->set_down_handler([self](const caf::down_msg& msg) {
    self->state.on_requester_down(msg.source, msg.reason);
  });
  self->attach_functor([launcher] {
    // Shutdown: every child goes, and is reaped, before the reaper is gone.
    launcher->kill_all();
    launcher->set_exit_handler(nullptr);
  });
  return {
      [self](run_atom, run_request& req) -> caf::result<run_result> {
        return self->state.on_run(req);
      },
      [self](signal_atom, const std::string& tag, int32_t sig) {
        return self->state.on_signal(tag, sig);
      },
      [self](cancel_atom, const std::string& tag) {
        return self->state.on_cancel(tag);
      },
      [self](stats_atom) {
        return self->state.stats();
      },
      [self](list_atom, const std::string& tag) {
        return self->state.children(tag);
      },
      [self](child_exit& report) {
        self->state.on_exit(report);
      },
      [self](deadline_atom, uint64_t id) {
        self->state.on_deadline(id);
      },
      [self](kill_atom, uint64_t id) {
        self->state.on_kill(id);
      },
  };
}

} // namespace gpa

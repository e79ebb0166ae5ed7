#include "actors/runtime_profiler.hpp"

#include <algorithm>

#include <unistd.h>

#include <spdlog/spdlog.h>

#include "runtime/error.hpp"
#include "runtime/log.hpp"

namespace gpa {

// -- runtime_state
// ---------------------------------------------------------------

void runtime_state::init(runtime_config cfg, std::shared_ptr<runtime_tool> tool,
                         std::shared_ptr<runtime_effects> fx,
                         std::shared_ptr<spdlog::logger> log) {
  cfg_ = cfg;
  cfg_.concurrency = std::max<int64_t>(cfg_.concurrency, 1);
  tool_ = std::move(tool);
  fx_ = std::move(fx);
  log_ = std::move(log);
  name_ = tool_->name();
}

std::string runtime_state::tag(uint64_t id) const {
  // The scheduler's tag for this profiler's part of the snapshot, so that
  // its own deadline handling stops these children too.
  return "snap-" + std::to_string(id) + "/" + name_;
}

void runtime_state::prepare(std::function<void(std::string)> done) {
  if (!prepared_) {
    prepared_ = true;
    disabled_why_ = tool_->check();
    if (!disabled_why_.empty())
      log_->warn("{}: {}; its processes keep their perf stacks", name_,
                 disabled_why_);
    else if (auto what = tool_->describe(); !what.empty())
      log_->info("{}", what);
  }
  // A missing tool is not an error of the snapshot: the runtime is off and
  // every part is empty.
  done({});
}

void runtime_state::on_start(const window_info& info) {
  auto& w = windows_[info.snapshot_id];
  w.duration = info.duration;
  w.part.snapshot_id = info.snapshot_id;
  w.part.profiler = name_;
  if (!prepared_ || disabled() || info.skip_runtime) {
    w.worked = true;
    return;
  }
  auto delay = std::chrono::duration_cast<caf::timespan>(
      info.duration * std::clamp(tool_->start_at(), 0.0, 1.0));
  if (delay.count() <= 0)
    on_work(info.snapshot_id);
  else
    fx_->work_in(delay, info.snapshot_id);
}

void runtime_state::on_work(uint64_t id) {
  auto i = windows_.find(id);
  if (i == windows_.end() || i->second.worked)
    return;
  auto& w = i->second;
  w.worked = true;
  for (auto& t : fx_->targets()) {
    w.jobs.push_back({t});
    queue_.emplace_back(id, w.jobs.size() - 1);
  }
  log_->debug("window {}: {} target(s)", id, w.jobs.size());
  pump();
}

void runtime_state::pump() {
  while (running_ < static_cast<size_t>(cfg_.concurrency) && !queue_.empty()) {
    auto [id, index] = queue_.front();
    queue_.pop_front();
    auto i = windows_.find(id);
    if (i == windows_.end())
      continue;
    auto& j = i->second.jobs[index];
    if (auto why = tool_->refuse(j.target); !why.empty()) {
      log_->debug("pid {} ({}): skipped: {}", j.target.pid, j.target.comm, why);
      j.done = true;
      i->second.part.errors.push_back(
          {j.target.pid, j.target.comm, "skipped", std::move(why)});
      complete_if_done(id);
      continue;
    }
    j.started = true;
    launch(id, index, tool_->command(j.target, i->second.duration));
  }
}

void runtime_state::launch(uint64_t id, size_t index, run_request req) {
  req.tag = tag(id);
  ++running_;
  fx_->run(std::move(req), [this, id, index](caf::expected<run_result> result) {
    --running_;
    finished(id, index, std::move(result));
    pump();
  });
}

void runtime_state::finished(uint64_t id, size_t index,
                             caf::expected<run_result> result) {
  auto i = windows_.find(id);
  if (i == windows_.end())
    return; // answered already (deadline); the child was stopped
  auto& w = i->second;
  auto& j = w.jobs[index];
  if (j.done)
    return;
  // A further child of the same target (it keeps the target's slot).
  if (auto more = tool_->next(j.target, ++j.steps, result)) {
    launch(id, index, std::move(*more));
    return;
  }
  j.done = true;
  auto& t = j.target;
  auto error = [&](std::string reason) {
    log_->debug("pid {} ({}): {}", t.pid, t.comm, reason);
    w.part.errors.push_back({t.pid, t.comm, "error", std::move(reason)});
  };
  if (!result) {
    error("cannot run the tool: " + message_of(result.error()));
  } else if (result->timed_out) {
    error("timed out");
  } else if (!fx_->alive(t.pid)) {
    // gProfiler's words when the target exits while it is profiled.
    error("process went down during profiling");
  } else if (auto stacks = tool_->parse(t, *result); !stacks) {
    if (stacks.error() == ec::skipped)
      w.part.errors.push_back(
          {t.pid, t.comm, "skipped", message_of(stacks.error())});
    else
      error(message_of(stacks.error()));
  } else if (!stacks->stacks.empty()) {
    w.part.processes.push_back(std::move(*stacks));
  }
  complete_if_done(id);
}

void runtime_state::complete_if_done(uint64_t id) {
  auto i = windows_.find(id);
  if (i == windows_.end() || !i->second.reply || !i->second.worked)
    return;
  auto& w = i->second;
  if (!std::all_of(w.jobs.begin(), w.jobs.end(), [](const job& j) {
        return j.done;
      }))
    return;
  auto reply = std::move(w.reply);
  auto part = std::move(w.part);
  windows_.erase(i);
  reply(std::move(part));
}

void runtime_state::on_snapshot(const snapshot_request& req,
                                std::function<void(profile_part)> reply) {
  auto i = windows_.find(req.snapshot_id);
  if (i == windows_.end()) {
    // A window this profiler never saw start (it was not ready yet).
    profile_part part;
    part.snapshot_id = req.snapshot_id;
    part.profiler = name_;
    reply(std::move(part));
    return;
  }
  i->second.reply = std::move(reply);
  // A window shorter than planned ends before the work was due: do it now.
  if (!i->second.worked)
    on_work(req.snapshot_id);
  // Answer a little before the budget runs out, whatever is still running.
  auto margin
      = std::min<caf::timespan>(req.budget / 10, std::chrono::seconds(1));
  fx_->deadline_in(req.budget - margin, req.snapshot_id);
  complete_if_done(req.snapshot_id);
}

void runtime_state::on_deadline(uint64_t id) {
  auto i = windows_.find(id);
  if (i == windows_.end() || !i->second.reply)
    return;
  auto& w = i->second;
  bool stopped = false;
  for (auto& j : w.jobs) {
    if (j.done)
      continue;
    j.done = true;
    stopped = stopped || j.started;
    w.part.errors.push_back(
        {j.target.pid, j.target.comm, "error",
         j.started ? "timed out" : "not profiled: the window's time ran out"});
  }
  // Queued work of this window is dropped; running children are stopped.
  queue_.erase(std::remove_if(queue_.begin(), queue_.end(),
                              [id](auto& q) {
                                return q.first == id;
                              }),
               queue_.end());
  if (stopped) {
    log_->warn("window {}: stopping the {} children still running at the "
               "deadline",
               id, name_);
    fx_->cancel(tag(id));
  }
  complete_if_done(id);
}

// -- finding tools
// ---------------------------------------------------------------

std::string find_program(const std::string& name) {
  if (name.empty())
    return {};
  if (name.find('/') != std::string::npos)
    return ::access(name.c_str(), X_OK) == 0 ? name : std::string{};
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    auto end = dirs.find(':', start);
    auto dir = dirs.substr(start, end == std::string::npos ? std::string::npos
                                                           : end - start);
    if (!dir.empty()) {
      auto full = dir + "/" + name;
      if (::access(full.c_str(), X_OK) == 0)
        return full;
    }
    if (end == std::string::npos)
      break;
    start = end + 1;
  }
  return {};
}

// -- the actor
// -------------------------------------------------------------------

namespace {

class actor_runtime_effects : public runtime_effects {
public:
  actor_runtime_effects(runtime_profiler_impl::pointer self,
                        reaper_actor reaper, runtime_target_source source)
      : self_(self), reaper_(std::move(reaper)), source_(std::move(source)) {}

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

  void cancel(const std::string& tag) override {
    self_->request(reaper_, caf::infinite, cancel_atom_v, tag)
        .then([](uint32_t) {}, [](caf::error&) {});
  }

  void work_in(caf::timespan delay, uint64_t window) override {
    self_->delayed_send(self_, delay, poll_atom_v, window);
  }

  void deadline_in(caf::timespan delay, uint64_t window) override {
    self_->delayed_send(self_, delay, deadline_atom_v, window);
  }

  std::vector<rt::runtime_target> targets() override {
    return source_.find ? source_.find() : std::vector<rt::runtime_target>{};
  }

  bool alive(int32_t pid) override {
    return !source_.alive || source_.alive(pid);
  }

private:
  runtime_profiler_impl::pointer self_;
  reaper_actor reaper_;
  runtime_target_source source_;
};

} // namespace

runtime_profiler_impl::behavior_type runtime_profiler(
    runtime_profiler_impl::stateful_pointer<runtime_actor_state> self,
    runtime_config cfg, std::shared_ptr<runtime_tool> tool,
    runtime_target_source source, reaper_actor reaper) {
  auto lg = log::get(tool->name());
  auto fx = std::make_shared<actor_runtime_effects>(self, std::move(reaper),
                                                    std::move(source));
  self->state.init(cfg, std::move(tool), std::move(fx), lg);
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
      [self](poll_atom, uint64_t window) {
        self->state.on_work(window);
      },
      [self](deadline_atom, uint64_t window) {
        self->state.on_deadline(window);
      },
  };
}

} // namespace gpa

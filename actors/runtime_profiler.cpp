#include "actors/runtime_profiler.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include <unistd.h>

#include <spdlog/spdlog.h>

#include "runtime/error.hpp"
#include "runtime/files.hpp"
#include "runtime/log.hpp"
#include "runtime/node_attach.hpp"
#include "runtime/proc.hpp"

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
  w.started = fx_->now();
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
  std::vector<rt::runtime_target> found;
  for (auto& t : fx_->targets())
    if (tool_->wants(t))
      found.push_back(t);
  log_->debug("window {}: {} target(s)", id, found.size());
  if (tool_->one_child_for_all()) {
    if (!found.empty())
      add_job(id, std::move(found), w.duration);
  } else {
    for (auto& t : found)
      add_job(id, {t}, w.duration);
  }
  if (cfg_.profile_spawned && tool_->start_at() <= 0)
    fx_->spawn_poll_in(cfg_.spawn_poll, id);
  pump();
}

void runtime_state::add_job(uint64_t id,
                            std::vector<rt::runtime_target> targets,
                            caf::timespan duration) {
  auto& w = windows_.at(id);
  job j;
  j.targets = std::move(targets);
  j.duration = duration;
  w.jobs.push_back(std::move(j));
  queue_.emplace_back(id, w.jobs.size() - 1);
}

void runtime_state::on_spawn_poll(uint64_t id) {
  auto i = windows_.find(id);
  if (!cfg_.profile_spawned || i == windows_.end() || i->second.reply)
    return; // answered, or the snapshot is asked for: the window is over
  auto& w = i->second;
  auto left = w.duration - (fx_->now() - w.started);
  // gProfiler's rule: a process found with less than a second left is not
  // profiled in this window.
  if (left < std::chrono::seconds(1))
    return;
  auto whole = std::chrono::duration_cast<caf::timespan>(
      std::chrono::floor<std::chrono::seconds>(left));
  std::vector<rt::runtime_target> fresh;
  for (auto& t : fx_->targets()) {
    bool known = std::any_of(w.jobs.begin(), w.jobs.end(), [&](const job& j) {
      return std::any_of(
          j.targets.begin(), j.targets.end(), [&](const rt::runtime_target& k) {
            return k.pid == t.pid && k.start_time == t.start_time;
          });
    });
    if (!known && tool_->wants(t))
      fresh.push_back(t);
  }
  if (!fresh.empty()) {
    log_->debug("window {}: {} process(es) started during it", id,
                fresh.size());
    if (!tool_->one_child_for_all()) {
      for (auto& t : fresh)
        add_job(id, {t}, whole);
    } else {
      // A tool for all targets (phpspy) finds new processes itself while it
      // runs: they join its child's targets; without a child running, they
      // get one of their own for the time left.
      auto running
          = std::find_if(w.jobs.begin(), w.jobs.end(), [](const job& j) {
              return !j.done;
            });
      if (running != w.jobs.end())
        running->targets.insert(running->targets.end(), fresh.begin(),
                                fresh.end());
      else
        add_job(id, std::move(fresh), whole);
    }
  }
  if (left > cfg_.spawn_poll + std::chrono::seconds(1))
    fx_->spawn_poll_in(cfg_.spawn_poll, id);
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
    auto& first = j.targets.front();
    if (auto why = tool_->refuse(first); !why.empty()) {
      log_->debug("pid {} ({}): skipped: {}", first.pid, first.comm, why);
      j.done = true;
      for (auto& t : j.targets)
        i->second.part.errors.push_back({t.pid, t.comm, "skipped", why});
      complete_if_done(id);
      continue;
    }
    j.started = true;
    launch(id, index,
           tool_->one_child_for_all()
               ? tool_->command_for_all(j.targets, j.duration)
               : tool_->command(j.targets.front(), j.duration));
  }
}

void runtime_state::launch(uint64_t id, size_t index, run_request req) {
  req.tag = tag(id);
  if (auto i = windows_.find(id); i != windows_.end())
    i->second.jobs[index].req = req;
  ++running_;
  fx_->run(std::move(req),
           [this, id, index, sent = req](caf::expected<run_result> result) {
             --running_;
             finished(id, index, std::move(result));
             // Whether or not its window still waits for it (after a
             // deadline it does not), the child left its files.
             tool_->ended(sent);
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
  if (auto more = tool_->next(j.targets.front(), ++j.steps, result)) {
    launch(id, index, std::move(*more));
    return;
  }
  j.done = true;
  // One error for every target of the child.
  auto error = [&](const std::string& reason) {
    for (auto& t : j.targets) {
      log_->debug("pid {} ({}): {}", t.pid, t.comm, reason);
      w.part.errors.push_back({t.pid, t.comm, "error", reason});
    }
  };
  if (!result) {
    error("cannot run the tool: " + message_of(result.error()));
  } else if (result->timed_out) {
    error("timed out");
  } else if (!tool_->one_child_for_all() && !fx_->alive(j.targets[0].pid)) {
    // gProfiler's words when the target exits while it is profiled. (A
    // tool for all targets says nothing of a process that exited, as
    // gProfiler's phpspy profiler: its stacks, if any, stand.)
    error("process went down during profiling");
  } else if (auto stacks = tool_->read(j.targets, j.req, *result); !stacks) {
    if (stacks.error() == ec::skipped) {
      for (auto& t : j.targets)
        w.part.errors.push_back(
            {t.pid, t.comm, "skipped", message_of(stacks.error())});
    } else {
      error(message_of(stacks.error()));
    }
  } else {
    for (auto& p : *stacks)
      if (!p.stacks.empty())
        w.part.processes.push_back(std::move(p));
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
    for (auto& t : j.targets)
      w.part.errors.push_back(
          {t.pid, t.comm, "error",
           j.started ? "timed out"
                     : "not profiled: the window's time ran out"});
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

// -- the Node.js tool
// ---------------------------------------------------------------

namespace {

/// attach-maps: each Node process, once, gets our perf-map addon loaded
/// through its inspector (runtime/node_attach.hpp, in a child: the agent's
/// own `node-attach` command), after which it writes /tmp/perf-<pid>.map
/// as --perf-basic-prof does and perf names its JavaScript frames. Processes
/// started with --perf-basic-prof or --perf-prof already write their map
/// and are left alone.
class nodejs_attach_tool : public runtime_tool {
public:
  nodejs_attach_tool(std::string exe, std::string dir)
      : exe_(std::move(exe)), dir_(std::move(dir)) {}

  std::string name() const override {
    return "nodejs";
  }

  rt::runtime_kind kind() const override {
    return rt::runtime_kind::nodejs;
  }

  std::string check() override {
    if (exe_.empty())
      return "attach-maps: the agent's own path is unknown";
    if (dir_.empty() || rt::find_node_addons(dir_).empty())
      return "attach-maps: no Node.js addon (gpa-node-perfmap-<abi>.node) "
             "next to the agent; only Node processes started with "
             "--perf-basic-prof have named frames";
    return {};
  }

  std::string describe() const override {
    std::string abis;
    for (auto& a : rt::find_node_addons(dir_))
      abis += (abis.empty() ? "" : ", ") + a.abi;
    return "nodejs: attach-maps: each Node.js process (ABI " + abis
           + ") gets a perf map once, through its inspector (SIGUSR1, "
             "127.0.0.1:9229); processes started with --perf-basic-prof "
             "need none";
  }

  bool wants(const rt::runtime_target& t) override {
    auto key = std::make_pair(t.pid, t.start_time);
    if (done_.count(key))
      return false;
    // Forget processes that are gone (pids of processes not seen for a
    // while) so that the set stays as big as the Node processes running.
    if (done_.size() > 4096)
      for (auto i = done_.begin(); i != done_.end();)
        i = rt::process_exists(i->first) ? std::next(i) : done_.erase(i);
    auto cmdline = rt::read_small_file(
        "/proc/" + std::to_string(t.pid) + "/cmdline", 64 << 10);
    for (const char* flag : {"--perf-basic-prof", "--perf-prof"})
      if (cmdline.find(flag) != std::string::npos) {
        done_.insert(key);
        return false;
      }
    return true;
  }

  run_request command(const rt::runtime_target& t, caf::timespan) override {
    // Tried once per process: a process that refuses keeps its perf stacks
    // and is not signalled again every window.
    done_.insert({t.pid, t.start_time});
    run_request req;
    req.argv = {exe_,
                "node-attach",
                std::to_string(t.pid),
                std::to_string(t.start_time),
                dir_,
                "start"};
    req.timeout = std::chrono::seconds(10);
    req.kill_grace = std::chrono::seconds(1);
    req.out_cap = 4 << 10;
    req.err_cap = 4 << 10;
    return req;
  }

  caf::expected<process_stacks> parse(const rt::runtime_target& t,
                                      run_result& r) override {
    if (!r.success()) {
      auto said = first_message_line(r.err);
      return make_gpa_error(
          ec::tool_failed,
          "attach-maps: " + (said.empty() ? std::string{"failed"} : said));
    }
    attached_.insert({t.pid, t.start_time});
    process_stacks none;
    none.pid = t.pid;
    none.comm = t.comm;
    return none;
  }

  void at_exit() override {
    // As gProfiler does when it stops: each process still running stops
    // writing its map, and the map is removed. In threads (a thread may
    // join a network namespace; the process stays in its own), at most 2 s.
    std::vector<std::thread> stops;
    std::atomic<size_t> stopped{0};
    for (auto [pid, start] : attached_) {
      rt::node_attach_request req;
      req.pid = pid;
      req.start_time = start;
      req.module_dir = dir_;
      req.stop = true;
      req.wait_ms = 2000;
      stops.emplace_back([req, &stopped] {
        if (rt::node_attach(req).error.empty())
          ++stopped;
      });
    }
    for (auto& t : stops)
      t.join();
    if (!attached_.empty())
      log::get("nodejs")->info(
          "nodejs: {} of {} attached Node processes stopped writing their "
          "perf maps",
          stopped.load(), attached_.size());
    attached_.clear();
  }

private:
  std::string exe_;
  std::string dir_;
  std::set<std::pair<int32_t, uint64_t>> done_;
  std::set<std::pair<int32_t, uint64_t>> attached_;
};

} // namespace

std::unique_ptr<runtime_tool> make_nodejs_tool(const runtime_options& opts,
                                               std::string agent_exe,
                                               std::string addon_dir) {
  if (opts.nodejs_mode != "attach-maps")
    return nullptr;
  return std::make_unique<nodejs_attach_tool>(std::move(agent_exe),
                                              std::move(addon_dir));
}

std::string find_node_addon_dir(const std::string& agent_exe) {
  auto slash = agent_exe.rfind('/');
  if (slash == std::string::npos)
    return {};
  auto dir = agent_exe.substr(0, slash);
  for (auto candidate : {dir + "/node", dir + "/../lib/gprofiler-agent/node"})
    if (!rt::find_node_addons(candidate).empty())
      return candidate;
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

  void spawn_poll_in(caf::timespan delay, uint64_t window) override {
    self_->delayed_send(self_, delay, poll_atom_v, window, true);
  }

  caf::timespan now() override {
    return std::chrono::duration_cast<caf::timespan>(
        std::chrono::steady_clock::now().time_since_epoch());
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
      [self](poll_atom, uint64_t window, bool) {
        self->state.on_spawn_poll(window);
      },
      [self](deadline_atom, uint64_t window) {
        self->state.on_deadline(window);
      },
  };
}

} // namespace gpa

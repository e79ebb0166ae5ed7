#pragma once

// The simulated world of the deterministic simulation: a clock-ordered event
// queue, a seeded random source, a trace hash, an in-memory file system, an
// inline work queue, a scripted HTTP backend, and a process launcher whose
// children are models of perf (record, script) that write their output into
// the in-memory file system. Faults are injected by a schedule drawn from the
// seed. Everything runs on the test's thread, in simulated time.

#include <chrono>
#include <csignal>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <sys/wait.h>

#include <caf/actor_clock.hpp>

#include "runtime/error.hpp"
#include "runtime/files.hpp"
#include "runtime/gzip.hpp"
#include "runtime/http_client.hpp"
#include "runtime/process_launcher.hpp"
#include "runtime/work_queue.hpp"

namespace gpa::test {

using sim_time = caf::actor_clock::time_point;
using namespace std::chrono_literals;

// -- trace
// -----------------------------------------------------------------------

/// FNV-1a over everything that happens: one seed, one hash.
class trace_hash {
public:
  void add(std::string_view x) {
    for (unsigned char c : x) {
      value_ ^= c;
      value_ *= 1099511628211ull;
    }
    value_ ^= 0xff;
    value_ *= 1099511628211ull;
  }
  void add(uint64_t x) {
    add(std::string_view{reinterpret_cast<const char*>(&x), sizeof(x)});
  }
  uint64_t value() const {
    return value_;
  }

private:
  uint64_t value_ = 14695981039346656037ull;
};

// -- in-memory file system
// -----------------------------------------------------------

/// Files in memory. Every write of a finished profile can be observed.
class fake_fs : public rt::file_system {
public:
  std::map<std::string, std::string> files;
  /// Called with (name, content) for each file written with write_atomic.
  std::function<void(const std::string&, std::string_view)> on_write;
  /// Set to fail every write (a full disk).
  bool full = false;

  caf::error read_chunks(const std::string& path,
                         const std::function<void(std::string_view)>& f,
                         size_t chunk) override {
    auto i = files.find(path);
    if (i == files.end())
      return make_gpa_error(ec::write_failed,
                            "cannot read " + path + ": No such file");
    std::string_view all = i->second;
    for (size_t pos = 0; pos < all.size(); pos += chunk)
      f(all.substr(pos, chunk));
    return {};
  }

  caf::expected<std::vector<rt::dir_entry>>
  list(const std::string& dir, const std::string& prefix) override {
    std::vector<rt::dir_entry> result;
    auto base = dir + "/";
    for (auto i = files.lower_bound(base + prefix); i != files.end(); ++i) {
      if (i->first.compare(0, base.size() + prefix.size(), base + prefix) != 0)
        break;
      auto name = i->first.substr(base.size());
      if (name.find('/') != std::string::npos)
        continue;
      rt::dir_entry e;
      e.name = name;
      e.size = i->second.size();
      e.regular = true;
      result.push_back(e);
    }
    return result;
  }

  void remove(const std::string& path) override {
    files.erase(path);
  }

  caf::error make_dirs(const std::string&, unsigned) override {
    return {};
  }

  caf::error write_atomic(const std::string& dir, const std::string& name,
                          std::string_view content, unsigned) override {
    if (full)
      return make_gpa_error(ec::write_failed,
                            "cannot write " + dir + "/" + name
                                + ": No space left on device");
    if (on_write)
      on_write(name, content);
    files[dir + "/" + name] = std::string{content};
    return {};
  }

  caf::error link_atomic(const std::string& dir, const std::string& target,
                         const std::string& link) override {
    files[dir + "/" + link] = "-> " + target;
    return {};
  }

  /// Files under `dir`.
  size_t count(const std::string& dir) const {
    size_t n = 0;
    for (auto& [path, content] : files)
      if (path.compare(0, dir.size() + 1, dir + "/") == 0)
        ++n;
    return n;
  }
};

/// Runs each job at once, on the caller's thread.
class inline_work_queue : public rt::work_queue {
public:
  void post(std::function<void()> job) override {
    job();
  }
  size_t pending() const override {
    return 0;
  }
};

// -- scripted backend
// ------------------------------------------------------------------

/// Performance Studio as the simulation sees it: up or down, and what it
/// accepted (the end time of every profile, in order).
class sim_backend : public rt::http_client {
public:
  bool down = false;
  std::vector<std::string> accepted;
  uint64_t requests = 0;

  caf::expected<rt::http_response> send(const rt::http_request& req) override {
    ++requests;
    if (down)
      return make_gpa_error(ec::upload_failed, "cannot connect (simulated)");
    rt::http_response resp;
    resp.status = 200;
    if (req.url.find("/api/v2/profiles") != std::string::npos) {
      auto json = rt::gzip_decompress(req.body);
      if (json) {
        auto key = std::string{"\"end_time\":\""};
        auto pos = json->find(key);
        if (pos != std::string::npos)
          accepted.push_back(
              json->substr(pos + key.size(), json->find('"', pos + key.size())
                                                 - pos - key.size()));
      }
      resp.body = "{\"message\":\"ok\",\"gpid\":\"7\"}";
    } else {
      resp.body = "{\"message\":\"ok\"}";
    }
    return resp;
  }
  void reset() override {}
  void interrupt() override {}
  rt::http_stats stats() const override {
    return {};
  }
};

// -- the world
// -----------------------------------------------------------------------

/// Faults a scenario can switch on, with their probability per window.
struct fault_plan {
  /// perf script never ends and ignores SIGTERM.
  double script_hangs = 0;
  /// perf script takes twice the window.
  double script_slow = 0;
  /// perf script crashes (SIGSEGV) half-way.
  double script_crashes = 0;
  /// perf script prints garbage.
  double script_garbage = 0;
  /// perf record dies during the window.
  double record_dies = 0;
  /// While set, perf record exits with status 1 100 ms after it starts
  /// (a bad option, a broken perf); the start-up probe still works.
  bool record_fails = false;
  /// Processes perf sees per window.
  int processes = 5;
};

/// Events in simulated time, a seeded random source, and the perf model.
class sim_world : public rt::process_launcher {
public:
  sim_world(uint64_t seed, std::shared_ptr<fake_fs> fs,
            std::function<sim_time()> now)
      : rng_(seed), fs_(std::move(fs)), now_(std::move(now)) {}

  fault_plan faults;
  /// perf record processes started (probes not counted).
  uint64_t record_launches = 0;
  /// Length of a window, for "slow" tools.
  caf::timespan window{60s};
  /// Sampling frequency and CPUs of the simulated host.
  int64_t frequency = 11;
  int64_t cpus = 2;
  trace_hash trace;
  std::map<std::string, uint64_t> fault_counts;
  /// Processes (comm "java") perf also samples in a segment from..to
  /// (milliseconds of simulated time), one sample each: the runtime
  /// targets, so that runtime errors have perf stacks to go on.
  std::function<std::vector<int32_t>(int64_t from_ms, int64_t to_ms)>
      also_sampled;

  // -- event queue
  // --------------------------------------------------------------

  /// Runs `f` at time `t` (events at the same time run in order).
  void at(sim_time t, std::function<void()> f) {
    events_.push({t, seq_++, std::move(f)});
  }

  bool has_event() const {
    return !events_.empty();
  }

  sim_time next_event_time() const {
    return events_.top().t;
  }

  /// Runs the next event.
  void fire_next() {
    auto ev = events_.top();
    events_.pop();
    ev.f();
  }

  bool chance(double p) {
    return p > 0 && std::uniform_real_distribution<double>{0, 1}(rng_) < p;
  }

  // -- process_launcher
  // ------------------------------------------------------------

  void set_exit_handler(exit_handler f) override {
    handler_ = std::move(f);
  }

  caf::expected<int32_t> start(uint64_t id,
                               const rt::launch_spec& spec) override {
    child c;
    c.id = id;
    c.pid = static_cast<int32_t>(10000 + (id % 50000));
    c.spec = spec;
    c.started = now_();
    auto& argv = spec.argv;
    trace.add("start " + argv.at(0) + " " + (argv.size() > 1 ? argv[1] : ""));
    if (argv.at(0) == "/sim/jcmd")
      return start_java_tool(id, c);
    bool is_record = argv.size() > 1 && argv[1] == "record";
    bool is_script = argv.size() > 1 && argv[1] == "script";
    bool probe = std::find(argv.begin(), argv.end(), "--") != argv.end();
    if (!is_record && !is_script)
      return make_gpa_error(ec::spawn_failed,
                            "cannot start '" + argv[0] + "': not simulated");
    children_[id] = c;
    auto output = arg_after("-o", argv);
    if (is_record && probe) {
      finish_after(id, 600ms, 0, [this, output] {
        fs_->files[output] = "x";
      });
    } else if (is_record && faults.record_fails) {
      ++record_launches;
      finish_after(id, 100ms, 1, {});
    } else if (is_record) {
      ++record_launches;
      // Samples follow the recording's -F (a session of a command may run
      // at another frequency than the agent's own).
      if (auto hz = arg_after("-F", argv); !hz.empty())
        frequency = std::strtoll(hz.c_str(), nullptr, 10);
      start_record(id, output);
    } else if (arg_after("-F", argv) == "comm,pid") {
      finish_after(id, 100ms, 0, {}, "simproc 1\n");
    } else {
      start_script(id, arg_after("-i", argv));
    }
    return c.pid;
  }

  bool signal(uint64_t id, int sig) override {
    auto i = children_.find(id);
    if (i == children_.end())
      return false;
    auto& c = i->second;
    trace.add("signal " + std::to_string(sig));
    if (sig == SIGKILL) {
      exit_now(id, sig);
    } else if (sig == SIGUSR2 && c.record) {
      rotate(id);
    } else if ((sig == SIGTERM || sig == SIGINT) && !c.ignores_term) {
      auto gen = c.generation;
      at(now_() + 10ms, [this, id, sig, gen] {
        auto j = children_.find(id);
        if (j != children_.end() && j->second.generation == gen)
          exit_now(id, sig);
      });
    }
    return true;
  }

  rt::launcher_counts counts() const override {
    rt::launcher_counts result;
    result.live = static_cast<uint32_t>(children_.size());
    result.fds = result.live * 3;
    return result;
  }

  void kill_all() override {
    while (!children_.empty())
      exit_now(children_.begin()->first, SIGKILL);
  }

  /// Children alive now.
  size_t live() const {
    return children_.size();
  }

  /// The simulated Java tool ("/sim/jcmd <pid> Compiler.perfmap"): hangs,
  /// ignoring SIGTERM, on the pids in java_hang; exits 1 on those in
  /// java_fail; else answers "<pid>:" after 200 ms.
  std::set<int32_t> java_hang;
  std::set<int32_t> java_fail;
  /// Targets that exit as the tool starts on them; they join java_gone.
  std::set<int32_t> java_exits;
  std::set<int32_t> java_gone;
  /// Its runs so far, how many run now, and the most that ever ran at once.
  uint64_t java_runs = 0;
  size_t java_live = 0;
  size_t java_max_live = 0;

private:
  struct child {
    uint64_t id = 0;
    int32_t pid = 0;
    rt::launch_spec spec;
    sim_time started;
    bool record = false;
    bool java = false;
    bool ignores_term = false;
    /// perf record: SIGUSR2 is ignored until this time (perf still
    /// synthesizes the existing processes).
    sim_time ready_at;
    /// perf record: where the current segment began.
    sim_time segment_start;
    std::string output;
    uint64_t rotations = 0;
    /// Bumped on every scheduled end, so stale ends do nothing.
    uint64_t generation = 0;
  };

  struct event {
    sim_time t;
    uint64_t seq;
    std::function<void()> f;
    bool operator<(const event& other) const {
      return t != other.t ? t > other.t : seq > other.seq;
    }
  };

  static std::string arg_after(const std::string& flag,
                               const std::vector<std::string>& argv) {
    for (size_t i = 0; i + 1 < argv.size(); ++i)
      if (argv[i] == flag)
        return argv[i + 1];
    return {};
  }

  void count_fault(const std::string& what) {
    ++fault_counts[what];
    trace.add("fault " + what);
  }

  /// Ends child `id` with `code` after `d`, running `effect` first.
  void finish_after(uint64_t id, caf::timespan d, int code,
                    std::function<void()> effect, std::string out = {}) {
    auto gen = ++children_[id].generation;
    at(now_() + d, [this, id, code, effect, out, gen] {
      auto i = children_.find(id);
      if (i == children_.end() || i->second.generation != gen)
        return;
      if (effect)
        effect();
      exit_with(id, (code & 0xff) << 8, out);
    });
  }

  void exit_now(uint64_t id, int sig) {
    exit_with(id, sig, {});
  }

  void exit_with(uint64_t id, int wait_status, std::string out) {
    auto i = children_.find(id);
    if (i == children_.end())
      return;
    trace.add("exit " + std::to_string(wait_status));
    child_exit report;
    report.id = id;
    report.wait_status = wait_status;
    report.out_bytes = out.size();
    report.out = std::move(out);
    if (i->second.java)
      --java_live;
    children_.erase(i);
    if (handler_)
      handler_(std::move(report));
  }

  int32_t start_java_tool(uint64_t id, child c) {
    auto& argv = c.spec.argv;
    int32_t target = argv.size() > 1 ? std::atoi(argv[1].c_str()) : 0;
    c.java = true;
    children_[id] = c;
    ++java_runs;
    java_max_live = std::max(java_max_live, ++java_live);
    if (java_exits.count(target))
      java_gone.insert(target);
    if (java_hang.count(target))
      children_[id].ignores_term = true; // runs until SIGKILL
    else if (java_fail.count(target))
      finish_after(id, 200ms, 1, {});
    else
      finish_after(id, 200ms, 0, {}, argv[1] + ":\n");
    return c.pid;
  }

  void start_record(uint64_t id, const std::string& output) {
    auto& c = children_[id];
    c.record = true;
    c.output = output;
    c.ready_at = now_() + 1s;
    c.segment_start = now_();
    at(now_() + 300ms, [this, id, output] {
      if (children_.count(id))
        fs_->files[output] = "segment";
    });
  }

  /// perf record's answer to SIGUSR2: the segment so far becomes a file.
  void rotate(uint64_t id) {
    auto& c = children_[id];
    if (now_() < c.ready_at)
      return; // perf is not in its main loop yet: the signal is lost
    at(now_() + 50ms, [this, id] {
      auto i = children_.find(id);
      if (i == children_.end())
        return;
      auto& rec = i->second;
      char name[32];
      std::snprintf(name, sizeof(name), ".%016llu",
                    static_cast<unsigned long long>(++rec.rotations));
      auto from = std::chrono::duration_cast<std::chrono::milliseconds>(
                      rec.segment_start.time_since_epoch())
                      .count();
      auto to = std::chrono::duration_cast<std::chrono::milliseconds>(
                    now_().time_since_epoch())
                    .count();
      fs_->files[rec.output + name]
          = std::to_string(from) + " " + std::to_string(to);
      fs_->files[rec.output] = "segment";
      rec.segment_start = now_();
      // perf may die during the next window.
      if (chance(faults.record_dies)) {
        count_fault("record_dies");
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(window)
                      .count();
        auto when = std::uniform_int_distribution<int64_t>{1, ms}(rng_);
        auto gen = rec.generation;
        at(now_() + std::chrono::milliseconds{when}, [this, id, gen] {
          auto j = children_.find(id);
          if (j != children_.end() && j->second.generation == gen)
            exit_now(id, SIGSEGV);
        });
      }
    });
  }

  /// perf script on a rotation file: perf script text, or a fault.
  void start_script(uint64_t id, const std::string& input) {
    auto i = fs_->files.find(input);
    if (i == fs_->files.end()) {
      finish_after(id, 10ms, 255, {});
      return;
    }
    int64_t from = 0;
    int64_t to = 0;
    std::sscanf(i->second.c_str(), "%lld %lld",
                reinterpret_cast<long long*>(&from),
                reinterpret_cast<long long*>(&to));
    auto out_path = children_[id].spec.out_path;
    if (chance(faults.script_hangs)) {
      count_fault("script_hangs");
      children_[id].ignores_term = true;
      return; // runs until SIGKILL
    }
    if (chance(faults.script_crashes)) {
      count_fault("script_crashes");
      auto gen = ++children_[id].generation;
      at(now_() + 100ms, [this, id, gen] {
        auto j = children_.find(id);
        if (j != children_.end() && j->second.generation == gen)
          exit_now(id, SIGSEGV);
      });
      return;
    }
    auto run_time = caf::timespan{200ms};
    if (chance(faults.script_slow)) {
      count_fault("script_slow");
      run_time = window * 2;
    }
    std::string text;
    if (chance(faults.script_garbage)) {
      count_fault("script_garbage");
      std::uniform_int_distribution<int> byte{0, 255};
      text.resize(4096);
      for (auto& ch : text)
        ch = static_cast<char>(byte(rng_));
    } else {
      text = script_text(to - from);
      if (also_sampled)
        for (auto pid : also_sampled(from, to))
          text += "java " + std::to_string(pid) + "/" + std::to_string(pid)
                  + " [000] 1.000: 1 cpu-clock:\n"
                    "\t401100 main+0x20 (/usr/lib/jvm/bin/java)\n\n";
    }
    finish_after(id, run_time, 0, [this, out_path, text] {
      fs_->files[out_path] = text;
    });
  }

  /// perf script text for a segment of `ms` milliseconds: one sample per
  /// CPU per 1/frequency, spread over `faults.processes` processes.
  std::string script_text(int64_t ms) {
    auto samples = frequency * cpus * ms / 1000;
    std::string text;
    std::uniform_int_distribution<int> proc{0,
                                            std::max(0, faults.processes - 1)};
    std::uniform_int_distribution<int> leaf{0, 3};
    for (int64_t n = 0; n < samples; ++n) {
      auto p = proc(rng_);
      auto l = leaf(rng_);
      text += "simproc-" + std::to_string(p) + " " + std::to_string(2000 + p)
              + "/" + std::to_string(2000 + p) + " [000] 1.000: 1 cpu-clock:\n";
      if (l == 3)
        text += "\tffffffff81000000 do_idle+0x10 ([kernel.kallsyms])\n";
      else
        text += "\t401000 leaf_" + std::to_string(l)
                + "+0x5 (/usr/bin/simproc)\n";
      text += "\t401100 main+0x20 (/usr/bin/simproc)\n\n";
    }
    return text;
  }

  std::mt19937_64 rng_;
  std::shared_ptr<fake_fs> fs_;
  std::function<sim_time()> now_;
  std::priority_queue<event> events_;
  uint64_t seq_ = 0;
  std::map<uint64_t, child> children_;
  exit_handler handler_;
};

} // namespace gpa::test

#include "runtime/python_collector.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include <fcntl.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "format/collapse.hpp"
#include "runtime/app_id.hpp"
#include "runtime/files.hpp"
#include "runtime/jvm.hpp"
#include "runtime/proc.hpp"
#include "runtime/process_enricher.hpp"
#include "runtime/python_packages.hpp"

namespace gpa::rt {

std::string python_frame_text(const std::string& name, const std::string& file,
                              int32_t line, const std::string& package) {
  std::string out = name;
  if (!file.empty()) {
    out += " (";
    out += file;
    if (line != 0) {
      out += ':';
      out += std::to_string(line);
      // gProfiler adds versions to "(FILE.py:LINE)" only.
      if (!package.empty()) {
        out += " [";
        out += package;
        out += ']';
      }
    }
    out += ')';
  }
  out = format::sanitize_frame(out);
  out += "_[p]";
  return out;
}

std::string python_metadata_fields(const std::string& exe,
                                   const std::string& version,
                                   const std::string& exe_elfid,
                                   const std::string& libpython_elfid) {
  auto slash = exe.rfind('/');
  auto base = slash == std::string::npos ? exe : exe.substr(slash + 1);
  std::string out = "\"python_version\":";
  // gProfiler runs `python -V` for executables named like python, and
  // `uwsgi --python-version` (prefixed "Python ") for uWSGI; others get
  // null. The version the reader found is what both print.
  if (!version.empty() && (python_executable_name(base) || base == "uwsgi"))
    append_python_json_string(out, "Python " + version);
  else
    out += "null";
  auto add = [&](const char* key, const std::string& value) {
    out += ",\"";
    out += key;
    out += "\":";
    if (value.empty())
      out += "null";
    else
      append_python_json_string(out, value);
  };
  add("exe_elfid", exe_elfid);
  add("libpython_elfid", libpython_elfid);
  out += ",\"sys_maxunicode\":null";
  return out;
}

namespace {

/// The interpreter's full version: Py_Version's (3.11+), else the version
/// string in its binary, as gProfiler finds it.
std::string full_version_of(int32_t pid, const python_reader& r,
                            const std::string& proc_root) {
  auto& v = r.version();
  if (std::count(v.begin(), v.end(), '.') >= 2)
    return v;
  return python_version_in_binary(
      proc_root + "/" + std::to_string(pid) + "/root", r.binary());
}

} // namespace

std::string python_full_version(int32_t pid, const std::string& proc_root) {
  auto r = python_reader::attach(pid, proc_root);
  return r ? full_version_of(pid, **r, proc_root) : std::string{};
}

namespace {

using steady = std::chrono::steady_clock;

/// A stack: its frames' code objects, outermost first.
using code_key = std::vector<const python_code*>;

struct code_key_hash {
  size_t operator()(const code_key& k) const noexcept {
    size_t h = 1469598103934665603ULL;
    for (auto* p : k)
      h = (h ^ reinterpret_cast<uintptr_t>(p)) * 1099511628211ULL;
    return h;
  }
};

/// A process as the collector knows it across windows.
struct tracked {
  uint64_t start_time = 0;
  std::string comm;
  std::unique_ptr<python_reader> reader;
  /// Why the last attach failed (when reader is null).
  std::optional<python_error> attach_error;
  /// The full version ("3.9.18"), "" if unknown.
  std::string version;
  bool published = false;
};

/// What one process gave in one window.
struct accum {
  std::string comm;
  std::string root;
  std::string version;
  std::unordered_map<code_key, uint64_t, code_key_hash> counts;
  /// Keeps the code objects of `counts` alive (the reader's cache may drop
  /// them).
  std::unordered_map<const python_code*, std::shared_ptr<const python_code>>
      keep;
  uint64_t overflow = 0;
  /// Why sampling it stopped, if not because it exited.
  std::optional<python_error> error;
  /// Samples dropped as torn, and the last one's reason.
  uint64_t torn = 0;
  std::string last_torn;
};

struct window_state {
  uint64_t id = 0;
  steady::time_point end;
  steady::time_point next_tick;
  steady::time_point next_poll;
  /// Processes sampled now, in turn.
  std::vector<int32_t> pids;
  std::unordered_map<int32_t, accum> acc;
  python_window result;
};

/// The reason in a window's error stack for a reader's error.
std::string reason_of(const python_error& e) {
  switch (e.code) {
    case python_errc::unsupported_version:
    case python_errc::no_symbols:
    case python_errc::not_python:
    case python_errc::permission_denied: return e.message;
    default: return e.describe();
  }
}

} // namespace

struct python_collector::impl {
  python_collector_config cfg;
  target_source find;
  std::shared_ptr<app_metadata_extras> extras;
  std::shared_ptr<spdlog::logger> log;
  steady::duration period;

  struct command {
    bool begin = false;
    uint64_t id = 0;
    std::chrono::nanoseconds duration{0};
    std::function<void(python_window)> done;
  };

  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  std::deque<command> commands;
  std::thread thread;

  // -- the collector's thread only --
  std::unordered_map<int32_t, tracked> procs;
  std::optional<window_state> current;
  std::deque<window_state> ended;
  python_packages packages;

  void run() {
    std::unique_lock<std::mutex> lk(mu);
    while (true) {
      auto pred = [this] {
        return stopping || !commands.empty();
      };
      if (!pred()) {
        if (auto due = next_due())
          cv.wait_until(lk, *due, pred);
        else
          cv.wait(lk, pred);
      }
      if (stopping)
        return;
      auto todo = std::move(commands);
      commands.clear();
      lk.unlock();
      for (auto& c : todo) {
        if (c.begin)
          on_begin(c.id, c.duration);
        else
          on_finish(c.id, std::move(c.done));
      }
      work();
      lk.lock();
    }
  }

  std::optional<steady::time_point> next_due() const {
    if (!current)
      return std::nullopt;
    auto due = std::min(current->next_tick, current->end);
    if (cfg.spawn_poll.count() > 0)
      due = std::min(due, current->next_poll);
    return due;
  }

  void work() {
    if (!current)
      return;
    auto now = steady::now();
    if (now >= current->end) {
      end_current();
      return;
    }
    if (cfg.spawn_poll.count() > 0 && now >= current->next_poll) {
      add_targets(*current, /*fresh_only=*/true);
      current->next_poll = steady::now() + cfg.spawn_poll;
    }
    if (now >= current->next_tick) {
      tick(*current);
      auto after = steady::now();
      current->result.busy_s
          += std::chrono::duration<double>(after - now).count();
      current->next_tick += period;
      // A round longer than a period: the ticks it overran are lost, the
      // next one is at the next period boundary.
      while (current->next_tick <= after) {
        current->next_tick += period;
        ++current->result.late_ticks;
      }
    }
  }

  void on_begin(uint64_t id, std::chrono::nanoseconds duration) {
    if (current)
      end_current();
    window_state w;
    w.id = id;
    auto now = steady::now();
    w.end = now + duration;
    w.next_tick = now;
    w.next_poll = now + cfg.spawn_poll;
    w.result.id = id;
    if (extras)
      extras->forget_if([](int32_t pid, uint64_t) {
        return !process_exists(pid);
      });
    add_targets(w, /*fresh_only=*/false);
    log->debug("window {}: {} Python process(es) to sample, {} not read", id,
               w.pids.size(), w.result.errors.size());
    current = std::move(w);
  }

  /// Adds the processes of `find` to `w`: all of them at a window's start
  /// (and forgets the processes no longer found), those `w` does not have
  /// yet during it.
  void add_targets(window_state& w, bool fresh_only) {
    auto targets = find ? find() : std::vector<runtime_target>{};
    if (!fresh_only) {
      for (auto i = procs.begin(); i != procs.end();) {
        bool found = std::any_of(targets.begin(), targets.end(), [&](auto& t) {
          return t.pid == i->first && t.start_time == i->second.start_time;
        });
        i = found ? std::next(i) : procs.erase(i);
      }
    }
    for (auto& t : targets) {
      if (fresh_only
          && (w.acc.count(t.pid) != 0
              || std::any_of(w.result.errors.begin(), w.result.errors.end(),
                             [&](auto& e) {
                               return e.pid == t.pid;
                             })))
        continue;
      add_target(w, t);
    }
    w.result.targets = w.pids.size();
  }

  void add_target(window_state& w, const runtime_target& t) {
    auto& p = procs[t.pid];
    if (p.start_time != t.start_time) {
      p = tracked{};
      p.start_time = t.start_time;
    }
    p.comm = t.comm;
    bool permanent
        = p.attach_error
          && (p.attach_error->code == python_errc::unsupported_version
              || p.attach_error->code == python_errc::no_symbols);
    if (!p.reader && !permanent) {
      auto r = python_reader::attach(t.pid, cfg.proc_root, cfg.limits);
      if (r) {
        p.reader = std::move(*r);
        p.attach_error.reset();
        log->debug("pid {} ({}): CPython {} in {}", t.pid, t.comm,
                   p.reader->version(), p.reader->binary());
      } else {
        p.attach_error = r.error();
        log->debug("pid {} ({}): not read: {}", t.pid, t.comm,
                   r.error().describe());
      }
    }
    if (!p.reader) {
      // A process that maps Python's files but runs no interpreter (one
      // that loads a library from site-packages, an interpreter not
      // initialised yet) is not Python after all: its perf stacks stand,
      // without an error in every window. Gone: nothing to say.
      auto code = p.attach_error->code;
      if (code != python_errc::process_gone && code != python_errc::not_python)
        w.result.errors.push_back(
            {t.pid, t.comm, "error", reason_of(*p.attach_error)});
      return;
    }
    if (p.version.empty())
      p.version = full_version_of(t.pid, *p.reader, cfg.proc_root);
    if (!p.published)
      publish(t, p);
    w.pids.push_back(t.pid);
    auto& a = w.acc[t.pid];
    a.comm = t.comm;
    a.root = cfg.proc_root + "/" + std::to_string(t.pid) + "/root";
    a.version = p.version;
  }

  void publish(const runtime_target& t, tracked& p) {
    p.published = true;
    if (!extras)
      return;
    auto base = cfg.proc_root + "/" + std::to_string(t.pid);
    std::string exe;
    {
      char buf[4096];
      auto n = ::readlink((base + "/exe").c_str(), buf, sizeof buf - 1);
      if (n > 0)
        exe.assign(buf, static_cast<size_t>(n));
    }
    std::string exe_id;
    {
      fd_guard fd{::open((base + "/exe").c_str(), O_RDONLY | O_CLOEXEC)};
      if (fd.fd >= 0)
        if (auto id = elf_id_of_fd(fd.fd))
          exe_id = *id;
    }
    auto lib_id = mapped_elf_id(t.pid, "/libpython", cfg.proc_root);
    extras->put(t.pid, t.start_time,
                python_metadata_fields(exe, p.version, exe_id,
                                       lib_id ? *lib_id : std::string{}));
  }

  void tick(window_state& w) {
    bool dropped = false;
    for (auto& pid : w.pids) {
      auto pi = procs.find(pid);
      if (pi == procs.end() || !pi->second.reader) {
        pid = 0;
        dropped = true;
        continue;
      }
      auto& a = w.acc[pid];
      ++w.result.reads;
      auto s = pi->second.reader->sample(/*gil_holder_only=*/true);
      if (!s) {
        auto code = s.error().code;
        if (code == python_errc::torn_read) {
          ++w.result.torn;
          ++a.torn;
          a.last_torn = s.error().message;
          continue;
        }
        // Gone (exited or exec'd: its samples stand), finalised, or no
        // longer readable: not sampled again in this window; a process
        // that still runs is attached again next window.
        if (code != python_errc::process_gone
            && code != python_errc::not_python)
          a.error = s.error();
        log->debug("pid {}: stopped sampling: {}", pid, s.error().describe());
        pi->second.reader.reset();
        pid = 0;
        dropped = true;
        continue;
      }
      for (auto& thread : *s) {
        if (thread.frames.empty())
          continue;
        code_key key;
        key.reserve(thread.frames.size());
        for (auto f = thread.frames.rbegin(); f != thread.frames.rend(); ++f) {
          key.push_back(f->code.get());
          a.keep.emplace(f->code.get(), f->code);
        }
        ++w.result.samples;
        auto c = a.counts.find(key);
        if (c != a.counts.end())
          ++c->second;
        else if (a.counts.size() >= cfg.max_stacks)
          ++a.overflow;
        else
          a.counts.emplace(std::move(key), 1);
      }
    }
    if (dropped)
      w.pids.erase(std::remove(w.pids.begin(), w.pids.end(), 0), w.pids.end());
  }

  void end_current() {
    ended.push_back(std::move(*current));
    current.reset();
    // Windows nobody asked for are not kept for ever.
    while (ended.size() > 3) {
      log->warn("window {}: its Python stacks were never asked for; dropped",
                ended.front().id);
      ended.pop_front();
    }
  }

  void on_finish(uint64_t id, std::function<void(python_window)> done) {
    if (current && current->id == id)
      end_current();
    auto i = std::find_if(ended.begin(), ended.end(), [id](auto& w) {
      return w.id == id;
    });
    if (i == ended.end()) {
      python_window none;
      none.id = id;
      done(std::move(none));
      return;
    }
    auto w = std::move(*i);
    ended.erase(i);
    done(render(w));
  }

  python_window render(window_state& w) {
    auto out = std::move(w.result);
    for (auto& [pid, a] : w.acc) {
      if (a.counts.empty() && a.overflow == 0) {
        if (a.error)
          out.errors.push_back({pid, a.comm, "error", reason_of(*a.error)});
        else if (a.torn > 0)
          // Garbage where CPython's structures should be, or stacks that
          // changed under every read: said, never guessed.
          out.errors.push_back(
              {pid, a.comm, "error",
               "none of " + std::to_string(a.torn)
                   + " samples could be read: " + a.last_torn});
        continue;
      }
      process_stacks ps;
      ps.pid = pid;
      ps.comm = a.comm;
      std::string prefix
          = a.comm.empty() ? "[unknown]" : format::sanitize_frame(a.comm);
      std::unordered_map<const python_code*, std::string> texts;
      std::unordered_map<std::string, std::string> package_of_file;
      auto text_of = [&](const python_code* code) -> const std::string& {
        auto t = texts.find(code);
        if (t != texts.end())
          return t->second;
        std::string package;
        if (cfg.add_versions && code->first_line != 0 && code->file.size() > 3
            && code->file.compare(code->file.size() - 3, 3, ".py") == 0) {
          auto known = package_of_file.find(code->file);
          if (known == package_of_file.end()) {
            std::string p;
            if (auto found = packages.lookup(a.root, code->file, a.version))
              p = found->name + "==" + found->version;
            known = package_of_file.emplace(code->file, std::move(p)).first;
          }
          package = known->second;
        }
        return texts
            .emplace(code, python_frame_text(code->name, code->file,
                                             code->first_line, package))
            .first->second;
      };
      ps.stacks.reserve(a.counts.size() + 1);
      for (auto& [key, count] : a.counts) {
        std::string stack = prefix;
        for (auto* code : key) {
          stack += ';';
          stack += text_of(code);
        }
        ps.stacks.push_back({std::move(stack), count});
      }
      if (a.overflow > 0)
        ps.stacks.push_back(
            {prefix + ";[python: too many distinct stacks]", a.overflow});
      out.processes.push_back(std::move(ps));
    }
    std::sort(out.processes.begin(), out.processes.end(), [](auto& x, auto& y) {
      return x.pid < y.pid;
    });
    log->debug("window {}: {} process(es), {} reads, {} stacks counted, {} "
               "torn, {} ticks lost, {:.3f} s reading",
               out.id, out.targets, out.reads, out.samples, out.torn,
               out.late_ticks, out.busy_s);
    return out;
  }
};

python_collector::python_collector(python_collector_config cfg,
                                   target_source find,
                                   std::shared_ptr<app_metadata_extras> extras,
                                   std::shared_ptr<spdlog::logger> log)
    : impl_(std::make_unique<impl>()) {
  cfg.frequency = std::clamp<int64_t>(cfg.frequency, 1, python_max_frequency);
  impl_->period = std::chrono::duration_cast<steady::duration>(
      std::chrono::nanoseconds(1'000'000'000 / cfg.frequency));
  impl_->cfg = std::move(cfg);
  impl_->find = std::move(find);
  impl_->extras = std::move(extras);
  impl_->log = std::move(log);
  impl_->thread = std::thread([this] {
    impl_->run();
  });
}

python_collector::~python_collector() {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  impl_->thread.join();
}

void python_collector::begin(uint64_t id, std::chrono::nanoseconds duration) {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl::command c;
    c.begin = true;
    c.id = id;
    c.duration = duration;
    impl_->commands.push_back(std::move(c));
  }
  impl_->cv.notify_all();
}

void python_collector::finish(uint64_t id,
                              std::function<void(python_window)> done) {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl::command c;
    c.id = id;
    c.done = std::move(done);
    impl_->commands.push_back(std::move(c));
  }
  impl_->cv.notify_all();
}

int64_t python_collector::frequency() const {
  return impl_->cfg.frequency;
}

} // namespace gpa::rt

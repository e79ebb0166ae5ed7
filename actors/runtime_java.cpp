#include "actors/runtime_java.hpp"

#include <algorithm>
#include <map>
#include <unordered_map>
#include <vector>

#include <spdlog/spdlog.h>

#include "format/runtime_stacks.hpp"
#include "runtime/app_id.hpp"
#include "runtime/error.hpp"
#include "runtime/files.hpp"
#include "runtime/log.hpp"
#include "runtime/proc.hpp"

namespace gpa {

namespace {

std::optional<uint64_t> proc_start_time(int32_t pid) {
  rt::proc_stat st;
  if (!rt::parse_proc_stat(
          rt::read_small_file("/proc/" + std::to_string(pid) + "/stat", 4096),
          st))
    return std::nullopt;
  return st.start_time;
}

/// What a failed child is called in gProfiler's metadata ("error <Python
/// exception class>", as its JavaMetadata records a failed flags read).
std::string failure_class(const caf::expected<run_result>& r) {
  if (!r)
    return "OSError";
  if (r->timed_out)
    return "CalledProcessTimeoutError";
  if (r->out_truncated)
    return "OutputTooLarge";
  return "CalledProcessError";
}

/// asprof's options for async-profiler agent options: name -> (option,
/// takes a value).
struct ap_option {
  const char* agent;
  const char* cli;
  bool value;
};

constexpr ap_option ap_options[] = {
    {"interval", "-i", true},
    {"jstackdepth", "-j", true},
    {"include", "-I", true},
    {"exclude", "-X", true},
    {"loglevel", "-L", true},
    {"features", "-F", true},
    {"filter", "--filter", true},
    {"event", "-e", true},
    {"alloc", "--alloc", true},
    {"lock", "--lock", true},
    {"wall", "--wall", true},
    {"cstack", "--cstack", true},
    {"signal", "--signal", true},
    {"clock", "--clock", true},
    {"begin", "--begin", true},
    {"end", "--end", true},
    {"safemode", "--safe-mode", true},
    {"chunksize", "--chunksize", true},
    {"chunktime", "--chunktime", true},
    {"threads", "-t", false},
    {"simple", "-s", false},
    {"norm", "-n", false},
    {"sig", "-g", false},
    {"ann", "-a", false},
    {"lib", "-l", false},
    {"total", "--total", false},
    {"sched", "--sched", false},
    {"live", "--live", false},
    {"alluser", "--all-user", false},
    {"ttsp", "--ttsp", false},
};

/// The Java tool: perf-map or ap mode, with the JVMs' metadata.
class java_tool : public runtime_tool {
public:
  explicit java_tool(java_tool_config cfg)
      : cfg_(std::move(cfg)), log_(log::get("java")),
        selection_(
            rt::parse_jvm_flags_selection(cfg_.compat.java_collect_jvm_flags)) {
    if (!cfg_.which)
      cfg_.which = find_program;
    if (!cfg_.process)
      cfg_.process = [](int32_t pid) {
        return rt::read_jvm_process(pid);
      };
    if (!cfg_.libjvm_elfid)
      cfg_.libjvm_elfid = [](int32_t pid) {
        return rt::mapped_elf_id(pid, "/libjvm");
      };
    if (!cfg_.start_time)
      cfg_.start_time = proc_start_time;
    if (!cfg_.perf_events)
      cfg_.perf_events = rt::perf_events_usable;
    if (!cfg_.fs)
      cfg_.fs = rt::make_posix_file_system();
    timeout_s_ = std::max<int64_t>(cfg_.compat.java_jattach_timeout, 1);
  }

  std::string name() const override {
    return "java";
  }

  rt::runtime_kind kind() const override {
    return rt::runtime_kind::java;
  }

  std::string check() override {
    auto& c = cfg_.compat;
    auto& ap_path = cfg_.runtimes.java_async_profiler_path;
    if (cfg_.runtimes.java_mode == "ap" && !ap_path.empty()) {
      asprof_ = cfg_.which(ap_path);
      if (asprof_.empty())
        log_->warn("java: --java-async-profiler-path '{}' is not an "
                   "executable file: Java is profiled in perf-map mode",
                   ap_path);
    }
    if (ap()) {
      // gProfiler's settings, as asprof's command line.
      event_ = c.java_async_profiler_mode;
      if (event_ != "cpu" && event_ != "itimer")
        event_ = cfg_.perf_events() ? "cpu" : "itimer";
      std::vector<std::string> unmapped;
      extra_ = asprof_options(c.java_async_profiler_args, &unmapped);
      for (auto& name : unmapped)
        log_->warn("java: --java-async-profiler-args '{}' has no asprof "
                   "command-line option: it is not passed",
                   name);
      if (c.java_async_profiler_mcache
          != compat_options{}.java_async_profiler_mcache)
        log_->warn("java: asprof's command line has no mcache option: "
                   "--java-async-profiler-mcache {} is not passed",
                   c.java_async_profiler_mcache);
      if (cfg_.extras || version_check()) {
        nsenter_ = cfg_.which("nsenter");
        if (nsenter_.empty())
          log_->warn("java: nsenter (util-linux) was not found: the JVMs' "
                     "versions are not read (no java_version metadata, no "
                     "version check)");
      }
      return {};
    }
    // What only async-profiler reads, given without it.
    compat_options d;
    std::vector<std::string> unused;
    if (c.java_no_version_check)
      unused.push_back("--java-no-version-check");
    if (c.java_async_profiler_mode != d.java_async_profiler_mode)
      unused.push_back("--java-async-profiler-mode");
    if (c.java_async_profiler_safemode != d.java_async_profiler_safemode)
      unused.push_back("--java-async-profiler-safemode");
    if (c.java_async_profiler_features != d.java_async_profiler_features)
      unused.push_back("--java-async-profiler-features");
    if (c.java_async_profiler_args != d.java_async_profiler_args)
      unused.push_back("--java-async-profiler-args");
    if (c.java_collect_thread_names != d.java_collect_thread_names)
      unused.push_back("--java-collect-thread-names");
    for (auto& name : unused)
      log_->warn("java: {} applies to --java-mode ap with "
                 "--java-async-profiler-path: it has no effect in perf-map "
                 "mode",
                 name);
    // A --jcmd-path the user gave wins; else jattach, else the JDK's jcmd.
    auto& jcmd = cfg_.runtimes.jcmd_path;
    bool given = jcmd != runtime_options{}.jcmd_path;
    if (!given)
      jattach_ = cfg_.which("jattach");
    if (jattach_.empty())
      jcmd_ = cfg_.which(jcmd);
    if (jattach_.empty() && jcmd_.empty())
      return "neither jattach nor jcmd ('" + jcmd
             + "', --jcmd-path) was found: Java frames are not named "
               "(install Debian's jattach or a JDK 17+)";
    if (cfg_.extras) {
      nsenter_ = cfg_.which("nsenter");
      if (nsenter_.empty())
        log_->warn("java: nsenter (util-linux) was not found: the JVMs' "
                   "java_version metadata says so instead of the version");
    }
    return {};
  }

  double start_at() const override {
    // async-profiler records over the window; the perf map is written late
    // in it, so that code compiled during it is named too.
    return ap() ? 0 : 0.8;
  }

  std::string describe() const override {
    std::string md = cfg_.extras ? "; each JVM's version and flags (--java-"
                                   "collect-jvm-flags) go to its application "
                                   "metadata once"
                                 : "";
    if (ap()) {
      std::string opts;
      auto o = main_options();
      for (size_t i = 0; i < o.size(); ++i)
        opts += (i ? " " : "") + o[i];
      return "java: async-profiler " + asprof_ + " per JVM over each window ("
             + opts + ")"
             + (version_check() ? ", after gProfiler's JVM version check"
                                : ", no JVM version check")
             + md;
    }
    std::string ap = cfg_.runtimes.java_mode == "ap"
                         ? "async-profiler (--java-mode ap) needs "
                           "--java-async-profiler-path (asprof); "
                         : "";
    return "java: " + ap + "JIT symbols through "
           + (jattach_.empty() ? jcmd_ : jattach_)
           + " Compiler.perfmap late in each window (JDK 17+), so that perf "
             "names Java frames; run Java with -XX:+PreserveFramePointer for "
             "whole Java stacks"
           + md;
  }

  run_request command(const rt::runtime_target& t,
                      caf::timespan window) override {
    prune();
    plan p;
    p.window = window;
    if (auto proc = cfg_.process(t.pid))
      p.proc = *proc;
    else
      p.proc.start_time = 0; // gone: the window's command tells
    // gProfiler's version check needs the version before async-profiler.
    bool check_first = ap() && version_check() && p.proc.start_time != 0
                       && !p.proc.java.empty() && !nsenter_.empty()
                       && !version_known(p.proc.java_key);
    if (check_first && !cfg_.extras)
      p.steps.push_back(step::version);
    if (cfg_.extras && p.proc.start_time != 0) {
      auto& k = known_[t.pid];
      if (k.start_time != p.proc.start_time) {
        k = known{};
        k.start_time = p.proc.start_time;
      }
      if (!k.published || check_first) {
        if (!p.proc.java.empty() && !version_known(p.proc.java_key))
          p.steps.push_back(step::version);
        if (selection_.what != rt::jvm_flags_selection::mode::none && !k.flags
            && !k.published)
          p.steps.push_back(step::flags);
        if (p.steps.empty())
          publish(t.pid, p.proc);
      }
    }
    p.steps.push_back(step::main);
    auto first = p.steps.front();
    auto& slot = plans_[t.pid];
    slot = std::move(p);
    return request(t, slot, first);
  }

  std::optional<run_request>
  next(const rt::runtime_target& t, size_t n,
       const caf::expected<run_result>& result) override {
    auto i = plans_.find(t.pid);
    if (i == plans_.end() || n == 0 || n > i->second.steps.size())
      return std::nullopt;
    auto& p = i->second;
    switch (p.steps[n - 1]) {
      case step::version: took_version(t, p, result); break;
      case step::flags: took_flags(t, p, result); break;
      case step::main: return std::nullopt;
    }
    if (cfg_.extras && !known_[t.pid].published)
      publish(t.pid, p.proc);
    if (n >= p.steps.size())
      return std::nullopt;
    if (p.steps[n] == step::main) {
      p.skip = unsupported(p.proc);
      if (!p.skip.empty())
        return std::nullopt; // parse() says why
    }
    return request(t, p, p.steps[n]);
  }

  std::string refuse(const rt::runtime_target& t) override {
    // A JVM whose version is known already and fails gProfiler's check.
    if (!ap() || !version_check())
      return {};
    auto proc = cfg_.process(t.pid);
    if (!proc || proc->java.empty() || !version_known(proc->java_key))
      return {};
    return unsupported(*proc);
  }

  caf::expected<process_stacks> parse(const rt::runtime_target& t,
                                      run_result& r) override {
    plan p;
    if (auto i = plans_.find(t.pid); i != plans_.end()) {
      p = std::move(i->second);
      plans_.erase(i);
    }
    if (!p.skip.empty())
      return make_gpa_error(ec::skipped, p.skip);
    if (ap())
      return parse_ap(t, p, r);
    // jcmd prints "<pid>:" then the command's output; an unknown command
    // (a JDK before 17) or a failed attach is said on stdout or stderr.
    auto said = first_message_line(r.err.empty() ? r.out : r.err);
    auto out = r.out;
    bool unknown = out.find("Unknown diagnostic command") != std::string::npos
                   || out.find("Invalid command") != std::string::npos;
    if (unknown)
      return make_gpa_error(
          ec::tool_failed,
          "perfmap not supported by this JVM (JDK 17+ needed)");
    if (!r.success())
      return make_gpa_error(
          ec::tool_failed,
          "attach failed (exit "
              + std::to_string(r.exited ? r.exit_code : -r.term_signal) + ")"
              + (said.empty() ? std::string{} : ": " + said));
    process_stacks none;
    none.pid = t.pid;
    none.comm = t.comm;
    return none;
  }

private:
  enum class step : uint8_t { version, flags, main };

  /// A target's children in the current window.
  struct plan {
    caf::timespan window{0};
    rt::jvm_process proc;
    std::vector<step> steps;
    /// asprof's output file (in the temp directory), once it ran.
    std::string out_file;
    /// Why gProfiler's version check leaves this JVM out ("" if it does
    /// not).
    std::string skip;
  };

  bool ap() const {
    return !asprof_.empty();
  }

  bool version_check() const {
    return !cfg_.compat.java_no_version_check;
  }

  /// gProfiler's simple version check of a JVM whose version is known:
  /// "" to profile it, else why not. An unknown version (no java, no
  /// nsenter, runs that failed) does not stop it.
  std::string unsupported(const rt::jvm_process& proc) const {
    if (!ap() || !version_check() || proc.java.empty())
      return {};
    auto i = versions_.find(proc.java_key);
    if (i == versions_.end() || !i->second.done || !i->second.ok)
      return {};
    std::string why;
    auto v = rt::parse_jvm_version(i->second.text, &why);
    if (!v)
      return "cannot read the JVM's version (" + why
             + "); --java-no-version-check profiles it anyway";
    auto reason = rt::jvm_unsupported_reason(*v);
    if (reason.empty())
      return {};
    return "profiling this JVM is not supported (" + reason
           + "); --java-no-version-check profiles it anyway";
  }

  /// asprof's options of the window's command, without -d and the pid.
  std::vector<std::string> main_options() const {
    auto& c = cfg_.compat;
    std::vector<std::string> o = {
        "-e", event_, "-i",
        std::to_string(ap_interval_ns(std::max<int64_t>(cfg_.frequency, 1)))};
    // gProfiler's cpu mode hands perf events to the JVM through fdtransfer.
    if (event_ == "cpu")
      o.push_back("--fdtransfer");
    // Collapsed stacks, annotated (_[j] ...) with signatures: gProfiler's
    // "collapsed,ann,sig".
    o.insert(o.end(), {"-o", "collapsed", "-a", "-g"});
    if (c.java_collect_thread_names)
      o.push_back("-t");
    if (!c.java_async_profiler_features.empty())
      o.insert(o.end(), {"-F", c.java_async_profiler_features});
    if (c.java_async_profiler_safemode != 0)
      o.insert(o.end(),
               {"--safe-mode", std::to_string(c.java_async_profiler_safemode)});
    o.insert(o.end(), extra_.begin(), extra_.end());
    return o;
  }

  caf::expected<process_stacks> parse_ap(const rt::runtime_target& t,
                                         const plan& p, run_result& r) {
    auto path = r.out_path.empty() && !p.out_file.empty()
                    ? cfg_.temp_dir + "/" + p.out_file
                    : r.out_path;
    auto remove = [&] {
      if (!path.empty())
        cfg_.fs->remove(path);
      auto& files = out_files_[t.pid];
      files.erase(std::remove(files.begin(), files.end(), p.out_file),
                  files.end());
    };
    if (!r.success()) {
      remove();
      auto said = first_message_line(r.err);
      return make_gpa_error(
          ec::tool_failed,
          "async-profiler failed (exit "
              + std::to_string(r.exited ? r.exit_code : -r.term_signal) + ")"
              + (said.empty() ? std::string{} : ": " + said));
    }
    format::runtime_parse_limits limits;
    auto text = rt::read_input_file(path, limits.max_input);
    remove();
    if (!text)
      return make_gpa_error(ec::tool_failed,
                            "cannot read async-profiler's output: "
                                + message_of(text.error()));
    auto st = format::parse_async_profiler(*text, t.pid, t.comm, limits);
    if (!st.error.empty())
      return make_gpa_error(ec::tool_failed,
                            "async-profiler's output: " + st.error);
    if (st.skipped > 0)
      log_->debug("pid {}: {} lines of async-profiler's output skipped, "
                  "the first: {}",
                  t.pid, st.skipped, st.first_skipped);
    for (auto& ps : st.processes)
      if (ps.pid == t.pid)
        return std::move(ps);
    process_stacks none;
    none.pid = t.pid;
    none.comm = t.comm;
    return none;
  }

  /// A JVM seen before (pid and start time).
  struct known {
    uint64_t start_time = 0;
    /// Its jvm_flags, as JSON (a list, or a string saying why not).
    std::optional<std::string> flags;
    bool published = false;
  };

  /// The `java -version` of one executable (by identity).
  struct version_state {
    std::string text;
    int failures = 0;
    bool done = false;
    /// The text is java's (not an error).
    bool ok = false;
  };

  bool version_known(const std::string& key) const {
    auto i = versions_.find(key);
    return nsenter_.empty() || (i != versions_.end() && i->second.done);
  }

  run_request request(const rt::runtime_target& t, const plan& p, step s) {
    run_request req;
    auto pid = std::to_string(t.pid);
    switch (s) {
      case step::version:
        // In the JVM's mount and PID namespaces (its java, its /proc), as
        // its user, with a clean environment.
        req.argv = {nsenter_,
                    "--target",
                    pid,
                    "--mount",
                    "--pid",
                    "--setuid",
                    std::to_string(p.proc.uid),
                    "--setgid",
                    std::to_string(p.proc.gid),
                    "--",
                    p.proc.java,
                    "-version"};
        req.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
        req.replace_env = true;
        req.timeout = java_version_timeout;
        req.out_cap = 16 << 10;
        req.err_cap = 16 << 10;
        break;
      case step::flags:
        if (ap())
          req.argv = {asprof_, "jcmd", pid, "VM.flags -all"};
        else if (!jattach_.empty())
          req.argv = {jattach_, pid, "jcmd", "VM.flags -all"};
        else
          req.argv = {jcmd_, pid, "VM.flags", "-all"};
        req.timeout = std::chrono::seconds(timeout_s_);
        req.out_cap = 4 << 20;
        req.err_cap = 16 << 10;
        break;
      case step::main:
        if (ap()) {
          // The window less 2 s for asprof's attaches (it starts, sleeps,
          // stops and prints; on SIGTERM it stops and prints at once), so
          // that it is done before the next window's asprof starts.
          auto secs = std::max<int64_t>(
              1, static_cast<int64_t>(
                     std::chrono::duration<double>(p.window).count() - 2));
          req.argv = {asprof_, "collect", "-d", std::to_string(secs)};
          auto o = main_options();
          req.argv.insert(req.argv.end(), o.begin(), o.end());
          req.argv.push_back(pid);
          req.out_mode = stdout_mode::file;
          req.out_file = "asprof-" + pid + "-" + std::to_string(++outputs_)
                         + ".collapsed";
          plans_[t.pid].out_file = req.out_file;
          // Outputs of earlier windows that were cut short (the last one
          // may still be written).
          auto& files = out_files_[t.pid];
          while (files.size() > 1) {
            cfg_.fs->remove(cfg_.temp_dir + "/" + files.front());
            files.erase(files.begin());
          }
          files.push_back(req.out_file);
          // Two attaches (start, stop) around the window.
          req.timeout = std::chrono::seconds(secs + 2 * timeout_s_);
          req.err_cap = 64 << 10;
          break;
        }
        if (!jattach_.empty())
          req.argv = {jattach_, pid, "jcmd", "Compiler.perfmap"};
        else
          req.argv = {jcmd_, pid, "Compiler.perfmap"};
        req.timeout = std::chrono::seconds(timeout_s_);
        req.out_cap = 16 << 10;
        req.err_cap = 16 << 10;
        break;
    }
    req.kill_grace = std::chrono::seconds(1);
    return req;
  }

  void took_version(const rt::runtime_target& t, const plan& p,
                    const caf::expected<run_result>& r) {
    auto& v = versions_[p.proc.java_key];
    if (v.done)
      return;
    if (r && r->success()) {
      v.text = rt::java_version_text(r->err);
      v.done = true;
      v.ok = true;
      log_->debug("pid {}: {} -version: {}", t.pid, p.proc.java, v.text);
      return;
    }
    auto what = failure_class(r);
    log_->debug("pid {}: {} -version failed ({}): {}", t.pid, p.proc.java, what,
                r ? first_message_line(r->err) : message_of(r.error()));
    if (++v.failures >= java_version_attempts) {
      v.text = "error: " + what;
      v.done = true;
    }
  }

  void took_flags(const rt::runtime_target& t, const plan& p,
                  const caf::expected<run_result>& r) {
    auto& k = known_[t.pid];
    if (k.start_time != p.proc.start_time)
      return;
    std::string json;
    if (r && r->success() && !r->out_truncated) {
      std::vector<std::string> missing;
      auto flags = rt::select_jvm_flags(rt::parse_jvm_flags(r->out), selection_,
                                        &missing);
      if (!missing.empty()) {
        std::string names;
        for (auto& m : missing)
          names += (names.empty() ? "" : ", ") + m;
        log_->warn("pid {}: missing requested JVM flags: {}", t.pid, names);
      }
      json = rt::jvm_flags_json(flags);
    } else {
      json.clear();
      rt::append_python_json_string(json, "error " + failure_class(r));
      log_->debug("pid {}: VM.flags failed: {}", t.pid,
                  r ? first_message_line(r->err.empty() ? r->out : r->err)
                    : message_of(r.error()));
    }
    k.flags = std::move(json);
  }

  /// Puts the JVM's metadata members once everything is known.
  void publish(int32_t pid, const rt::jvm_process& proc) {
    auto& k = known_[pid];
    if (k.published || k.start_time != proc.start_time)
      return;
    std::string version = "/java not found";
    if (!proc.java.empty()) {
      if (nsenter_.empty()) {
        version = "error: nsenter not found";
      } else {
        auto i = versions_.find(proc.java_key);
        if (i == versions_.end() || !i->second.done)
          return;
        version = i->second.text;
      }
    }
    std::string flags = "[]";
    if (selection_.what != rt::jvm_flags_selection::mode::none) {
      if (!k.flags)
        return;
      flags = *k.flags;
    }
    cfg_.extras->put(
        pid, proc.start_time,
        rt::java_metadata_fields(version, cfg_.libjvm_elfid(pid), flags));
    k.published = true;
  }

  /// Forgets the JVMs that are gone, now and then.
  void prune() {
    if (++commands_ % 64 != 0)
      return;
    auto gone = [this](int32_t pid, uint64_t start) {
      auto now = cfg_.start_time(pid);
      return !now || *now != start;
    };
    for (auto i = known_.begin(); i != known_.end();)
      if (gone(i->first, i->second.start_time))
        i = known_.erase(i);
      else
        ++i;
    for (auto i = plans_.begin(); i != plans_.end();)
      if (gone(i->first, i->second.proc.start_time)) {
        for (auto& f : out_files_[i->first])
          cfg_.fs->remove(cfg_.temp_dir + "/" + f);
        out_files_.erase(i->first);
        i = plans_.erase(i);
      } else {
        ++i;
      }
    if (cfg_.extras)
      cfg_.extras->forget_if(gone);
    if (versions_.size() > 4096)
      versions_.clear();
  }

  java_tool_config cfg_;
  std::shared_ptr<spdlog::logger> log_;
  rt::jvm_flags_selection selection_;
  int64_t timeout_s_ = 30;
  std::string jattach_;
  std::string jcmd_;
  std::string nsenter_;
  std::string asprof_;
  /// async-profiler's event (cpu or itimer) and extra options.
  std::string event_;
  std::vector<std::string> extra_;
  uint64_t outputs_ = 0;
  /// asprof's output files per pid not read yet.
  std::unordered_map<int32_t, std::vector<std::string>> out_files_;
  std::unordered_map<int32_t, plan> plans_;
  std::unordered_map<int32_t, known> known_;
  std::map<std::string, version_state> versions_;
  uint64_t commands_ = 0;
};

} // namespace

int64_t ap_interval_ns(int64_t frequency_hz) {
  return static_cast<int64_t>(
      (1.0 / static_cast<double>(std::max<int64_t>(frequency_hz, 1)))
      * 1000000000.0);
}

std::vector<std::string> asprof_options(std::string_view agent_args,
                                        std::vector<std::string>* unmapped) {
  std::vector<std::string> out;
  if (unmapped)
    unmapped->clear();
  size_t i = 0;
  while (i < agent_args.size()) {
    auto comma = agent_args.find(',', i);
    auto item = agent_args.substr(
        i, comma == std::string_view::npos ? comma : comma - i);
    i = comma == std::string_view::npos ? agent_args.size() : comma + 1;
    if (item.empty())
      continue;
    auto eq = item.find('=');
    auto name = item.substr(0, eq);
    const ap_option* found = nullptr;
    for (auto& o : ap_options)
      if (name == o.agent)
        found = &o;
    bool has_value = eq != std::string_view::npos;
    if (!found || found->value != has_value) {
      if (unmapped)
        unmapped->emplace_back(item);
      continue;
    }
    out.emplace_back(found->cli);
    if (has_value) {
      std::string value{item.substr(eq + 1)};
      // The agent's separators inside a value, as asprof's options take
      // them: features a+b is -F a,b; filter 1;2 is --filter 1,2.
      if (name == "features")
        std::replace(value.begin(), value.end(), '+', ',');
      if (name == "filter")
        std::replace(value.begin(), value.end(), ';', ',');
      out.push_back(std::move(value));
    }
  }
  return out;
}

std::unique_ptr<runtime_tool> make_java_tool(java_tool_config cfg) {
  if (cfg.runtimes.java_mode == "disabled")
    return nullptr;
  return std::make_unique<java_tool>(std::move(cfg));
}

} // namespace gpa

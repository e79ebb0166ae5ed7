#include "actors/runtime_java.hpp"

#include <algorithm>
#include <map>
#include <unordered_map>
#include <vector>

#include <spdlog/spdlog.h>

#include "runtime/app_id.hpp"
#include "runtime/error.hpp"
#include "runtime/files.hpp"
#include "runtime/log.hpp"
#include "runtime/proc.hpp"

namespace gpa {

namespace {

/// The first line of a tool's message, bounded (it goes into a frame).
std::string first_line(const std::string& text) {
  auto begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos)
    return {};
  auto end = text.find_first_of("\r\n", begin);
  auto line = text.substr(begin, end == std::string::npos ? std::string::npos
                                                          : end - begin);
  if (line.size() > 200)
    line = line.substr(0, 200) + "...";
  return line;
}

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

/// The Java tool: perf-map mode, with the JVMs' metadata.
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
    timeout_s_ = std::max<int64_t>(cfg_.compat.java_jattach_timeout, 1);
  }

  std::string name() const override {
    return "java";
  }

  rt::runtime_kind kind() const override {
    return rt::runtime_kind::java;
  }

  std::string check() override {
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
    // Late in the window, so that code compiled during it is named too.
    return 0.8;
  }

  std::string describe() const override {
    std::string ap = cfg_.runtimes.java_mode == "ap"
                         ? "async-profiler (--java-mode ap) is not "
                           "supported yet; "
                         : "";
    std::string md = cfg_.extras ? "; each JVM's version and flags (--java-"
                                   "collect-jvm-flags) go to its application "
                                   "metadata once"
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
    if (cfg_.extras && p.proc.start_time != 0) {
      auto& k = known_[t.pid];
      if (k.start_time != p.proc.start_time) {
        k = known{};
        k.start_time = p.proc.start_time;
      }
      if (!k.published) {
        if (!p.proc.java.empty() && !version_known(p.proc.java_key))
          p.steps.push_back(step::version);
        if (selection_.what != rt::jvm_flags_selection::mode::none && !k.flags)
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
    return request(t, p, p.steps[n]);
  }

  caf::expected<process_stacks> parse(const rt::runtime_target& t,
                                      run_result& r) override {
    plans_.erase(t.pid);
    // jcmd prints "<pid>:" then the command's output; an unknown command
    // (a JDK before 17) or a failed attach is said on stdout or stderr.
    auto said = first_line(r.err.empty() ? r.out : r.err);
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
  };

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
        if (!jattach_.empty())
          req.argv = {jattach_, pid, "jcmd", "VM.flags -all"};
        else
          req.argv = {jcmd_, pid, "VM.flags", "-all"};
        req.timeout = std::chrono::seconds(timeout_s_);
        req.out_cap = 4 << 20;
        req.err_cap = 16 << 10;
        break;
      case step::main:
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
      log_->debug("pid {}: {} -version: {}", t.pid, p.proc.java, v.text);
      return;
    }
    auto what = failure_class(r);
    log_->debug("pid {}: {} -version failed ({}): {}", t.pid, p.proc.java, what,
                r ? first_line(r->err) : message_of(r.error()));
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
                  r ? first_line(r->err.empty() ? r->out : r->err)
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
      if (gone(i->first, i->second.proc.start_time))
        i = plans_.erase(i);
      else
        ++i;
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
  std::unordered_map<int32_t, plan> plans_;
  std::unordered_map<int32_t, known> known_;
  std::map<std::string, version_state> versions_;
  uint64_t commands_ = 0;
};

} // namespace

std::unique_ptr<runtime_tool> make_java_tool(java_tool_config cfg) {
  if (cfg.runtimes.java_mode == "disabled")
    return nullptr;
  return std::make_unique<java_tool>(std::move(cfg));
}

} // namespace gpa

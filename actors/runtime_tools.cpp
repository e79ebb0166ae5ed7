#include "actors/runtime_tools.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <set>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "format/collapse.hpp"
#include "format/runtime_stacks.hpp"
#include "format/utf8.hpp"
#include "runtime/error.hpp"
#include "runtime/files.hpp"
#include "runtime/log.hpp"
#include "runtime/proc.hpp"
#include "runtime/runtime_targets.hpp"

namespace gpa {

std::string dotnet_duration(int64_t seconds) {
  seconds = std::max<int64_t>(seconds, 0);
  auto two = [](int64_t v) {
    return (v < 10 ? "0" : "") + std::to_string(v);
  };
  auto days = seconds / 86400;
  auto h = seconds % 86400 / 3600;
  auto m = seconds % 3600 / 60;
  auto s = seconds % 60;
  if (days == 0)
    return std::to_string(h) + ":" + two(m) + ":" + two(s);
  return std::to_string(days) + "." + two(h) + ":" + two(m) + ":" + two(s);
}

std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  out += "'";
  return out;
}

namespace {

/// Whole seconds of a window, at least 1 (the tools take seconds).
int64_t seconds_of(caf::timespan window) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(window);
  return std::max<int64_t>((ms.count() + 500) / 1000, 1);
}

/// The argument after `flag` in `argv`, "" if none.
std::string arg_after(const std::vector<std::string>& argv,
                      const std::string& flag) {
  for (size_t i = 0; i + 1 < argv.size(); ++i)
    if (argv[i] == flag)
      return argv[i + 1];
  return {};
}

/// The directory part of `path` ("." if it has none).
std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos)
    return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

/// What the Ruby, Python, PHP and .NET tools share: finding the tool, naming
/// and reading their output files.
class file_tool : public runtime_tool {
public:
  file_tool(std::string name, std::string tool, std::string option,
            std::string configured, tool_context ctx)
      : name_(std::move(name)), tool_(std::move(tool)),
        option_(std::move(option)), configured_(std::move(configured)),
        ctx_(std::move(ctx)), log_(log::get(name_)) {
    if (!ctx_.which)
      ctx_.which = find_program;
  }

  std::string name() const override {
    return name_;
  }

  std::string check() override {
    if (!ctx_.fs)
      return "no file system to read " + tool_ + "'s output from";
    path_ = ctx_.which(configured_);
    if (path_.empty())
      return tool_ + " ('" + configured_ + "', " + option_
             + ") was not found: it is not in Debian, see "
               "docs/runtime-profilers.md to install it";
    return {};
  }

protected:
  /// The frequency (-f) capped at the tool's limit, as gProfiler caps it.
  int64_t capped_frequency(int64_t limit) const {
    return std::clamp<int64_t>(ctx_.frequency, 1, limit);
  }

  /// The start line of a tool that records each process for the window:
  /// "<name>: <path> records each <what> process for the window at F Hz",
  /// saying when -f is above the tool's `limit`.
  std::string records_each(const std::string& what, int64_t limit) const {
    std::string limited;
    if (ctx_.frequency > limit)
      limited = " (-f " + std::to_string(ctx_.frequency) + " is above " + tool_
                + "'s limit, as in gProfiler)";
    return name_ + ": " + path_ + " records each " + what
           + " process for the window at "
           + std::to_string(capped_frequency(limit)) + " Hz" + limited;
  }

  /// A fresh file name in the temporary directory: PREFIX<n>SUFFIX.
  std::string fresh_path(const std::string& prefix, const std::string& suffix) {
    return ctx_.temp_dir + "/" + prefix + std::to_string(++seq_) + suffix;
  }

  /// Why a child that did not succeed failed.
  std::string failure(const run_result& r,
                      const std::vector<std::string>& noise = {}) const {
    auto said = first_message_line(r.err.empty() ? r.out : r.err, noise);
    auto how = r.exited
                   ? "exited with status " + std::to_string(r.exit_code)
                   : "was killed by signal " + std::to_string(r.term_signal);
    return tool_ + " " + how + (said.empty() ? std::string{} : ": " + said);
  }

  /// The output file at `path`, at most max_output bytes.
  caf::expected<std::string> read_output(const std::string& path) const {
    auto dir = dir_of(path);
    auto name = path.substr(path.rfind('/') + 1);
    auto listed = ctx_.fs->list(dir, name);
    if (!listed)
      return std::move(listed.error());
    auto it = std::find_if(listed->begin(), listed->end(),
                           [&](const rt::dir_entry& e) {
                             return e.name == name;
                           });
    if (it == listed->end())
      return make_gpa_error(ec::tool_failed, tool_ + " wrote no output file");
    if (!it->regular)
      return make_gpa_error(ec::tool_failed,
                            tool_ + "'s output is not a regular file");
    if (it->size > ctx_.max_output)
      return make_gpa_error(ec::tool_failed,
                            tool_ + "'s output is " + std::to_string(it->size)
                                + " bytes, more than the limit of "
                                + std::to_string(ctx_.max_output));
    std::string text;
    bool too_long = false;
    auto err = ctx_.fs->read_chunks(path, [&](std::string_view chunk) {
      if (text.size() + chunk.size() > ctx_.max_output)
        too_long = true;
      else
        text.append(chunk);
    });
    if (err)
      return err;
    if (too_long)
      return make_gpa_error(ec::tool_failed,
                            tool_ + "'s output grew past the limit of "
                                + std::to_string(ctx_.max_output) + " bytes");
    return text;
  }

  /// Logs what a parser skipped (gProfiler logs it and goes on).
  void log_skipped(const format::runtime_stacks& s, int32_t pid) const {
    if (s.skipped > 0)
      log_->debug("{} output{}: {} part(s) skipped, the first at {}", tool_,
                  pid > 0 ? " of pid " + std::to_string(pid) : std::string{},
                  s.skipped, s.first_skipped);
  }

  void remove(const std::string& path) const {
    if (!path.empty() && ctx_.fs)
      ctx_.fs->remove(path);
  }

  std::string name_;
  std::string tool_;
  std::string option_;
  std::string configured_;
  tool_context ctx_;
  std::shared_ptr<spdlog::logger> log_;
  std::string path_;
  uint64_t seq_ = 0;
};

// -- Ruby: rbspy
// -----------------------------------------------------------------

class rbspy_tool : public file_tool {
public:
  rbspy_tool(std::string configured, tool_context ctx)
      : file_tool("ruby", "rbspy", "--rbspy-path", std::move(configured),
                  std::move(ctx)) {}

  rt::runtime_kind kind() const override {
    return rt::runtime_kind::ruby;
  }

  int64_t frequency() const {
    return capped_frequency(rbspy_max_frequency);
  }

  std::string describe() const override {
    return records_each("Ruby", rbspy_max_frequency);
  }

  run_request command(const rt::runtime_target& t,
                      caf::timespan window) override {
    auto secs = seconds_of(window);
    run_request req;
    // gProfiler's RbSpyProfiler._make_command.
    req.argv = {path_,
                "record",
                "--silent",
                "-r",
                std::to_string(frequency()),
                "-d",
                std::to_string(secs),
                "--nonblocking",
                "--oncpu",
                "--format=collapsed",
                "--file",
                fresh_path("rbspy.", "." + std::to_string(t.pid) + ".col"),
                "--raw-file",
                "/dev/null",
                "-p",
                std::to_string(t.pid)};
    // gProfiler: duration + _EXTRA_TIMEOUT (10 s), then SIGKILL.
    req.timeout = std::chrono::seconds(secs + 10);
    req.kill_grace = caf::timespan{0};
    req.out_cap = 16 << 10;
    req.err_cap = 16 << 10;
    return req;
  }

  caf::expected<std::vector<process_stacks>>
  read(const std::vector<rt::runtime_target>& targets, const run_request& req,
       run_result& r) override {
    auto& t = targets.front();
    if (!r.success())
      return make_gpa_error(ec::tool_failed, failure(r));
    auto text = read_output(arg_after(req.argv, "--file"));
    if (!text)
      return std::move(text.error());
    auto s = format::parse_rbspy(*text, t.pid, t.comm);
    if (!s.ok())
      return make_gpa_error(ec::tool_failed, s.error);
    log_skipped(s, t.pid);
    return std::move(s.processes);
  }

  void ended(const run_request& req) override {
    remove(arg_after(req.argv, "--file"));
  }
};

// -- Python: py-spy
// --------------------------------------------------------------

class pyspy_tool : public file_tool {
public:
  pyspy_tool(std::string configured, tool_context ctx,
             std::function<void(process_stacks&)> add_versions)
      : file_tool("python", "py-spy", "--py-spy-path", std::move(configured),
                  std::move(ctx)),
        add_versions_(std::move(add_versions)) {
    if (!ctx_.alive)
      ctx_.alive = [](int32_t pid) {
        return rt::process_exists(pid);
      };
  }

  rt::runtime_kind kind() const override {
    return rt::runtime_kind::python;
  }

  int64_t frequency() const {
    return capped_frequency(pyspy_max_frequency);
  }

  std::string describe() const override {
    return records_each("Python", pyspy_max_frequency);
  }

  run_request command(const rt::runtime_target& t,
                      caf::timespan window) override {
    auto secs = seconds_of(window);
    run_request req;
    // gProfiler's PySpyProfiler._make_command (--gil: on Linux).
    req.argv = {path_,
                "record",
                "-r",
                std::to_string(frequency()),
                "-d",
                std::to_string(secs),
                "--nonblocking",
                "--format",
                "raw",
                "-F",
                "--output",
                fresh_path("pyspy.", "." + std::to_string(t.pid) + ".col"),
                "-p",
                std::to_string(t.pid),
                "--full-filenames",
                "--gil"};
    // gProfiler: duration + _EXTRA_TIMEOUT (10 s), then SIGKILL.
    req.timeout = std::chrono::seconds(secs + 10);
    req.kill_grace = caf::timespan{0};
    req.out_cap = 16 << 10;
    req.err_cap = 16 << 10;
    return req;
  }

  caf::expected<std::vector<process_stacks>>
  read(const std::vector<rt::runtime_target>& targets, const run_request& req,
       run_result& r) override {
    auto& t = targets.front();
    if (!r.success()) {
      // gProfiler's words when py-spy could not find the process because it
      // exited before py-spy attached.
      static const std::string gone
          = "Error: Failed to get process executable name. Check that the "
            "process is running.\n";
      if (r.err.find(gone) != std::string::npos && !ctx_.alive(t.pid))
        return make_gpa_error(ec::tool_failed,
                              "process exited before py-spy started");
      return make_gpa_error(ec::tool_failed, failure(r));
    }
    auto text = read_output(arg_after(req.argv, "--output"));
    if (!text)
      return std::move(text.error());
    auto s = format::parse_pyspy(*text, t.pid, t.comm);
    if (!s.ok())
      return make_gpa_error(ec::tool_failed, s.error);
    log_skipped(s, t.pid);
    if (add_versions_)
      for (auto& p : s.processes)
        add_versions_(p);
    return std::move(s.processes);
  }

  void ended(const run_request& req) override {
    remove(arg_after(req.argv, "--output"));
  }

private:
  std::function<void(process_stacks&)> add_versions_;
};

// -- PHP: phpspy
// -----------------------------------------------------------------

class phpspy_tool : public file_tool {
public:
  phpspy_tool(std::string configured, std::string filter, tool_context ctx)
      : file_tool("php", "phpspy", "--phpspy-path", std::move(configured),
                  std::move(ctx)),
        filter_(std::move(filter)) {}

  rt::runtime_kind kind() const override {
    return rt::runtime_kind::php;
  }

  bool one_child_for_all() const override {
    return true;
  }

  int64_t frequency() const {
    return capped_frequency(phpspy_max_frequency);
  }

  std::string describe() const override {
    return "php: " + path_ + " profiles the processes named like '" + filter_
           + "' (--php-proc-filter), one phpspy per window at "
           + std::to_string(frequency()) + " Hz";
  }

  run_request command(const rt::runtime_target& t,
                      caf::timespan window) override {
    return command_for_all({t}, window);
  }

  run_request command_for_all(const std::vector<rt::runtime_target>&,
                              caf::timespan window) override {
    auto secs = seconds_of(window);
    run_request req;
    // gProfiler's PHPSpyProfiler.start(), plus -i: this phpspy stops at the
    // window's end (gProfiler's runs for its life, rotated by SIGUSR2).
    req.argv = {path_,      "--verbose-fields=p",
                "-P",       shell_quote(filter_),
                "-H",       std::to_string(frequency()),
                "-b",       "16384",
                "-T",       "16",
                "--output", fresh_path("phpspy.", ".out"),
                "-i",       std::to_string(secs * 1000)};
    // phpspy runs objdump and the like: gProfiler appends its directory to
    // PATH, where it ships them.
    const char* path = std::getenv("PATH");
    req.env = {"PATH=" + std::string{path != nullptr ? path : "/usr/bin:/bin"}
               + ":" + dir_of(path_)};
    // gProfiler waits poll_timeout (10 s) for phpspy to start; the same
    // slack past the window for it to stop.
    req.timeout = std::chrono::seconds(secs + 10);
    req.kill_grace = std::chrono::seconds(1);
    req.out_cap = 16 << 10;
    req.err_cap = 64 << 10;
    return req;
  }

  caf::expected<std::vector<process_stacks>>
  read(const std::vector<rt::runtime_target>& targets, const run_request& req,
       run_result& r) override {
    // gProfiler's _get_stderr_skip_regex: lines that mean nothing.
    static const std::vector<std::string> noise
        = {"popen_read_line: No stdout;", "Couldn't read proc fs file",
           "Can't open file for reading", "Couldn't read data from file",
           "main_pgrep finished gracefully"};
    if (!r.success())
      return make_gpa_error(ec::tool_failed, failure(r, noise));
    auto text = read_output(arg_after(req.argv, "--output"));
    if (!text)
      return std::move(text.error());
    auto s = format::parse_phpspy(*text);
    if (!s.ok())
      return make_gpa_error(ec::tool_failed, s.error);
    log_skipped(s, 0);
    // The stacks of the window's targets (gProfiler keeps those of --pids),
    // under each one's own name: phpspy prints no names, and gProfiler
    // writes "php" for every process for want of one.
    std::unordered_map<int32_t, const rt::runtime_target*> wanted;
    for (auto& t : targets)
      wanted[t.pid] = &t;
    std::vector<process_stacks> out;
    size_t others = 0;
    for (auto& p : s.processes) {
      auto i = wanted.find(p.pid);
      if (i == wanted.end()) {
        ++others;
        continue;
      }
      auto comm = i->second->comm.empty()
                      ? std::string{"[unknown]"}
                      : format::sanitize_frame(i->second->comm);
      if (!format::is_valid_utf8(comm))
        comm = format::sanitize_utf8(comm);
      auto prefix = std::string{format::php_comm} + ";";
      for (auto& st : p.stacks)
        if (st.stack.compare(0, prefix.size(), prefix) == 0)
          st.stack = comm + ";" + st.stack.substr(prefix.size());
      p.comm = i->second->comm;
      out.push_back(std::move(p));
    }
    if (others > 0)
      log_->debug("phpspy profiled {} process(es) that are not this "
                  "window's targets: left out",
                  others);
    return out;
  }

  void ended(const run_request& req) override {
    remove(arg_after(req.argv, "--output"));
  }

private:
  std::string filter_;
};

// -- .NET: dotnet-trace
// ----------------------------------------------------------

class dotnet_trace_tool : public file_tool {
public:
  dotnet_trace_tool(std::string configured, tool_context ctx)
      : file_tool("dotnet", "dotnet-trace", "--dotnet-trace-path",
                  std::move(configured), std::move(ctx)) {
    if (!ctx_.namespace_pid)
      ctx_.namespace_pid = [](int32_t pid) {
        return rt::namespace_pid(pid);
      };
  }

  rt::runtime_kind kind() const override {
    return rt::runtime_kind::dotnet;
  }

  std::string check() override {
    auto why = file_tool::check();
    if (!why.empty())
      return why;
    // gProfiler: two levels above dotnet-trace (its bundled runtime).
    root_ = ctx_.dotnet_root.empty() ? dir_of(dir_of(path_)) : ctx_.dotnet_root;
    return {};
  }

  std::string describe() const override {
    return "dotnet: " + path_
           + " traces each .NET process for the window (DOTNET_ROOT=" + root_
           + ")";
  }

  run_request command(const rt::runtime_target& t,
                      caf::timespan window) override {
    auto secs = seconds_of(window);
    auto nspid = ctx_.namespace_pid(t.pid);
    run_request req;
    // gProfiler's DotnetProfiler._make_command. The output has no dot in
    // its name: dotnet-trace replaces the extension.
    req.argv = {path_,
                "collect",
                "--format",
                "speedscope",
                "--process-id",
                std::to_string(nspid > 0 ? nspid : t.pid),
                "--profile",
                "cpu-sampling",
                "--duration",
                dotnet_duration(secs),
                "--output",
                fresh_path("dotnet-trace-", "-" + std::to_string(t.pid))};
    // The diagnostics socket is in the target's /tmp, seen through its
    // root (its mount namespace).
    req.env = {"TMPDIR=/proc/" + std::to_string(t.pid) + "/root/tmp",
               "DOTNET_ROOT=" + root_};
    // gProfiler: duration + _EXTRA_TIMEOUT (60 s), then SIGKILL.
    req.timeout = std::chrono::seconds(secs + 60);
    req.kill_grace = caf::timespan{0};
    req.out_cap = 16 << 10;
    req.err_cap = 16 << 10;
    return req;
  }

  caf::expected<std::vector<process_stacks>>
  read(const std::vector<rt::runtime_target>& targets, const run_request& req,
       run_result& r) override {
    auto& t = targets.front();
    if (!r.success())
      return make_gpa_error(ec::tool_failed, failure(r));
    auto text
        = read_output(arg_after(req.argv, "--output") + ".speedscope.json");
    if (!text)
      return std::move(text.error());
    auto freq = static_cast<uint32_t>(
        std::clamp<int64_t>(ctx_.frequency, 1, 1000000));
    auto s = format::parse_dotnet_speedscope(*text, t.pid, t.comm, freq);
    if (!s.ok())
      return make_gpa_error(ec::tool_failed, s.error);
    return std::move(s.processes);
  }

  void ended(const run_request& req) override {
    auto base = arg_after(req.argv, "--output");
    if (base.empty())
      return;
    for (auto* ext : {"", ".nettrace", ".speedscope.json"})
      remove(base + ext);
  }

private:
  std::string root_;
};

} // namespace

std::unique_ptr<runtime_tool> make_ruby_tool(const runtime_options& opts,
                                             tool_context ctx) {
  if (opts.ruby_mode == "disabled")
    return nullptr;
  return std::make_unique<rbspy_tool>(opts.rbspy_path, std::move(ctx));
}

std::unique_ptr<runtime_tool>
make_pyspy_tool(const std::string& py_spy_path, tool_context ctx,
                std::function<void(process_stacks&)> add_versions) {
  return std::make_unique<pyspy_tool>(py_spy_path, std::move(ctx),
                                      std::move(add_versions));
}

std::unique_ptr<runtime_tool> make_php_tool(const runtime_options& opts,
                                            const compat_options& compat,
                                            tool_context ctx) {
  if (opts.php_mode == "disabled")
    return nullptr;
  return std::make_unique<phpspy_tool>(opts.phpspy_path, compat.php_proc_filter,
                                       std::move(ctx));
}

std::unique_ptr<runtime_tool> make_dotnet_tool(const runtime_options& opts,
                                               tool_context ctx) {
  if (opts.dotnet_mode == "disabled")
    return nullptr;
  return std::make_unique<dotnet_trace_tool>(opts.dotnet_trace_path,
                                             std::move(ctx));
}

} // namespace gpa

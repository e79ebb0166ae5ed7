#pragma once

// The Ruby, Python (py-spy), PHP and .NET tools of the runtime profiler
// (actors/runtime_profiler.hpp): rbspy, py-spy, phpspy and dotnet-trace, run
// with gProfiler's arguments (gprofiler/profilers/ruby.py, python.py, php.py,
// dotnet.py), their output files read back from the agent's private
// temporary directory and turned into collapsed stacks by the parsers of
// format/runtime_stacks.hpp, with gProfiler's frame suffixes (_[rb], _[p],
// _[php], _[net]).
//
// - rbspy: one child per Ruby process, recording it for the whole window
//   (`rbspy record ... -d DURATION -p PID`), killed at DURATION + 10 s.
// - py-spy: likewise one child per Python process (`py-spy record ... -d
//   DURATION ... -p PID`), killed at DURATION + 10 s: gProfiler's
//   PySpyProfiler, used when the user gives `--py-spy-path` (py-spy is not
//   in Debian).
// - phpspy: one child per window for all PHP processes: phpspy finds them
//   itself with `pgrep PATTERN` (--php-proc-filter), as gProfiler runs it;
//   gProfiler keeps one phpspy for its whole life and rotates its output
//   with SIGUSR2 each window (a feature of Granulate's fork only), the agent
//   runs one per window that stops itself at the window's end (`-i`, which
//   upstream phpspy has too). Its stacks are kept for the window's targets.
// - dotnet-trace: one child per .NET process, tracing it for the whole
//   window, killed at DURATION + 60 s.
//
// A tool that is not found turns its runtime off with one line at start; a
// tool that fails, times out or writes what its parser refuses gives its
// targets an error stack; no output at all (nothing sampled) leaves perf's
// stacks.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "actors/runtime_profiler.hpp"
#include "config/options.hpp"

namespace gpa {

namespace rt {
class file_system;
} // namespace rt

/// What the Ruby, Python (py-spy), PHP and .NET tools need besides their
/// options.
struct tool_context {
  /// Finds the tool (find_program() if null).
  program_finder which;
  /// Where the tools write their output (the agent's private temporary
  /// directory) and how it is read and removed.
  std::string temp_dir;
  std::shared_ptr<rt::file_system> fs;
  /// The sampling frequency (-f), in Hz.
  int64_t frequency = 11;
  /// A process's pid in its own PID namespace, for dotnet-trace
  /// (rt::namespace_pid() if null).
  std::function<int32_t(int32_t)> namespace_pid;
  /// DOTNET_ROOT of the agent's environment, "" if unset: given to
  /// dotnet-trace; without it, gProfiler's choice (the directory two levels
  /// above dotnet-trace).
  std::string dotnet_root;
  /// Largest output file read, in bytes (a larger one is an error).
  uint64_t max_output = uint64_t{64} << 20;
  /// Whether a process still runs, for py-spy's "process exited" case
  /// (rt::process_exists() if null).
  std::function<bool(int32_t)> alive;
};

/// rbspy's frequency limit (gProfiler's RbSpyProfiler.MAX_FREQUENCY).
inline constexpr int64_t rbspy_max_frequency = 100;
/// py-spy's frequency limit (gProfiler's PySpyProfiler.MAX_FREQUENCY).
inline constexpr int64_t pyspy_max_frequency = 50;
/// phpspy's frequency limit (gProfiler's PHPSpyProfiler.MAX_FREQUENCY).
inline constexpr int64_t phpspy_max_frequency = 999;

/// The Ruby tool (rbspy, `--rbspy-path`); null if `ruby_mode` is disabled.
std::unique_ptr<runtime_tool> make_ruby_tool(const runtime_options& opts,
                                             tool_context ctx);

/// The Python tool for py-spy (`py_spy_path`, looked up like rbspy's path);
/// `add_versions` (may be empty) rewrites each parsed process's stacks
/// (gProfiler's package versions, supplied by the caller).
std::unique_ptr<runtime_tool>
make_pyspy_tool(const std::string& py_spy_path, tool_context ctx,
                std::function<void(process_stacks&)> add_versions);

/// The PHP tool (phpspy, `--phpspy-path`, `--php-proc-filter`); null if
/// `php_mode` is disabled.
std::unique_ptr<runtime_tool> make_php_tool(const runtime_options& opts,
                                            const compat_options& compat,
                                            tool_context ctx);

/// The .NET tool (dotnet-trace, `--dotnet-trace-path`); null if
/// `dotnet_mode` is disabled.
std::unique_ptr<runtime_tool> make_dotnet_tool(const runtime_options& opts,
                                               tool_context ctx);

/// dotnet-trace's --duration for `seconds`: Python's str(timedelta) as
/// gProfiler passes it ("0:00:05", "1:00:00") below one day, .NET's
/// "D.HH:MM:SS" from one day on.
std::string dotnet_duration(int64_t seconds);

/// `text` quoted for a POSIX shell ('...', a ' inside as '\''): phpspy
/// hands its -P argument to a shell (`pgrep ARG` through popen), so the
/// pattern reaches pgrep as one word, whatever it holds.
std::string shell_quote(const std::string& text);

} // namespace gpa

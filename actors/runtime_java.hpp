#pragma once

// The Java runtime profiler's tool (a runtime_tool, see
// actors/runtime_profiler.hpp): what it runs for each JVM in each window.
//
// - perf-map mode: late in each window the JVM writes its JIT symbols to
//   /tmp/perf-<pid>.map (`Compiler.perfmap`, JDK 17+), through jattach or
//   the JDK's jcmd, and perf names the Java frames from that map.
// - Once per JVM (pid and start time), before that: its application
//   metadata as gProfiler's Java profiler records it: "java_version" (the
//   `java -version` text of the java executable installed with the JVM,
//   run once per executable in the JVM's mount and PID namespaces as the
//   JVM's user), "libjvm_elfid" and "jvm_flags" (`VM.flags -all`, chosen by
//   --java-collect-jvm-flags). They go to the application-metadata extras
//   the merger's enricher adds to the process's metadata.
// - ap mode (--java-mode ap with --java-async-profiler-path): async-profiler's
//   asprof profiles each JVM over the window (`asprof collect -d <window>`,
//   gProfiler's settings as asprof's options, its collapsed output on
//   stdout), and its stacks replace perf's for that JVM. gProfiler's simple
//   JVM version check comes first (unless --java-no-version-check). Without
//   the path, ap is perf-map mode, said at start.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <string_view>
#include <vector>

#include "actors/runtime_profiler.hpp"
#include "config/options.hpp"
#include "runtime/files.hpp"
#include "runtime/jvm.hpp"
#include "runtime/process_enricher.hpp"

namespace gpa {

/// What the Java tool is made of.
struct java_tool_config {
  runtime_options runtimes;
  compat_options compat;
  /// Finds programs (jattach, jcmd, nsenter); unset: find_program.
  program_finder which;
  /// Where the JVMs' metadata goes; null: no metadata is collected (the
  /// application metadata is off).
  std::shared_ptr<rt::app_metadata_extras> extras;
  /// A JVM's facts; unset: rt::read_jvm_process.
  std::function<std::optional<rt::jvm_process>(int32_t pid)> process;
  /// The ELF id of a JVM's libjvm.so; unset: rt::mapped_elf_id.
  std::function<std::optional<std::string>(int32_t pid)> libjvm_elfid;
  /// A process's start time (clock ticks after boot), nullopt if it is
  /// gone; unset: from /proc/<pid>/stat.
  std::function<std::optional<uint64_t>(int32_t pid)> start_time;
  /// Sampling frequency (-f), for async-profiler's interval.
  int64_t frequency = scheduler_options{}.frequency;
  /// Whether perf events can be opened (--java-async-profiler-mode auto);
  /// unset: rt::perf_events_usable.
  std::function<bool()> perf_events;
  /// The reaper's private temporary directory, where asprof's output files
  /// are, and how they are removed; unset fs: the real file system.
  std::string temp_dir;
  std::shared_ptr<rt::file_system> fs;
};

/// async-profiler's sampling interval for a frequency in Hz, in
/// nanoseconds, as gProfiler computes it (int((1 / f) * 1e9)).
int64_t ap_interval_ns(int64_t frequency_hz);

/// gProfiler's --java-async-profiler-args, async-profiler agent options
/// (`name[=value],...`, appended to its start and stop commands), as asprof
/// command-line options (`cstack=no` is `--cstack no`, `jstackdepth=512` is
/// `-j 512`, `threads` is `-t`, ...). The names asprof's command line has
/// no option for (file, log, mcache, includemm, ...) go to `unmapped`.
std::vector<std::string> asprof_options(std::string_view agent_args,
                                        std::vector<std::string>* unmapped
                                        = nullptr);

/// The Java tool of `cfg`; null if --java-mode is disabled.
std::unique_ptr<runtime_tool> make_java_tool(java_tool_config cfg);

/// `java -version` runs at most this long (gProfiler's timeout).
inline constexpr std::chrono::seconds java_version_timeout{5};

/// Runs of `java -version` that fail before a JVM's metadata says
/// "error: ..." as its java_version.
inline constexpr int java_version_attempts = 3;

} // namespace gpa

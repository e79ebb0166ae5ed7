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

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "actors/runtime_profiler.hpp"
#include "config/options.hpp"
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
};

/// The Java tool of `cfg`; null if --java-mode is disabled.
std::unique_ptr<runtime_tool> make_java_tool(java_tool_config cfg);

/// `java -version` runs at most this long (gProfiler's timeout).
inline constexpr std::chrono::seconds java_version_timeout{5};

/// Runs of `java -version` that fail before a JVM's metadata says
/// "error: ..." as its java_version.
inline constexpr int java_version_attempts = 3;

} // namespace gpa

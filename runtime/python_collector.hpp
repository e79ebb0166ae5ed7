#pragma once

// The built-in Python profiler's engine: samples the Python stacks of the
// CPython processes of each window with python_reader (no tool, no child per
// process) on one thread of its own, and turns them into gProfiler's
// collapsed stacks at the window's end.
//
// - Targets: found on the collector's thread at the start of each window
//   (and every `spawn_poll` during it with --profile-spawned-processes), by
//   the target source the agent gives it (gProfiler's rules and limits). A
//   process keeps its reader across windows (same pid and start time), so
//   the ELF symbols are read once per process.
// - Sampling: each process once per period (1 / frequency), all of them in
//   turn on the one thread; a round that takes longer than the period makes
//   the next start at once (never a burst to catch up: the ticks lost are
//   counted). Only the thread that holds the GIL is read and counted, as
//   gProfiler runs py-spy (`--gil`, without `--idle`): threads waiting on the
//   GIL or in a blocking call are not reported.
// - Frames are py-spy's with gProfiler's options (`--format raw -F
//   --full-filenames`, Granulate's `_[p]` suffix): `name (file:line)_[p]`,
//   the line being the function's first line (-F aggregates by function),
//   outermost first after the process's comm. Unless --no-python-versions,
//   frames of files of the standard library or of installed packages get
//   gProfiler's `[package==version]` (runtime/python_packages.hpp).
// - What cannot be read is data, never a crash: a version the reader does
//   not read (2.7, 3.6, 3.14+), a stripped interpreter: the window's errors
//   name it (its perf stacks carry the error); a process that maps Python's
//   files but runs no interpreter is not Python after all (its perf stacks
//   stand, no error); a torn read drops that sample only (counted), every
//   sample torn is an error; a process that exits or execs keeps the samples
//   it gave.
// - Application metadata as gProfiler's PythonMetadata, put in the
//   enricher's extras once per process: python_version, exe_elfid,
//   libpython_elfid, sys_maxunicode.
//
// begin() and finish() are called from any thread (the actor's); the
// reading, the file lookups and finish()'s callback run on the collector's
// thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "format/profile.hpp"
#include "runtime/python_reader.hpp"
#include "runtime/runtime_targets.hpp"

namespace spdlog {
class logger;
} // namespace spdlog

namespace gpa::rt {

class app_metadata_extras;

/// The built-in reader's frequency limit (gProfiler's PyPerf's: the reader
/// costs as little as PyPerf, not as much as py-spy's 50 Hz limit).
inline constexpr int64_t python_max_frequency = 1000;

struct python_collector_config {
  /// Samples per second of each process, clamped to 1..python_max_frequency.
  int64_t frequency = 11;
  /// Where /proc is.
  std::string proc_root = "/proc";
  python_reader_limits limits;
  /// gProfiler's package versions in frames (not --no-python-versions).
  bool add_versions = true;
  /// --profile-spawned-processes: scan for new processes this often during
  /// a window (zero: only at its start).
  std::chrono::milliseconds spawn_poll{0};
  /// Distinct stacks kept per process and window; more are counted as
  /// "[python: too many distinct stacks]".
  size_t max_stacks = 50000;
};

/// What a window gave.
struct python_window {
  uint64_t id = 0;
  std::vector<process_stacks> processes;
  std::vector<profiler_error> errors;
  /// Processes sampled in the window.
  size_t targets = 0;
  /// Reads of a process (one per process per tick), stacks counted, reads
  /// dropped as torn, ticks lost because a round took longer than a period.
  uint64_t reads = 0;
  uint64_t samples = 0;
  uint64_t torn = 0;
  uint64_t late_ticks = 0;
  /// Time spent reading, in seconds.
  double busy_s = 0;
};

class python_collector {
public:
  using target_source = std::function<std::vector<runtime_target>()>;

  /// `find` gives the processes to profile now (called on the collector's
  /// thread only); `extras` (may be null) receives their metadata.
  python_collector(python_collector_config cfg, target_source find,
                   std::shared_ptr<app_metadata_extras> extras,
                   std::shared_ptr<spdlog::logger> log);

  /// Stops the thread; callbacks of windows not finished are not called.
  ~python_collector();

  python_collector(const python_collector&) = delete;
  python_collector& operator=(const python_collector&) = delete;

  /// Window `id` starts now and lasts `duration` (a window still running
  /// ends now).
  void begin(uint64_t id, std::chrono::nanoseconds duration);

  /// Ends window `id` now if it still runs, and calls `done` with what it
  /// gave, on the collector's thread. A window never begun gives an empty
  /// result.
  void finish(uint64_t id, std::function<void(python_window)> done);

  /// The frequency used.
  int64_t frequency() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// The full version ("3.9.18") of the CPython in process `pid`: Py_Version
/// (3.11+), else the version string in its libpython or executable; "" if
/// it is not a CPython the reader reads, or the version is not found.
std::string python_full_version(int32_t pid,
                                const std::string& proc_root = "/proc");

/// One py-spy frame as gProfiler writes it: `name (file:line)_[p]`, where
/// `package` (gProfiler's versions: "pip==23.1", "" for none) goes after
/// the line as ` [package]`; `(file)` without a line when `line` is 0, the
/// name alone without a file. Made safe as a frame (no ';', no control
/// characters).
std::string python_frame_text(const std::string& name, const std::string& file,
                              int32_t line, const std::string& package = {});

/// The application-metadata members gProfiler's PythonMetadata gives a
/// process whose executable is `exe` (as /proc/PID/exe names it): the
/// interpreter's full version `version` ("3.11.2") as `python -V` prints it
/// for an executable named like python (`^python([23](\.\d{1,2})?)?$`) or
/// uwsgi, else null; the ELF ids (null if unknown); sys_maxunicode null
/// (it is asked of Python 2 only, which is not read).
std::string python_metadata_fields(const std::string& exe,
                                   const std::string& version,
                                   const std::string& exe_elfid,
                                   const std::string& libpython_elfid);

} // namespace gpa::rt

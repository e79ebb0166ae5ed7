#pragma once

// Which processes a runtime profiler profiles, by gProfiler's rules: one
// pass over /proc finds the processes of each runtime, then --pids,
// --min-duration and --max-processes-runtime-profiler narrow them down.
//
// gProfiler's rules (its pgrep_maps/pgrep_exe patterns), applied to each
// line of /proc/PID/maps, or to the /proc/PID/exe link for Node.js:
//   java    a mapping of ".../libjvm.so"
//   python  a mapping whose file name starts with "python" or "libpython",
//           or any file under ".../site-packages/" or ".../dist-packages/";
//           processes whose command line names one of gProfiler's system
//           daemons (unattended-upgrades, networkd-dispatcher, supervisord,
//           tuned) are left out
//   ruby    a mapping whose file name starts with "ruby"
//   dotnet  a mapping whose file name starts with "dotnet"
//   nodejs  an executable whose file name contains "node"
//   php     a process name (comm) that the --php-proc-filter pattern
//           matches, as `pgrep PATTERN` does (gProfiler hands the pattern
//           to phpspy, whose -P runs pgrep with it)
// The agent itself is never a target.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace gpa::rt {

class proc_source;

enum class runtime_kind : uint8_t { java, python, ruby, dotnet, nodejs, php };

/// "java", "python", "ruby", "dotnet", "nodejs", "php".
const char* to_string(runtime_kind kind);

/// Whether one line of /proc/PID/maps marks a process of `kind` (never true
/// for nodejs, which is recognised by its executable, nor for php, which is
/// recognised by its name).
bool maps_line_matches(runtime_kind kind, std::string_view line);

/// Whether process `pid` maps a file that marks `kind` (a maps kind: java,
/// python, ruby, dotnet), by maps_line_matches on /proc/<pid>/maps read in
/// bounded chunks up to the first match. False if it cannot be read.
bool process_maps_match(runtime_kind kind, int32_t pid,
                        const std::string& proc_root = "/proc");

/// Whether the path of a process's executable marks a Node.js process.
bool node_executable(std::string_view exe);

/// Whether a command line (NUL-separated, as in /proc/PID/cmdline) names
/// one of the system daemons gProfiler does not profile as Python.
bool blacklisted_python(std::string_view cmdline);

/// A pgrep pattern: a POSIX extended regular expression searched in a
/// process's name (its comm, at most 15 bytes), as `pgrep PATTERN` matches
/// (no -f, no -x). Move-only.
class name_pattern {
public:
  /// Compiles `ere`; an empty pattern or one that does not compile matches
  /// nothing (error() says why).
  explicit name_pattern(const std::string& ere);
  ~name_pattern();
  name_pattern(const name_pattern&) = delete;
  name_pattern& operator=(const name_pattern&) = delete;

  /// "" if the pattern compiled, else why not.
  const std::string& error() const {
    return error_;
  }

  bool matches(const std::string& comm) const;

private:
  struct compiled;
  std::unique_ptr<compiled> re_;
  std::string error_;
};

/// A process of a runtime, found by a scan.
struct runtime_target {
  int32_t pid = 0;
  std::string comm;
  /// Seconds since the process started, at the scan.
  double age_s = 0;
  /// CPU it used: its share of one CPU since the previous scan (a process
  /// not seen before: over its whole life), for the top-N rule.
  double cpu_share = 0;
  /// /proc/PID/stat's start time (clock ticks after boot): with the pid,
  /// names the process across scans.
  uint64_t start_time = 0;
};

/// Finds the processes of runtimes in one pass over /proc. Reads each
/// process's maps once (again when the pid is reused or the process execs,
/// and every `recheck_every` scans for processes that matched nothing, as a
/// library loaded late, an embedded interpreter, can make them match).
/// Only the maps of processes that are not known yet are read, so a scan of
/// a host whose processes do not change costs one stat and one readlink per
/// process.
class target_finder {
public:
  /// `php_filter` is --php-proc-filter (see name_pattern; empty: no
  /// process is a PHP target).
  target_finder(std::unique_ptr<proc_source> proc, std::string proc_root,
                uint64_t recheck_every = 10,
                const std::string& php_filter = {});
  ~target_finder();

  /// The processes of each of `kinds` running now, sorted by pid. `now_ticks`
  /// is the time since boot in clock ticks (as /proc/PID/stat's start time),
  /// `hz` the ticks per second.
  std::map<runtime_kind, std::vector<runtime_target>>
  scan(const std::vector<runtime_kind>& kinds, uint64_t now_ticks, uint64_t hz);

  /// Maps files read so far (for the cost check in tests).
  uint64_t maps_reads() const {
    return maps_reads_;
  }

private:
  struct known {
    uint64_t start_time = 0;
    std::string exe;
    uint32_t kinds = 0;
    uint64_t cpu_ticks = 0;
    uint64_t seen_at = 0;
    uint64_t read_scan = 0;
    uint64_t scan = 0;
  };

  uint32_t classify(int32_t pid, const std::string& exe);

  std::unique_ptr<proc_source> proc_;
  std::unique_ptr<name_pattern> php_;
  std::string root_;
  uint64_t recheck_every_;
  std::unordered_map<int32_t, known> known_;
  uint64_t scans_ = 0;
  uint64_t maps_reads_ = 0;
};

/// What narrows the processes of a runtime down.
struct target_limits {
  /// --pids: only these (empty: all).
  std::vector<int64_t> pids;
  /// --min-duration: leave out processes younger than this, in seconds.
  int64_t min_age_s = 0;
  /// --max-processes-runtime-profiler: at most this many, those using the
  /// most CPU (0: no limit).
  int64_t max_processes = 0;
};

/// The pid of process `pid` in its own PID namespace (the last field of the
/// "NSpid:" line of /proc/PID/status, as granulate-utils' get_process_nspid
/// reads it); `pid` itself when the kernel has no such line (before 4.1);
/// 0 if the process is gone.
int32_t namespace_pid(int32_t pid, const std::string& proc_root = "/proc");

/// The "NSpid:" value of a /proc/PID/status text: its last field; 0 if the
/// text has no such line or it is malformed.
int32_t parse_nspid(std::string_view status);

/// Applies `limits` to `found`, in gProfiler's order (--pids, the age,
/// then the top by CPU; ties by pid). The result is sorted by pid.
std::vector<runtime_target> select_targets(std::vector<runtime_target> found,
                                           const target_limits& limits);

} // namespace gpa::rt

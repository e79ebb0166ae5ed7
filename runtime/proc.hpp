#pragma once

// The /proc interface of the memory monitor: what the agent and its process
// tree use (RSS, descriptors, threads, children) and how busy the host is
// (CPU from /proc/stat, memory from /proc/meminfo).
//
// `proc_source` is the OS effect: one small call per /proc file. The
// simulation fakes it with a scripted host of any size; `make_proc_source()`
// is the real one. Everything above it (walking the tree, averaging the host
// figures) is plain code in this header that both share.
//
// /proc is hostile input: a process name may hold spaces, parentheses and
// newlines, and a process may vanish between listing /proc and reading its
// files. The parsers here take the text after the LAST ')' of a stat line and
// treat a vanished process as simply not there.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace gpa::rt {

// -- what /proc tells us
// -------------------------------------------------------

/// The fields of /proc/<pid>/stat that the monitor uses.
struct proc_stat {
  /// Process ID (field 1).
  int32_t pid = 0;
  /// The command name between the first '(' and the last ')' (field 2). May
  /// contain anything, including ')' and newlines.
  std::string comm;
  /// Single-letter state (field 3): R, S, D, Z, ...
  char state = '?';
  /// Parent process ID (field 4).
  int32_t ppid = 0;
  /// Threads in the process (field 20).
  int64_t threads = 0;
  /// Start time after boot in clock ticks (field 22); a child never starts
  /// before its parent, which exposes a reused parent PID.
  uint64_t start_time = 0;
  /// Resident set size in pages (field 24). Approximate on recent kernels
  /// (per-CPU counters not summed); read_rss_kb() gives the exact figure.
  uint64_t rss_pages = 0;
  /// CPU time used, user + system, in clock ticks (fields 14 and 15).
  uint64_t cpu_ticks = 0;
};

/// Parses one /proc/<pid>/stat text. Returns false if it is malformed (no
/// "pid (" prefix, no ')' or too few fields after the last ')').
bool parse_proc_stat(std::string_view text, proc_stat& out);

/// Cumulative CPU time of the whole host, from the "cpu" line of /proc/stat,
/// in clock ticks. `busy` = total - idle - iowait, like psutil's cpu_percent.
struct cpu_times {
  /// Ticks spent working: total - idle - iowait.
  uint64_t busy = 0;
  /// user + nice + system + idle + iowait + irq + softirq + steal (guest time
  /// is already counted in user and nice).
  uint64_t total = 0;
};

/// Parses the text of /proc/<pid>/statm: returns the resident pages (its
/// second field), or false if malformed.
bool parse_proc_statm(std::string_view text, uint64_t& resident_pages);

/// Parses the text of /proc/stat. Returns false if its first line is not a
/// "cpu " line with at least four numbers.
bool parse_proc_cpu(std::string_view text, cpu_times& out);

/// Memory of the whole host from /proc/meminfo, in KiB.
struct mem_info {
  /// MemTotal.
  uint64_t total_kb = 0;
  /// MemAvailable (kernels before 3.14: MemFree + Buffers + Cached).
  uint64_t available_kb = 0;

  /// Percent of memory in use: (total - available) / total * 100, like
  /// psutil's virtual_memory().percent. 0 if total is 0.
  double used_percent() const;
};

/// Parses the text of /proc/meminfo. Returns false without MemTotal.
bool parse_proc_meminfo(std::string_view text, mem_info& out);

/// Percent of CPU time busy between two readings; 0 if no time passed.
double cpu_busy_percent(const cpu_times& from, const cpu_times& to);

// -- the OS effect
// -------------------------------------------------------------

/// Reads /proc. Every call is a short read of one small kernel-generated file
/// (no waiting on I/O); a process that is gone is a `false`, not an error.
class proc_source {
public:
  /// Releases whatever the reader holds.
  virtual ~proc_source() = default;

  /// The process ID of the agent itself.
  virtual int32_t self_pid() const = 0;

  /// Bytes per page (for rss_pages).
  virtual uint64_t page_size() const = 0;

  /// Appends the ID of every process listed in /proc right now to `out`.
  virtual void list_pids(std::vector<int32_t>& out) = 0;

  /// Reads /proc/<pid>/stat; false if the process is gone or unreadable.
  virtual bool read_stat(int32_t pid, proc_stat& out) = 0;

  /// Reads the resident set size of `pid` in KiB from /proc/<pid>/statm
  /// (exact: the same figure as VmRSS); false if the process is gone.
  virtual bool read_rss_kb(int32_t pid, uint64_t& kb) = 0;

  /// Open descriptors of `pid` (entries of /proc/<pid>/fd), or -1 if they
  /// cannot be read.
  virtual int64_t count_fds(int32_t pid) = 0;

  /// Reads the host's CPU times; false on failure.
  virtual bool read_cpu(cpu_times& out) = 0;

  /// Reads the host's memory figures; false on failure.
  virtual bool read_mem(mem_info& out) = 0;
};

/// Makes the real /proc reader (keeps one descriptor on /proc open).
/// `proc_root` is for tests that need another mount point.
std::unique_ptr<proc_source> make_proc_source(std::string proc_root = "/proc");

/// "1,2,3": PIDs as --pids and perf record -p write them.
std::string join_pids(const std::vector<int64_t>& pids);

/// Whether process `pid` exists and is not a zombie (/proc/<pid>/stat).
/// Thread-safe: unlike a proc_source, it keeps no buffer.
bool process_exists(int64_t pid);

/// Resident set size of process `pid` in KiB (/proc/<pid>/statm), or 0 if
/// it is gone. Thread-safe.
int64_t process_rss_kb(int32_t pid);

// -- the agent's process tree
// --------------------------------------------------

/// One process of the agent's tree.
struct process_usage {
  /// Process ID.
  int32_t pid = 0;
  /// Parent process ID.
  int32_t ppid = 0;
  /// Resident set size in KiB.
  uint64_t rss_kb = 0;
  /// Command name from /proc/<pid>/stat (may hold any character).
  std::string comm;
};

/// The agent and everything below it, from one scan of /proc.
struct tree_usage {
  /// False if the root itself could not be read (then all else is zero).
  bool found = false;
  /// RSS of the root process (the agent), in KiB.
  uint64_t root_rss_kb = 0;
  /// Threads of the root process.
  int64_t root_threads = 0;
  /// RSS of the root plus every descendant, in KiB.
  uint64_t tree_rss_kb = 0;
  /// Descendants (children, grandchildren, ...), zombies included.
  uint32_t descendants = 0;
  /// Direct children of the root.
  uint32_t children = 0;
  /// The largest descendants by RSS, largest first (at most `top_k`).
  std::vector<process_usage> largest;
  /// Processes listed in /proc that were gone when their stat was read.
  uint32_t vanished = 0;
  /// Processes whose stat was read.
  uint32_t scanned = 0;
};

/// Scans every process once and sums the tree under `root` by following
/// ppid links (the `pstree -p | ps -o rss` total, built in). A process that
/// vanishes mid-scan is skipped; a descendant that started before its parent
/// (the parent's PID was reused) is not counted. Keeps the `top_k` largest
/// descendants. Cost: one stat read per process on the host, plus one statm
/// read per member of the tree (for its exact RSS).
tree_usage scan_tree(proc_source& src, int32_t root, size_t top_k = 5);

// -- host CPU and memory over a window
// ------------------------------------------

/// Accumulates host CPU and memory readings over a window and gives the
/// averages since the window started: `cpu_avg` and `mem_avg` of the .col
/// header and the upload. CPU is exact over the window (busy ticks / all
/// ticks between the first and the last reading, like psutil.cpu_percent
/// between two calls); memory is the mean of the readings.
class host_usage_window {
public:
  /// Adds one reading; the first CPU reading of a window is its start.
  void add(const cpu_times* cpu, const mem_info* mem);

  /// CPU busy percent since the window started, or -1 if fewer than two CPU
  /// readings were added.
  double cpu_avg() const;

  /// Mean memory-used percent of the window's readings, or -1 if none.
  double mem_avg() const;

  /// Memory readings in this window.
  uint32_t mem_readings() const {
    return mem_n_;
  }

  /// Starts a new window. The last CPU reading becomes the start of the new
  /// window, so consecutive windows tile time without a gap.
  void restart();

private:
  /// The CPU reading that starts the window, and the latest one.
  bool has_first_ = false;
  bool has_last_ = false;
  cpu_times first_;
  cpu_times last_;
  /// Sum and number of the memory readings of the window.
  double mem_sum_ = 0;
  uint32_t mem_n_ = 0;
};

} // namespace gpa::rt

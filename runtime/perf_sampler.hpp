#pragma once

// The first part of the native system sampler (issue 18): perf_event_open in
// the agent, no perf binary. One event fd per online CPU (system-wide) or
// per process (--pids), the cpu-clock software event at a frequency, with
// frame-pointer callchains; each fd's ring buffer is drained by its one
// owner (the caller of drain()). Side-band records keep what a window needs
// to name processes that exited before it ended: comm (at exec), fork and
// exit; lost samples are counted.
//
// Not used by the agent yet: the system profiler still runs perf record and
// perf script. What is still to build on it: mmap2 records with build ids
// and the symbolizer, DWARF unwinding from .eh_frame, the actor's use of it.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <caf/expected.hpp>

namespace gpa::rt {

struct perf_sampler_options {
  /// Processes to sample (their threads and children too); empty: every
  /// process. One fd per online CPU (per process and CPU with `pids`).
  std::vector<int32_t> pids;
  /// Samples per second (per CPU, or per process).
  int64_t frequency = 11;
  /// Data pages of each ring buffer (a power of two).
  size_t ring_pages = 64;
  /// Where the CPU list is read ("0-3,8").
  std::string online_cpus = "/sys/devices/system/cpu/online";
};

/// One sample, valid during the callback only.
struct perf_sample_view {
  int32_t pid = 0;
  int32_t tid = 0;
  uint64_t time_ns = 0;
  /// The callchain as the kernel gave it: context markers
  /// (PERF_CONTEXT_KERNEL, PERF_CONTEXT_USER, >= PERF_CONTEXT_MAX) mixed
  /// with addresses, innermost first.
  const uint64_t* chain = nullptr;
  size_t chain_size = 0;
};

struct perf_sampler_stats {
  uint64_t samples = 0;
  /// Samples the kernel dropped (a ring buffer was full).
  uint64_t lost = 0;
  uint64_t comm = 0;
  uint64_t fork = 0;
  uint64_t exit = 0;
  /// Records of a kind not handled, and records cut or malformed.
  uint64_t other = 0;
  uint64_t malformed = 0;
};

/// The CPUs of a list such as "0-3,8" (the kernel's format); an error text
/// for anything else.
caf::expected<std::vector<int>> parse_cpu_list(std::string_view text);

class perf_sampler {
public:
  /// Opens and maps every fd (disabled). An error names the fd that failed,
  /// errno's text and, for EACCES/EPERM, kernel.perf_event_paranoid.
  static caf::expected<std::unique_ptr<perf_sampler>>
  open(const perf_sampler_options& opts);

  ~perf_sampler();
  perf_sampler(const perf_sampler&) = delete;
  perf_sampler& operator=(const perf_sampler&) = delete;

  /// Starts and stops sampling on every fd.
  void enable();
  void disable();

  /// Reads every ring buffer up to where the kernel wrote, calling
  /// `on_sample` for each sample, and keeps the side-band records (names,
  /// exits). Returns the samples read.
  size_t drain(const std::function<void(const perf_sample_view&)>& on_sample);

  /// The name of each process seen in a comm record (at exec), by pid.
  const std::unordered_map<int32_t, std::string>& comms() const {
    return comms_;
  }

  /// Processes whose exit was seen.
  const std::vector<int32_t>& exited() const {
    return exited_;
  }

  perf_sampler_stats stats() const {
    return stats_;
  }

  /// The fds opened (one per CPU, per process with `pids`).
  size_t fds() const {
    return rings_.size();
  }

private:
  struct ring {
    int fd = -1;
    void* base = nullptr;
    size_t size = 0;
  };

  perf_sampler() = default;
  void drain_ring(ring& r,
                  const std::function<void(const perf_sample_view&)>& f);
  void record(const unsigned char* rec, size_t size,
              const std::function<void(const perf_sample_view&)>& f);

  std::vector<ring> rings_;
  size_t page_size_ = 4096;
  size_t data_size_ = 0;
  std::vector<unsigned char> scratch_;
  std::unordered_map<int32_t, std::string> comms_;
  std::vector<int32_t> exited_;
  perf_sampler_stats stats_;
};

} // namespace gpa::rt

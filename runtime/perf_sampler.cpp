#include "runtime/perf_sampler.hpp"

#include <cerrno>
#include <cstring>

#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/error.hpp"
#include "runtime/files.hpp"

namespace gpa::rt {

namespace {

/// The sample layout of PERF_SAMPLE_IP | TID | TIME | CALLCHAIN: ip, pid
/// and tid, time, then nr and nr addresses.
constexpr uint64_t sample_type = PERF_SAMPLE_IP | PERF_SAMPLE_TID
                                 | PERF_SAMPLE_TIME | PERF_SAMPLE_CALLCHAIN;

long perf_event_open(perf_event_attr* attr, pid_t pid, int cpu) {
  return ::syscall(SYS_perf_event_open, attr, pid, cpu, -1,
                   PERF_FLAG_FD_CLOEXEC);
}

template <class T>
T load(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

std::string paranoid_note() {
  auto text = read_input_file("/proc/sys/kernel/perf_event_paranoid", 64);
  if (!text)
    return {};
  auto v = *text;
  while (!v.empty() && (v.back() == '\n' || v.back() == ' '))
    v.pop_back();
  return " (kernel.perf_event_paranoid is " + v
         + "; sampling every process needs root with CAP_PERFMON or "
           "CAP_SYS_ADMIN, or a value of -1)";
}

} // namespace

caf::expected<std::vector<int>> parse_cpu_list(std::string_view text) {
  std::vector<int> cpus;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
    text.remove_suffix(1);
  if (text.empty())
    return make_gpa_error(ec::invalid_request, "empty CPU list");
  auto number = [](std::string_view s, int& out) {
    if (s.empty() || s.size() > 6)
      return false;
    int v = 0;
    for (char c : s) {
      if (c < '0' || c > '9')
        return false;
      v = v * 10 + (c - '0');
    }
    out = v;
    return true;
  };
  size_t pos = 0;
  while (pos <= text.size()) {
    auto comma = text.find(',', pos);
    auto part = text.substr(pos, comma == std::string_view::npos
                                     ? std::string_view::npos
                                     : comma - pos);
    auto dash = part.find('-');
    int first = 0, last = 0;
    bool ok = dash == std::string_view::npos
                  ? number(part, first) && number(part, last)
                  : number(part.substr(0, dash), first)
                        && number(part.substr(dash + 1), last);
    if (!ok || last < first || last - first > 65535)
      return make_gpa_error(ec::invalid_request,
                            "CPU list '" + std::string{text.substr(0, 80)}
                                + "': '" + std::string{part.substr(0, 40)}
                                + "' is not a CPU or a range");
    for (int c = first; c <= last; ++c)
      cpus.push_back(c);
    if (comma == std::string_view::npos)
      break;
    pos = comma + 1;
  }
  return cpus;
}

caf::expected<std::unique_ptr<perf_sampler>>
perf_sampler::open(const perf_sampler_options& opts) {
  std::unique_ptr<perf_sampler> s{new perf_sampler};
  s->page_size_ = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  auto pages = opts.ring_pages;
  if (pages == 0 || (pages & (pages - 1)) != 0)
    return make_gpa_error(ec::invalid_request, "ring_pages "
                                                   + std::to_string(pages)
                                                   + " is not a power of two");
  s->data_size_ = pages * s->page_size_;
  perf_event_attr attr{};
  attr.size = sizeof attr;
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_CPU_CLOCK;
  attr.freq = 1;
  attr.sample_freq
      = static_cast<uint64_t>(std::max<int64_t>(opts.frequency, 1));
  attr.sample_type = sample_type;
  attr.disabled = 1;
  attr.comm = 1;
  attr.task = 1;
  attr.exclude_guest = 1;
  // A wakeup is not needed: the owner drains on its own schedule.
  attr.watermark = 0;
  attr.wakeup_events = 0;
  auto text = read_input_file(opts.online_cpus, 4096);
  if (!text)
    return make_gpa_error(ec::invalid_request, "cannot read " + opts.online_cpus
                                                   + ": "
                                                   + describe(text.error()));
  auto cpus = parse_cpu_list(*text);
  if (!cpus)
    return std::move(cpus.error());
  // One fd per CPU, for every process or for each of `pids` (an inherited
  // per-process event can be mapped only when it is bound to a CPU).
  std::vector<std::pair<pid_t, int>> targets;
  if (opts.pids.empty()) {
    for (auto cpu : *cpus)
      targets.emplace_back(-1, cpu);
  } else {
    attr.inherit = 1;
    for (auto pid : opts.pids)
      for (auto cpu : *cpus)
        targets.emplace_back(pid, cpu);
  }
  for (auto [pid, cpu] : targets) {
    auto fd = perf_event_open(&attr, pid, cpu);
    if (fd < 0) {
      int err = errno;
      auto what = pid < 0 ? "CPU " + std::to_string(cpu)
                          : "process " + std::to_string(pid);
      return make_gpa_error(
          ec::tool_failed,
          "perf_event_open (cpu-clock, " + what + "): " + std::strerror(err)
              + (err == EACCES || err == EPERM ? paranoid_note() : ""));
    }
    ring r;
    r.fd = static_cast<int>(fd);
    r.size = s->page_size_ + s->data_size_;
    r.base
        = ::mmap(nullptr, r.size, PROT_READ | PROT_WRITE, MAP_SHARED, r.fd, 0);
    if (r.base == MAP_FAILED) {
      int err = errno;
      ::close(r.fd);
      return make_gpa_error(ec::tool_failed,
                            "cannot map the ring buffer of a perf event ("
                                + std::to_string(s->data_size_)
                                + " bytes): " + std::strerror(err));
    }
    s->rings_.push_back(r);
  }
  return s;
}

perf_sampler::~perf_sampler() {
  for (auto& r : rings_) {
    if (r.base && r.base != MAP_FAILED)
      ::munmap(r.base, r.size);
    if (r.fd >= 0)
      ::close(r.fd);
  }
}

void perf_sampler::enable() {
  for (auto& r : rings_)
    ::ioctl(r.fd, PERF_EVENT_IOC_ENABLE, 0);
}

void perf_sampler::disable() {
  for (auto& r : rings_)
    ::ioctl(r.fd, PERF_EVENT_IOC_DISABLE, 0);
}

size_t perf_sampler::drain(
    const std::function<void(const perf_sample_view&)>& on_sample) {
  auto before = stats_.samples;
  for (auto& r : rings_)
    drain_ring(r, on_sample);
  return static_cast<size_t>(stats_.samples - before);
}

void perf_sampler::drain_ring(
    ring& r, const std::function<void(const perf_sample_view&)>& f) {
  auto* meta = static_cast<perf_event_mmap_page*>(r.base);
  auto* data = static_cast<unsigned char*>(r.base) + page_size_;
  // The kernel writes up to data_head; we free up to data_tail.
  uint64_t head = __atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE);
  uint64_t tail = meta->data_tail;
  auto mask = data_size_ - 1;
  while (tail < head) {
    if (head - tail < sizeof(perf_event_header)) {
      ++stats_.malformed;
      break;
    }
    perf_event_header hdr;
    for (size_t i = 0; i < sizeof hdr; ++i)
      reinterpret_cast<unsigned char*>(&hdr)[i] = data[(tail + i) & mask];
    if (hdr.size < sizeof hdr || hdr.size > head - tail) {
      ++stats_.malformed;
      tail = head; // nothing after a broken header can be trusted
      break;
    }
    auto off = static_cast<size_t>(tail & mask);
    const unsigned char* rec = data + off;
    if (off + hdr.size > data_size_) {
      // The record wraps around the end of the buffer: copy it whole.
      scratch_.resize(hdr.size);
      auto first = data_size_ - off;
      std::memcpy(scratch_.data(), data + off, first);
      std::memcpy(scratch_.data() + first, data, hdr.size - first);
      rec = scratch_.data();
    }
    record(rec, hdr.size, f);
    tail += hdr.size;
  }
  __atomic_store_n(&meta->data_tail, tail, __ATOMIC_RELEASE);
}

void perf_sampler::record(
    const unsigned char* rec, size_t size,
    const std::function<void(const perf_sample_view&)>& f) {
  perf_event_header hdr;
  std::memcpy(&hdr, rec, sizeof hdr);
  const unsigned char* p = rec + sizeof hdr;
  size_t left = size - sizeof hdr;
  switch (hdr.type) {
    case PERF_RECORD_SAMPLE: {
      // ip, pid/tid, time, nr, ips[nr]
      if (left < 32) {
        ++stats_.malformed;
        return;
      }
      perf_sample_view v;
      v.pid = load<int32_t>(p + 8);
      v.tid = load<int32_t>(p + 12);
      v.time_ns = load<uint64_t>(p + 16);
      auto nr = load<uint64_t>(p + 24);
      if (nr > (left - 32) / 8) {
        ++stats_.malformed;
        return;
      }
      // The chain is read where it lies when aligned (records are 8-byte
      // aligned in the buffer and in the copy), else copied.
      std::vector<uint64_t> copy;
      if (reinterpret_cast<uintptr_t>(p + 32) % alignof(uint64_t) == 0) {
        v.chain = reinterpret_cast<const uint64_t*>(p + 32);
      } else {
        copy.resize(nr);
        std::memcpy(copy.data(), p + 32, nr * 8);
        v.chain = copy.data();
      }
      v.chain_size = static_cast<size_t>(nr);
      ++stats_.samples;
      if (f)
        f(v);
      return;
    }
    case PERF_RECORD_COMM: {
      if (left < 9) {
        ++stats_.malformed;
        return;
      }
      auto pid = load<int32_t>(p);
      const char* name = reinterpret_cast<const char*>(p + 8);
      auto len = ::strnlen(name, std::min<size_t>(left - 8, 16));
      comms_[pid] = std::string{name, len};
      ++stats_.comm;
      return;
    }
    case PERF_RECORD_FORK: ++stats_.fork; return;
    case PERF_RECORD_EXIT: {
      if (left >= 16) {
        auto pid = load<int32_t>(p);
        auto tid = load<int32_t>(p + 8);
        if (pid == tid) {
          exited_.push_back(pid);
          if (exited_.size() > 100000)
            exited_.erase(exited_.begin(), exited_.begin() + 50000);
        }
      }
      ++stats_.exit;
      return;
    }
    case PERF_RECORD_LOST:
      if (left >= 16)
        stats_.lost += load<uint64_t>(p + 8);
      return;
    default: ++stats_.other; return;
  }
}

} // namespace gpa::rt

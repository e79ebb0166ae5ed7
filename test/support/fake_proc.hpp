#pragma once

// A scripted host for the memory monitor's simulation: any number of
// processes with chosen parents and RSS, processes that vanish between the
// listing and the read, and chosen CPU/memory counters.

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "runtime/proc.hpp"

namespace gpa::test {

/// A proc_source over an in-memory process table.
class fake_proc : public rt::proc_source {
public:
  /// Page size of the fake host.
  static constexpr uint64_t page = 4096;

  /// The agent's PID.
  int32_t self = 4242;
  /// The host's processes by PID.
  std::map<int32_t, rt::proc_stat> procs;
  /// Listed by list_pids() but gone when read_stat() asks.
  std::set<int32_t> vanishing;
  /// Open descriptors per PID (missing: unreadable).
  std::map<int32_t, int64_t> fds;
  /// What read_cpu() and read_mem() return; `cpu_ok`/`mem_ok` false fails.
  rt::cpu_times cpu;
  rt::mem_info mem{1000000, 1000000};
  bool cpu_ok = true;
  bool mem_ok = true;
  /// Calls of read_stat() and read_rss_kb(), for cost checks.
  uint64_t stat_reads = 0;
  uint64_t statm_reads = 0;

  fake_proc() {
    add(self, 1, 10 << 10, "gprofiler-agent");
    fds[self] = 12;
  }

  /// Adds (or replaces) a process with `rss_kb` resident and start time
  /// `start` (a child must not start before its parent).
  rt::proc_stat& add(int32_t pid, int32_t ppid, uint64_t rss_kb,
                     std::string comm = "proc", uint64_t start = 100) {
    rt::proc_stat st;
    st.pid = pid;
    st.ppid = ppid;
    st.comm = std::move(comm);
    st.state = 'S';
    st.threads = 1;
    st.start_time = start;
    st.rss_pages = rss_kb * 1024 / page;
    return procs[pid] = st;
  }

  /// Sets the RSS of `pid` in KiB.
  void set_rss_kb(int32_t pid, uint64_t kb) {
    procs.at(pid).rss_pages = kb * 1024 / page;
  }

  /// Sets the agent's RSS in MB.
  void set_agent_mb(uint64_t mb) {
    set_rss_kb(self, mb << 10);
  }

  int32_t self_pid() const override {
    return self;
  }

  uint64_t page_size() const override {
    return page;
  }

  void list_pids(std::vector<int32_t>& out) override {
    for (auto& kv : procs)
      out.push_back(kv.first);
    for (auto pid : vanishing)
      if (procs.count(pid) == 0)
        out.push_back(pid);
  }

  bool read_stat(int32_t pid, rt::proc_stat& out) override {
    ++stat_reads;
    if (vanishing.count(pid) != 0)
      return false;
    auto i = procs.find(pid);
    if (i == procs.end())
      return false;
    out = i->second;
    return true;
  }

  bool read_rss_kb(int32_t pid, uint64_t& kb) override {
    ++statm_reads;
    auto i = procs.find(pid);
    if (vanishing.count(pid) != 0 || i == procs.end())
      return false;
    kb = i->second.rss_pages * page / 1024;
    return true;
  }

  int64_t count_fds(int32_t pid) override {
    auto i = fds.find(pid);
    return i == fds.end() ? -1 : i->second;
  }

  bool read_cpu(rt::cpu_times& out) override {
    if (cpu_ok)
      out = cpu;
    return cpu_ok;
  }

  bool read_mem(rt::mem_info& out) override {
    if (mem_ok)
      out = mem;
    return mem_ok;
  }
};

} // namespace gpa::test

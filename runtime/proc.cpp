#include "runtime/proc.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <limits>

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

namespace gpa::rt {

// -- parsers
// -------------------------------------------------------------------

namespace {

/// Parses an unsigned decimal that makes up all of `x`.
template <class T>
bool parse_num(std::string_view x, T& out) {
  if (x.empty())
    return false;
  auto [ptr, err] = std::from_chars(x.data(), x.data() + x.size(), out);
  return err == std::errc{} && ptr == x.data() + x.size();
}

bool is_space(char c) {
  return c == ' ' || c == '\n' || c == '\t';
}

/// Splits `x` at spaces and newlines into at most `max` fields; returns how
/// many it found.
size_t split_fields(std::string_view x, std::string_view* fields, size_t max) {
  size_t n = 0;
  size_t i = 0;
  while (i < x.size() && n < max) {
    while (i < x.size() && is_space(x[i]))
      ++i;
    if (i == x.size())
      break;
    auto start = i;
    while (i < x.size() && !is_space(x[i]))
      ++i;
    fields[n++] = x.substr(start, i - start);
  }
  return n;
}

} // namespace

bool parse_proc_stat(std::string_view text, proc_stat& out) {
  // "<pid> (<comm>) <state> <ppid> ...": comm may hold anything, so the
  // fields start after the LAST ')'.
  auto open = text.find(" (");
  auto close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos
      || close < open + 2)
    return false;
  int32_t pid = 0;
  if (!parse_num(text.substr(0, open), pid))
    return false;
  // Fields 3..24 are tokens 0..21 after the ')'.
  constexpr size_t wanted = 22;
  std::string_view f[wanted];
  if (split_fields(text.substr(close + 1), f, wanted) < wanted)
    return false;
  if (f[0].size() != 1)
    return false;
  proc_stat result;
  result.pid = pid;
  result.comm.assign(text.substr(open + 2, close - open - 2));
  result.state = f[0][0];
  if (!parse_num(f[1], result.ppid) || !parse_num(f[17], result.threads)
      || !parse_num(f[19], result.start_time)
      || !parse_num(f[21], result.rss_pages))
    return false;
  uint64_t utime = 0;
  uint64_t stime = 0;
  if (!parse_num(f[11], utime) || !parse_num(f[12], stime))
    return false;
  result.cpu_ticks = utime + stime;
  out = std::move(result);
  return true;
}

bool parse_proc_statm(std::string_view text, uint64_t& resident_pages) {
  std::string_view f[2];
  if (split_fields(text, f, 2) < 2)
    return false;
  return parse_num(f[1], resident_pages);
}

bool parse_proc_cpu(std::string_view text, cpu_times& out) {
  auto eol = text.find('\n');
  auto line = text.substr(0, eol);
  if (line.substr(0, 4) != "cpu ")
    return false;
  // user nice system idle iowait irq softirq steal guest guest_nice
  std::string_view f[11];
  auto n = split_fields(line, f, 11);
  if (n < 5)
    return false;
  uint64_t v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (size_t i = 1; i < n && i <= 8; ++i)
    if (!parse_num(f[i], v[i - 1]))
      return false;
  uint64_t total = 0;
  for (auto x : v)
    total += x;
  auto idle = v[3] + v[4];
  out.total = total;
  out.busy = total - idle;
  return true;
}

double mem_info::used_percent() const {
  if (total_kb == 0)
    return 0;
  auto avail = std::min(available_kb, total_kb);
  return static_cast<double>(total_kb - avail) * 100.0
         / static_cast<double>(total_kb);
}

bool parse_proc_meminfo(std::string_view text, mem_info& out) {
  bool has_total = false;
  bool has_available = false;
  uint64_t free_kb = 0;
  uint64_t buffers_kb = 0;
  uint64_t cached_kb = 0;
  mem_info result;
  while (!text.empty()) {
    auto eol = text.find('\n');
    auto line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view{}
                                         : text.substr(eol + 1);
    auto colon = line.find(':');
    if (colon == std::string_view::npos)
      continue;
    auto key = line.substr(0, colon);
    std::string_view f[2];
    if (split_fields(line.substr(colon + 1), f, 2) < 1)
      continue;
    uint64_t value = 0;
    if (!parse_num(f[0], value))
      continue;
    if (key == "MemTotal") {
      result.total_kb = value;
      has_total = true;
    } else if (key == "MemAvailable") {
      result.available_kb = value;
      has_available = true;
    } else if (key == "MemFree") {
      free_kb = value;
    } else if (key == "Buffers") {
      buffers_kb = value;
    } else if (key == "Cached") {
      cached_kb = value;
    }
  }
  if (!has_total)
    return false;
  if (!has_available)
    result.available_kb = free_kb + buffers_kb + cached_kb;
  out = result;
  return true;
}

double cpu_busy_percent(const cpu_times& from, const cpu_times& to) {
  if (to.total <= from.total)
    return 0;
  auto total = static_cast<double>(to.total - from.total);
  // Busy time never runs backwards, but a counter reset must not produce a
  // negative or huge figure.
  auto busy
      = to.busy >= from.busy ? static_cast<double>(to.busy - from.busy) : 0.0;
  return std::min(100.0, busy * 100.0 / total);
}

// -- the real /proc reader
// -------------------------------------------------------

namespace {

/// Reads up to `cap` bytes of a small /proc file into `buf`; false if it
/// cannot be opened (the process is gone) or read.
bool read_small_file(const char* path, std::string& buf, size_t cap) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  buf.resize(cap);
  size_t got = 0;
  bool ok = true;
  while (got < cap) {
    auto n = ::read(fd, &buf[got], cap - got);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      ok = false;
      break;
    }
    if (n == 0)
      break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  buf.resize(got);
  return ok && got > 0;
}

class real_proc_source : public proc_source {
public:
  explicit real_proc_source(std::string root)
      : root_(std::move(root)), self_(static_cast<int32_t>(::getpid())),
        page_size_(static_cast<uint64_t>(::sysconf(_SC_PAGESIZE))) {
    // Kernel-generated stat lines are well under 1 KiB; the buffer is kept
    // between calls so a scan of the whole host allocates nothing per file.
    buf_.reserve(4096);
  }

  int32_t self_pid() const override {
    return self_;
  }

  uint64_t page_size() const override {
    return page_size_;
  }

  void list_pids(std::vector<int32_t>& out) override {
    auto dir = ::opendir(root_.c_str());
    if (dir == nullptr)
      return;
    while (auto e = ::readdir(dir)) {
      int32_t pid = 0;
      if (e->d_name[0] >= '1' && e->d_name[0] <= '9'
          && parse_num(std::string_view{e->d_name}, pid))
        out.push_back(pid);
    }
    ::closedir(dir);
  }

  bool read_stat(int32_t pid, proc_stat& out) override {
    char path[512];
    auto len = std::snprintf(path, sizeof(path), "%s/%d/stat", root_.c_str(),
                             static_cast<int>(pid));
    if (len < 0 || static_cast<size_t>(len) >= sizeof(path)
        || !read_small_file(path, buf_, 4096))
      return false;
    return parse_proc_stat(buf_, out);
  }

  bool read_rss_kb(int32_t pid, uint64_t& kb) override {
    char path[512];
    auto len = std::snprintf(path, sizeof(path), "%s/%d/statm", root_.c_str(),
                             static_cast<int>(pid));
    uint64_t pages = 0;
    if (len < 0 || static_cast<size_t>(len) >= sizeof(path)
        || !read_small_file(path, buf_, 512) || !parse_proc_statm(buf_, pages))
      return false;
    kb = pages * page_size_ / 1024;
    return true;
  }

  int64_t count_fds(int32_t pid) override {
    auto path = root_ + "/" + std::to_string(pid) + "/fd";
    auto dir = ::opendir(path.c_str());
    if (dir == nullptr)
      return -1;
    int64_t n = 0;
    while (auto e = ::readdir(dir))
      if (e->d_name[0] != '.')
        ++n;
    ::closedir(dir);
    // Our own listing shows the descriptor of the open directory, too.
    if (pid == self_ && n > 0)
      --n;
    return n;
  }

  bool read_cpu(cpu_times& out) override {
    // Only the first line matters; the rest of /proc/stat can be long.
    auto path = root_ + "/stat";
    return read_small_file(path.c_str(), buf_, 1024)
           && parse_proc_cpu(buf_, out);
  }

  bool read_mem(mem_info& out) override {
    auto path = root_ + "/meminfo";
    return read_small_file(path.c_str(), buf_, 8192)
           && parse_proc_meminfo(buf_, out);
  }

private:
  std::string root_;
  int32_t self_;
  uint64_t page_size_;
  std::string buf_;
};

} // namespace

std::string join_pids(const std::vector<int64_t>& pids) {
  std::string list;
  for (auto pid : pids)
    list += (list.empty() ? "" : ",") + std::to_string(pid);
  return list;
}

bool process_exists(int64_t pid) {
  if (pid <= 0 || pid > std::numeric_limits<int32_t>::max())
    return false;
  auto path = "/proc/" + std::to_string(pid) + "/stat";
  std::string buf;
  proc_stat st;
  return read_small_file(path.c_str(), buf, 4096) && parse_proc_stat(buf, st)
         && st.state != 'Z';
}

int64_t process_rss_kb(int32_t pid) {
  auto path = "/proc/" + std::to_string(pid) + "/statm";
  std::string buf;
  uint64_t pages = 0;
  if (!read_small_file(path.c_str(), buf, 512) || !parse_proc_statm(buf, pages))
    return 0;
  return static_cast<int64_t>(
      pages * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)) / 1024);
}

std::unique_ptr<proc_source> make_proc_source(std::string proc_root) {
  return std::make_unique<real_proc_source>(std::move(proc_root));
}

// -- the tree
// --------------------------------------------------------------------

tree_usage scan_tree(proc_source& src, int32_t root, size_t top_k) {
  tree_usage result;
  std::vector<int32_t> pids;
  src.list_pids(pids);
  std::vector<proc_stat> procs;
  procs.reserve(pids.size());
  proc_stat st;
  for (auto pid : pids) {
    if (src.read_stat(pid, st))
      procs.push_back(std::move(st));
    else
      ++result.vanished;
  }
  result.scanned = static_cast<uint32_t>(procs.size());
  auto page = src.page_size();
  auto to_kb = [page](uint64_t pages) {
    return pages * page / 1024;
  };
  auto root_it = std::find_if(procs.begin(), procs.end(), [root](auto& p) {
    return p.pid == root;
  });
  if (root_it == procs.end()) {
    // The root may be missing from a listing taken an instant too early.
    if (!src.read_stat(root, st))
      return result;
    procs.push_back(std::move(st));
    root_it = procs.end() - 1;
  }
  result.found = true;
  // The exact RSS from statm, for the few processes of the tree only; the
  // stat figure if the process went away in between.
  auto rss_of = [&](const proc_stat& p) {
    uint64_t kb = 0;
    return src.read_rss_kb(p.pid, kb) ? kb : to_kb(p.rss_pages);
  };
  result.root_rss_kb = rss_of(*root_it);
  result.root_threads = root_it->threads;
  result.tree_rss_kb = result.root_rss_kb;
  // Index the processes by parent, then walk down from the root.
  std::vector<uint32_t> by_ppid(procs.size());
  for (uint32_t i = 0; i < by_ppid.size(); ++i)
    by_ppid[i] = i;
  std::sort(by_ppid.begin(), by_ppid.end(), [&](uint32_t a, uint32_t b) {
    return procs[a].ppid < procs[b].ppid;
  });
  std::vector<bool> seen(procs.size(), false);
  std::vector<uint32_t> todo{static_cast<uint32_t>(root_it - procs.begin())};
  seen[todo.front()] = true;
  std::vector<uint32_t> members;
  while (!todo.empty()) {
    auto parent = todo.back();
    todo.pop_back();
    auto& p = procs[parent];
    auto lo = std::lower_bound(by_ppid.begin(), by_ppid.end(), p.pid,
                               [&](uint32_t i, int32_t pid) {
                                 return procs[i].ppid < pid;
                               });
    for (auto i = lo; i != by_ppid.end() && procs[*i].ppid == p.pid; ++i) {
      auto& c = procs[*i];
      // A "child" older than its parent belongs to an earlier owner of the
      // parent's PID; the seen flags stop any cycle such races could make.
      if (seen[*i] || c.start_time < p.start_time)
        continue;
      seen[*i] = true;
      members.push_back(*i);
      todo.push_back(*i);
      if (parent == static_cast<uint32_t>(root_it - procs.begin()))
        ++result.children;
    }
  }
  result.descendants = static_cast<uint32_t>(members.size());
  std::vector<std::pair<uint64_t, uint32_t>> sized; // (KiB, index)
  sized.reserve(members.size());
  for (auto i : members) {
    auto kb = rss_of(procs[i]);
    result.tree_rss_kb += kb;
    sized.emplace_back(kb, i);
  }
  auto k = std::min(top_k, sized.size());
  std::partial_sort(sized.begin(), sized.begin() + k, sized.end(),
                    [&](const auto& a, const auto& b) {
                      if (a.first != b.first)
                        return a.first > b.first;
                      return procs[a.second].pid < procs[b.second].pid;
                    });
  for (size_t j = 0; j < k; ++j) {
    auto& p = procs[sized[j].second];
    result.largest.push_back(
        process_usage{p.pid, p.ppid, sized[j].first, p.comm});
  }
  return result;
}

// -- host usage window
// -----------------------------------------------------------

void host_usage_window::add(const cpu_times* cpu, const mem_info* mem) {
  if (cpu != nullptr) {
    if (!has_first_) {
      first_ = *cpu;
      has_first_ = true;
    } else {
      last_ = *cpu;
      has_last_ = true;
    }
  }
  if (mem != nullptr && mem->total_kb > 0) {
    mem_sum_ += mem->used_percent();
    ++mem_n_;
  }
}

double host_usage_window::cpu_avg() const {
  if (!has_first_ || !has_last_)
    return -1;
  return cpu_busy_percent(first_, last_);
}

double host_usage_window::mem_avg() const {
  return mem_n_ == 0 ? -1 : mem_sum_ / mem_n_;
}

void host_usage_window::restart() {
  if (has_last_) {
    first_ = last_;
    has_last_ = false;
  }
  mem_sum_ = 0;
  mem_n_ = 0;
}

} // namespace gpa::rt

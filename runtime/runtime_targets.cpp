#include "runtime/runtime_targets.hpp"

#include <algorithm>
#include <cerrno>
#include <set>

#include <fcntl.h>
#include <regex.h>
#include <unistd.h>

#include "runtime/files.hpp"
#include "runtime/proc.hpp"

namespace gpa::rt {

namespace {

constexpr runtime_kind maps_kinds[]
    = {runtime_kind::java, runtime_kind::python, runtime_kind::ruby,
       runtime_kind::dotnet};

uint32_t bit(runtime_kind kind) {
  return 1u << static_cast<unsigned>(kind);
}

/// The mapped file's path of a maps line: from the first '/' on (maps
/// lines are "addr perms offset dev inode   path").
std::string_view path_of(std::string_view line) {
  auto slash = line.find('/');
  return slash == std::string_view::npos ? std::string_view{}
                                         : line.substr(slash);
}

/// The last component of a path (after its last '/').
std::string_view file_name(std::string_view path) {
  auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

/// "<dir>/" followed by at least one character.
bool under(std::string_view path, std::string_view dir) {
  auto at = path.find(dir);
  return at != std::string_view::npos && at + dir.size() < path.size();
}

/// Calls `f` with each line of the file at `path` (read in bounded chunks;
/// a line longer than the limit is cut) until it returns false. Returns
/// false if the file cannot be opened.
template <class F>
bool for_each_line(const std::string& path, F&& f) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return false;
  constexpr size_t chunk = 64 << 10;
  constexpr size_t max_line = 8 << 10;
  std::string buf;
  std::string line;
  buf.resize(chunk);
  bool go = true;
  while (go) {
    auto n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    std::string_view data(buf.data(), static_cast<size_t>(n));
    while (go && !data.empty()) {
      auto eol = data.find('\n');
      auto piece = data.substr(0, eol);
      if (line.size() < max_line)
        line.append(piece.substr(0, max_line - line.size()));
      if (eol == std::string_view::npos)
        break;
      go = f(std::string_view{line});
      line.clear();
      data.remove_prefix(eol + 1);
    }
  }
  if (go && !line.empty())
    f(std::string_view{line});
  ::close(fd);
  return true;
}

std::string read_link(const std::string& path) {
  char buf[4096];
  auto n = ::readlink(path.c_str(), buf, sizeof(buf));
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string{};
}

} // namespace

const char* to_string(runtime_kind kind) {
  switch (kind) {
    case runtime_kind::java: return "java";
    case runtime_kind::python: return "python";
    case runtime_kind::ruby: return "ruby";
    case runtime_kind::dotnet: return "dotnet";
    case runtime_kind::nodejs: return "nodejs";
    case runtime_kind::php: return "php";
  }
  return "?";
}

bool maps_line_matches(runtime_kind kind, std::string_view line) {
  auto path = path_of(line);
  if (path.empty())
    return false;
  auto name = file_name(path);
  switch (kind) {
    case runtime_kind::java:
      return path.find("/libjvm.so") != std::string_view::npos;
    case runtime_kind::python:
      return starts_with(name, "python") || starts_with(name, "libpython")
             || under(path, "/site-packages/")
             || under(path, "/dist-packages/");
    case runtime_kind::ruby: return starts_with(name, "ruby");
    case runtime_kind::dotnet: return starts_with(name, "dotnet");
    case runtime_kind::nodejs:
    case runtime_kind::php: return false;
  }
  return false;
}

struct name_pattern::compiled {
  regex_t re{};
};

name_pattern::name_pattern(const std::string& ere) {
  if (ere.empty()) {
    error_ = "the pattern is empty";
    return;
  }
  auto c = std::make_unique<compiled>();
  // pgrep's flags: extended syntax, no subexpressions.
  int rc = ::regcomp(&c->re, ere.c_str(), REG_EXTENDED | REG_NOSUB);
  if (rc != 0) {
    char buf[256];
    ::regerror(rc, &c->re, buf, sizeof(buf));
    error_ = buf;
    return;
  }
  re_ = std::move(c);
}

name_pattern::~name_pattern() {
  if (re_)
    ::regfree(&re_->re);
}

bool name_pattern::matches(const std::string& comm) const {
  return re_ && ::regexec(&re_->re, comm.c_str(), 0, nullptr, 0) == 0;
}

int32_t parse_nspid(std::string_view status) {
  size_t pos = 0;
  while (pos < status.size()) {
    auto eol = status.find('\n', pos);
    auto line = status.substr(pos, eol == std::string_view::npos
                                       ? std::string_view::npos
                                       : eol - pos);
    pos = eol == std::string_view::npos ? status.size() : eol + 1;
    if (!starts_with(line, "NSpid:"))
      continue;
    // The last whitespace-separated field: the innermost namespace.
    auto end = line.find_last_not_of(" \t");
    if (end == std::string_view::npos || end < 6)
      return 0;
    auto begin = line.find_last_of(" \t", end);
    auto field = line.substr(begin + 1, end - begin);
    int64_t value = 0;
    for (char c : field) {
      if (c < '0' || c > '9' || value > 0x7fffffff / 10)
        return 0;
      value = value * 10 + (c - '0');
    }
    return value > 0x7fffffff ? 0 : static_cast<int32_t>(value);
  }
  return 0;
}

int32_t namespace_pid(int32_t pid, const std::string& proc_root) {
  auto text = read_small_file(proc_root + "/" + std::to_string(pid) + "/status",
                              16 << 10);
  if (text.empty())
    return 0;
  auto ns = parse_nspid(text);
  return ns > 0 ? ns : pid;
}

bool process_maps_match(runtime_kind kind, int32_t pid,
                        const std::string& proc_root) {
  bool found = false;
  for_each_line(proc_root + "/" + std::to_string(pid) + "/maps",
                [&](std::string_view line) {
                  found = maps_line_matches(kind, line);
                  return !found;
                });
  return found;
}

bool node_executable(std::string_view exe) {
  return !exe.empty() && file_name(exe).find("node") != std::string_view::npos;
}

bool blacklisted_python(std::string_view cmdline) {
  // gProfiler joins the arguments with spaces and looks for each name.
  std::string joined(cmdline);
  std::replace(joined.begin(), joined.end(), '\0', ' ');
  for (const char* name :
       {"unattended-upgrades", "networkd-dispatcher", "supervisord", "tuned"})
    if (joined.find(name) != std::string::npos)
      return true;
  return false;
}

target_finder::target_finder(std::unique_ptr<proc_source> proc,
                             std::string proc_root, uint64_t recheck_every,
                             const std::string& php_filter)
    : proc_(std::move(proc)),
      php_(php_filter.empty() ? nullptr
                              : std::make_unique<name_pattern>(php_filter)),
      root_(std::move(proc_root)),
      recheck_every_(std::max<uint64_t>(recheck_every, 1)) {}

target_finder::~target_finder() = default;

uint32_t target_finder::classify(int32_t pid, const std::string& exe) {
  uint32_t kinds = 0;
  if (node_executable(exe))
    kinds |= bit(runtime_kind::nodejs);
  auto dir = root_ + "/" + std::to_string(pid);
  ++maps_reads_;
  uint32_t all = 0;
  for (auto k : maps_kinds)
    all |= bit(k);
  for_each_line(dir + "/maps", [&](std::string_view line) {
    for (auto k : maps_kinds)
      if (!(kinds & bit(k)) && maps_line_matches(k, line))
        kinds |= bit(k);
    return (kinds & all) != all;
  });
  if ((kinds & bit(runtime_kind::python))
      && blacklisted_python(read_small_file(dir + "/cmdline", 64 << 10)))
    kinds &= ~bit(runtime_kind::python);
  return kinds;
}

std::map<runtime_kind, std::vector<runtime_target>>
target_finder::scan(const std::vector<runtime_kind>& kinds, uint64_t now_ticks,
                    uint64_t hz) {
  ++scans_;
  std::map<runtime_kind, std::vector<runtime_target>> result;
  for (auto k : kinds)
    result[k];
  uint32_t wanted = 0;
  for (auto k : kinds)
    wanted |= bit(k);
  std::vector<int32_t> pids;
  proc_->list_pids(pids);
  std::sort(pids.begin(), pids.end());
  auto self = proc_->self_pid();
  double per_s = hz == 0 ? 100.0 : static_cast<double>(hz);
  for (auto pid : pids) {
    if (pid == self)
      continue;
    proc_stat st;
    if (!proc_->read_stat(pid, st) || st.state == 'Z')
      continue;
    auto exe = read_link(root_ + "/" + std::to_string(pid) + "/exe");
    auto& k = known_[pid];
    bool fresh = k.scan == 0 || k.start_time != st.start_time || k.exe != exe;
    bool recheck
        = !fresh && k.kinds == 0 && scans_ - k.read_scan >= recheck_every_;
    double cpu = 0;
    if (fresh) {
      double age = now_ticks > st.start_time
                       ? static_cast<double>(now_ticks - st.start_time)
                       : 0.0;
      cpu = age > 0 ? static_cast<double>(st.cpu_ticks) / age : 0.0;
    } else {
      double elapsed = now_ticks > k.seen_at
                           ? static_cast<double>(now_ticks - k.seen_at)
                           : 0.0;
      cpu = elapsed > 0 && st.cpu_ticks >= k.cpu_ticks
                ? static_cast<double>(st.cpu_ticks - k.cpu_ticks) / elapsed
                : 0.0;
    }
    if (fresh || recheck) {
      k.kinds = classify(pid, exe);
      k.read_scan = scans_;
    }
    k.start_time = st.start_time;
    k.exe = std::move(exe);
    k.cpu_ticks = st.cpu_ticks;
    k.seen_at = now_ticks;
    k.scan = scans_;
    // A name can change without an exec (prctl): matched at every scan, as
    // pgrep does.
    auto kinds_now = k.kinds;
    if (php_ && (wanted & bit(runtime_kind::php)) && php_->matches(st.comm))
      kinds_now |= bit(runtime_kind::php);
    if ((kinds_now & wanted) == 0)
      continue;
    runtime_target t;
    t.pid = pid;
    t.comm = st.comm;
    t.age_s = now_ticks > st.start_time
                  ? static_cast<double>(now_ticks - st.start_time) / per_s
                  : 0.0;
    t.cpu_share = cpu;
    t.start_time = st.start_time;
    for (auto kind : kinds)
      if (kinds_now & bit(kind))
        result[kind].push_back(t);
  }
  // Processes gone since the last scan are forgotten.
  for (auto i = known_.begin(); i != known_.end();)
    if (i->second.scan != scans_)
      i = known_.erase(i);
    else
      ++i;
  return result;
}

std::vector<runtime_target> select_targets(std::vector<runtime_target> found,
                                           const target_limits& limits) {
  if (!limits.pids.empty()) {
    std::set<int64_t> only(limits.pids.begin(), limits.pids.end());
    found.erase(std::remove_if(found.begin(), found.end(),
                               [&](const runtime_target& t) {
                                 return !only.count(t.pid);
                               }),
                found.end());
  }
  if (limits.min_age_s > 0)
    found.erase(std::remove_if(found.begin(), found.end(),
                               [&](const runtime_target& t) {
                                 return t.age_s
                                        < static_cast<double>(limits.min_age_s);
                               }),
                found.end());
  if (limits.max_processes > 0
      && found.size() > static_cast<size_t>(limits.max_processes)) {
    std::sort(found.begin(), found.end(), [](auto& a, auto& b) {
      return a.cpu_share != b.cpu_share ? a.cpu_share > b.cpu_share
                                        : a.pid < b.pid;
    });
    found.resize(static_cast<size_t>(limits.max_processes));
  }
  std::sort(found.begin(), found.end(), [](auto& a, auto& b) {
    return a.pid < b.pid;
  });
  return found;
}

} // namespace gpa::rt

#include "runtime/host_info.hpp"

#include "runtime/files.hpp"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include <arpa/inet.h>
#include <gnu/libc-version.h>
#include <ifaddrs.h>
#include <malloc.h>
#include <net/if.h>
#include <netpacket/packet.h>
#include <sys/utsname.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#  include <cpuid.h>
#endif

namespace gpa::rt {

namespace {

std::string trim(std::string x) {
  auto b = x.find_first_not_of(" \t\"'");
  auto e = x.find_last_not_of(" \t\"'\n");
  return b == std::string::npos ? std::string{} : x.substr(b, e - b + 1);
}

/// The largest host file read at start (/proc/cpuinfo of a 1024-CPU host is
/// about 1.5 MB): a file that is not what it should be (a device, a FIFO, an
/// endless stream in its place) is refused, not read forever.
constexpr uint64_t max_host_file = uint64_t{8} << 20;

/// Reads "key<sep>value" lines of a small text file.
std::string field(const std::string& path, const std::string& key, char sep) {
  auto text = read_input_file(path, max_host_file);
  if (!text)
    return {};
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    auto pos = line.find(sep);
    if (pos == std::string::npos)
      continue;
    if (trim(line.substr(0, pos)) == key)
      return trim(line.substr(pos + 1));
  }
  return {};
}

void read_network(host_info& info) {
  ifaddrs* addrs = nullptr;
  if (::getifaddrs(&addrs) != 0)
    return;
  for (auto a = addrs; a != nullptr; a = a->ifa_next) {
    if (!a->ifa_addr || (a->ifa_flags & IFF_LOOPBACK))
      continue;
    if (a->ifa_addr->sa_family == AF_INET && info.private_ip.empty()) {
      char buf[INET_ADDRSTRLEN] = {};
      auto sin = reinterpret_cast<sockaddr_in*>(a->ifa_addr);
      if (::inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf)))
        info.private_ip = buf;
    } else if (a->ifa_addr->sa_family == AF_PACKET
               && info.mac_address.empty()) {
      auto ll = reinterpret_cast<sockaddr_ll*>(a->ifa_addr);
      if (ll->sll_halen == 6) {
        char buf[18];
        std::snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x",
                      ll->sll_addr[0], ll->sll_addr[1], ll->sll_addr[2],
                      ll->sll_addr[3], ll->sll_addr[4], ll->sll_addr[5]);
        info.mac_address = buf;
      }
    }
  }
  ::freeifaddrs(addrs);
}

} // namespace

std::string hypervisor_vendor(const std::string& cpu_flags) {
  // As gProfiler: the "hypervisor" CPU flag (CPUID leaf 1, ECX bit 31), then
  // the vendor string of leaf 0x40000000 (EBX, ECX, EDX).
  bool flagged = false;
  std::istringstream words(cpu_flags);
  for (std::string w; words >> w;)
    flagged = flagged || w == "hypervisor";
  if (!flagged)
    return "NONE";
#if defined(__x86_64__) || defined(__i386__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  __cpuid(0x40000000, a, b, c, d);
  char vendor[13] = {};
  std::memcpy(vendor, &b, 4);
  std::memcpy(vendor + 4, &c, 4);
  std::memcpy(vendor + 8, &d, 4);
  std::string text;
  for (char ch : std::string(vendor))
    if (ch >= 0x20 && ch < 0x7f) // printable ASCII only: it goes into JSON
      text += ch;
  // Kept as CPUID gives it ("bhyve bhyve " keeps its space), as gProfiler
  // does; only an empty or blank one is unknown.
  if (text.find_first_not_of(' ') != std::string::npos)
    return text;
#endif
  return "VM-UNKNOWN";
}

std::string host_name() {
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0)
    return {};
  return host;
}

host_info read_host_info() {
  host_info info;
  info.hostname = host_name();
  utsname u{};
  if (::uname(&u) == 0) {
    info.kernel_release = u.release;
    info.kernel_version = u.version;
    info.system_name = u.sysname;
    info.hardware_type = u.machine;
  }
  info.processors = ::sysconf(_SC_NPROCESSORS_ONLN);
  info.cpu_model_name = field("/proc/cpuinfo", "model name", ':');
  info.cpu_flags = field("/proc/cpuinfo", "flags", ':');
  info.hypervisor = hypervisor_vendor(info.cpu_flags);
  info.run_mode
      = format::run_mode(std::getenv("GPROFILER_IN_K8S") != nullptr,
                         std::getenv("GPROFILER_IN_CONTAINER") != nullptr);
  info.deployment_type = format::deployment_type(info.run_mode);
  auto mem = field("/proc/meminfo", "MemTotal", ':');
  info.memory_capacity_mb = std::atoll(mem.c_str()) / 1024;
  info.os_name = field("/etc/os-release", "NAME", '=');
  info.os_release = field("/etc/os-release", "VERSION_ID", '=');
  info.os_codename = field("/etc/os-release", "VERSION_CODENAME", '=');
  info.libc_type = "glibc";
  info.libc_version = ::gnu_get_libc_version();
  double up = 0;
  if (auto uptime = read_input_file("/proc/uptime", max_host_file);
      uptime && std::istringstream(*uptime) >> up)
    info.spawn_uptime_ms = static_cast<int64_t>(up * 1000);
  read_network(info);
  return info;
}

int64_t wall_clock_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch())
      .count();
}

void limit_malloc_arenas() {
  ::mallopt(M_ARENA_MAX, 2);
}

void release_free_memory() {
  ::malloc_trim(0);
}

} // namespace gpa::rt

#include "runtime/host_info.hpp"

#include "runtime/files.hpp"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <sstream>

#include <arpa/inet.h>
#include <gnu/libc-version.h>
#include <ifaddrs.h>
#include <malloc.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#  include <cpuid.h>
#endif

#include "runtime/files.hpp"

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

/// gProfiler's MAC address: that of the first interface, in the kernel's
/// order, that has an IPv4 address and is not a loopback (what its
/// SIOCGIFCONF walk finds), as SIOCGIFHWADDR gives it, upper case.
std::string mac_address() {
  ifaddrs* addrs = nullptr;
  if (::getifaddrs(&addrs) != 0)
    return {};
  std::string result;
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  for (auto a = addrs; s >= 0 && a != nullptr; a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET
        || (a->ifa_flags & IFF_LOOPBACK))
      continue;
    ifreq req{};
    std::strncpy(req.ifr_name, a->ifa_name, IFNAMSIZ - 1);
    if (::ioctl(s, SIOCGIFHWADDR, &req) != 0)
      continue;
    auto* b = reinterpret_cast<const unsigned char*>(req.ifr_hwaddr.sa_data);
    char buf[18];
    std::snprintf(buf, sizeof(buf), "%02X:%02X:%02X:%02X:%02X:%02X", b[0], b[1],
                  b[2], b[3], b[4], b[5]);
    result = buf;
    break;
  }
  if (s >= 0)
    ::close(s);
  ::freeifaddrs(addrs);
  return result;
}

/// gProfiler's private IP: the source address the host would use towards
/// 8.8.8.8. connect() on a UDP socket only looks the route up: no packet is
/// sent. No route: "" (the header says "unknown").
std::string private_ip() {
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0)
    return {};
  std::string result;
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(53);
  ::inet_pton(AF_INET, "8.8.8.8", &dst.sin_addr);
  sockaddr_in src{};
  socklen_t len = sizeof(src);
  char buf[INET_ADDRSTRLEN] = {};
  if (::connect(s, reinterpret_cast<sockaddr*>(&dst), sizeof(dst)) == 0
      && ::getsockname(s, reinterpret_cast<sockaddr*>(&src), &len) == 0
      && ::inet_ntop(AF_INET, &src.sin_addr, buf, sizeof(buf)))
    result = buf;
  ::close(s);
  return result;
}

/// gProfiler's libc version is what `ldd --version` prints after "GLIBC "
/// ("2.36-9+deb12u4" on Debian, whose ldd names its package version), else
/// the plain version ("(GNU libc) 2.28"). Debian's and Ubuntu's ldd is a
/// script with that text in it: read, not run.
std::string libc_version() {
  auto ldd = read_small_file("/usr/bin/ldd", 64 * 1024);
  auto pos = ldd.find("GLIBC ");
  if (pos != std::string::npos) {
    pos += 6;
    auto end = ldd.find_first_of(")\n", pos);
    if (end != std::string::npos && ldd[end] == ')' && end > pos)
      return ldd.substr(pos, end - pos);
  }
  return ::gnu_get_libc_version();
}

/// Python's round() of a non-negative x / 1024: to nearest, ties to even.
int64_t round_kib_to_mib(int64_t kib) {
  int64_t q = kib / 1024;
  int64_t r = kib % 1024;
  return r > 512 || (r == 512 && q % 2 == 1) ? q + 1 : q;
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
  // "flags" on x86, "Features" on aarch64.
  info.cpu_flags = field("/proc/cpuinfo", "flags", ':');
  if (info.cpu_flags.empty())
    info.cpu_flags = field("/proc/cpuinfo", "Features", ':');
  auto family = field("/proc/cpuinfo", "cpu family", ':');
  auto model = field("/proc/cpuinfo", "model", ':');
  if (!family.empty() && !model.empty())
    info.cpu_arch_codename = format::cpu_arch_codename(
        std::atoi(family.c_str()), std::atoi(model.c_str()));
  info.hypervisor = hypervisor_vendor(info.cpu_flags);
  info.run_mode
      = format::run_mode(std::getenv("GPROFILER_IN_K8S") != nullptr,
                         std::getenv("GPROFILER_IN_CONTAINER") != nullptr);
  info.deployment_type = format::deployment_type(info.run_mode);
  auto mem = field("/proc/meminfo", "MemTotal", ':');
  info.memory_capacity_mb = round_kib_to_mib(std::atoll(mem.c_str()));
  info.os_name = field("/etc/os-release", "NAME", '=');
  info.os_release = field("/etc/os-release", "VERSION_ID", '=');
  info.os_codename = field("/etc/os-release", "VERSION_CODENAME", '=');
  info.libc_type = "glibc";
  info.libc_version = libc_version();
  timespec boot{};
  if (::clock_gettime(CLOCK_BOOTTIME, &boot) == 0)
    info.spawn_uptime_s = static_cast<double>(boot.tv_sec)
                          + static_cast<double>(boot.tv_nsec) / 1e9;
  info.mac_address = mac_address();
  info.private_ip = private_ip();
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

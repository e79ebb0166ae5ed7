#pragma once

// Facts about the host that the .col header's "metadata" object carries.
// runtime/host_info.hpp reads them from the real host.

#include <cstdint>
#include <string>

namespace gpa::format {

/// The host as gProfiler's metadata describes it.
struct host_info {
  std::string hostname;
  std::string kernel_release;
  std::string kernel_version;
  std::string system_name;
  std::string hardware_type;
  int64_t processors = 0;
  std::string cpu_model_name;
  std::string cpu_flags;
  int64_t memory_capacity_mb = 0;
  std::string hypervisor;
  std::string os_name;
  std::string os_release;
  std::string os_codename;
  std::string libc_type;
  std::string libc_version;
  std::string mac_address;
  std::string private_ip;
  /// Host uptime at agent start, milliseconds.
  int64_t spawn_uptime_ms = 0;
};

} // namespace gpa::format

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
  /// gProfiler's code of the Intel server platform (cpu_arch_codename()).
  std::string cpu_arch_codename = "UNKNOWN";
  std::string cpu_flags;
  int64_t memory_capacity_mb = 0;
  /// gProfiler's names: the CPUID vendor ("KVMKVMKVM", "VMwareVMware",
  /// ...), "VM-UNKNOWN" when a hypervisor gives none, "NONE" on bare metal.
  std::string hypervisor = "NONE";
  /// "k8s", "container" or "standalone_executable" (run_mode()).
  std::string run_mode = "standalone_executable";
  /// "k8s", "containers" or "instances" (deployment_type()).
  std::string deployment_type = "instances";
  std::string os_name;
  std::string os_release;
  std::string os_codename;
  std::string libc_type;
  std::string libc_version;
  std::string mac_address;
  std::string private_ip;
  /// Time since boot at agent start (CLOCK_BOOTTIME), in seconds: what
  /// gProfiler writes under "spawn_uptime_ms" on Linux (its value is
  /// `time.clock_gettime(CLOCK_BOOTTIME)`, seconds despite the name).
  double spawn_uptime_s = 0;
};

/// Cloud instance metadata as gProfiler reports it.
struct cloud_metadata {
  /// "aws", "gcp" or "azure"; "unknown" when the host is not known to run on
  /// one of them (or the lookup has not answered yet).
  std::string provider = "unknown";
  /// The header's "cloud_info" object as JSON text: the cloud's fields as
  /// gProfiler names them, without "provider". Empty when the provider is
  /// unknown: the header then has no "cloud_info" (as gProfiler's).
  std::string info_json;
};

/// gProfiler's code of the Intel server platform of a CPU (its
/// `get_cpu_model()`, for custom PMU events): family 6 models 106 "ICX"
/// (Ice Lake), 143 "SPR" (Sapphire Rapids), 207 "EMR" (Emerald Rapids), 173
/// "GNR" (Granite Rapids); anything else "UNKNOWN".
inline std::string cpu_arch_codename(int family, int model) {
  if (family != 6)
    return "UNKNOWN";
  switch (model) {
    case 106: return "ICX";
    case 143: return "SPR";
    case 207: return "EMR";
    case 173: return "GNR";
    default: return "UNKNOWN";
  }
}

/// gProfiler's run mode from its environment markers: GPROFILER_IN_K8S
/// (set by its Kubernetes manifest) gives "k8s", GPROFILER_IN_CONTAINER (set
/// by its container image) "container", else "standalone_executable".
inline std::string run_mode(bool in_k8s, bool in_container) {
  return in_k8s ? "k8s" : in_container ? "container" : "standalone_executable";
}

/// gProfiler's deployment type of a run mode.
inline std::string deployment_type(const std::string& mode) {
  if (mode == "k8s")
    return "k8s";
  if (mode == "container")
    return "containers";
  if (mode == "standalone_executable" || mode == "local_python")
    return "instances";
  return "unknown";
}

} // namespace gpa::format

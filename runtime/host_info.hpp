#pragma once

// Facts about the host for the .col header's "metadata" object, read once at
// start (uname, /proc/cpuinfo, /proc/meminfo, /etc/os-release, network).

#include <cstdint>
#include <string>

#include "format/host.hpp"

namespace gpa::rt {

/// The host as gProfiler's metadata describes it.
using host_info = format::host_info;

/// Reads the real host. Missing facts stay empty ("unknown" in the header);
/// nothing here fails.
host_info read_host_info();

/// gProfiler's hypervisor name for a host with these /proc/cpuinfo flags:
/// "NONE" without the "hypervisor" flag, else the CPUID vendor string
/// ("KVMKVMKVM", "VMwareVMware", "Microsoft Hv", ...) or "VM-UNKNOWN".
std::string hypervisor_vendor(const std::string& cpu_flags);

/// This host's name (gethostname), or "" if it cannot be read.
std::string host_name();

/// Wall clock, milliseconds since the Unix epoch.
int64_t wall_clock_ms();

/// Limits malloc to two arenas: the agent's threads allocate in bursts (one
/// per snapshot), and per-thread arenas would keep each burst's peak.
void limit_malloc_arenas();

/// Gives memory that malloc holds but no longer uses back to the OS (after
/// each snapshot's burst, and under memory pressure).
void release_free_memory();

} // namespace gpa::rt

#pragma once

// What the Java runtime profiler learns about a JVM, as gProfiler's Java
// profiler learns it (gprofiler/profilers/java.py, granulate_utils/java.py):
//
// - the JVM's flags, from the text of the `VM.flags -all` diagnostic command
//   (parse_jvm_flags), filtered and chosen by --java-collect-jvm-flags
//   (select_jvm_flags);
// - the java executable installed with the JVM, whose `-version` text is
//   the "java_version" of the JVM's application metadata
//   (read_jvm_process), and the version parsed from that text
//   (parse_jvm_version) for gProfiler's version check;
// - the ELF id of the mapped libjvm.so (mapped_elf_id);
// - those three as the Java members of its application metadata
//   (java_metadata_fields).
//
// Everything read here is hostile: /proc files of any process, files under
// its root (opened without leaving that root), and the text a JVM (or
// something that maps a file named libjvm.so) prints. Reads are bounded and
// nothing here throws.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gpa::rt {

// -- JVM flags
// ---------------------------------------------------------------------

/// One flag of `VM.flags -all`, as granulate_utils' JvmFlag.
struct jvm_flag {
  std::string name;
  /// bool, int, uint, intx, uintx, uint64_t, size_t, double, ccstr, ...
  std::string type;
  std::string value;
  /// "default", "command line", "ergonomic", ... (JDK 9+); on JDK 8
  /// "non-default" for ":=" and "default" for "=".
  std::string origin;
  /// The kinds between the first braces ("product", "pd", "manageable",
  /// ...), sorted.
  std::vector<std::string> kind;
};

/// The flags in the text of `VM.flags -all` (jcmd's or jattach's output,
/// with their own header lines): each line that has the shape
/// `TYPE NAME [:]= VALUE {KINDS} [{ORIGIN}]`, as granulate_utils' regular
/// expression reads it (a value with spaces or an empty value is not a
/// flag). Lines longer than 4 KiB and flags past the 100,000th are skipped.
std::vector<jvm_flag> parse_jvm_flags(std::string_view text);

/// What --java-collect-jvm-flags asks for.
struct jvm_flags_selection {
  enum class mode : uint8_t { none, all, defaults, list };
  mode what = mode::defaults;
  /// The names asked for (mode::list).
  std::vector<std::string> names;
};

/// gProfiler's reading of --java-collect-jvm-flags: "" or "none": none;
/// "all"; "default"; else a comma-separated list of names (each stripped).
jvm_flags_selection parse_jvm_flags_selection(std::string_view option);

/// gProfiler's choice of flags: never ccstr/ccstrlist flags nor manageable
/// ones; with "default", only flags whose origin is not "default" and whose
/// kinds are none of notproduct, pd and develop; with a list, the flags
/// named (the names not found go to `missing`, sorted). Sorted by name.
std::vector<jvm_flag> select_jvm_flags(std::vector<jvm_flag> flags,
                                       const jvm_flags_selection& selection,
                                       std::vector<std::string>* missing
                                       = nullptr);

/// The flags as gProfiler records them: a JSON list of objects
/// {"name","type","value","origin","kind":[...]}.
std::string jvm_flags_json(const std::vector<jvm_flag>& flags);

// -- the java executable and its version
// -------------------------------------------

/// What the Java profiler needs about a JVM process.
struct jvm_process {
  /// Start time after boot, clock ticks (tells a reused pid apart).
  uint64_t start_time = 0;
  /// Effective user and group: `java -version` runs as them.
  uint32_t uid = 0;
  uint32_t gid = 0;
  /// The pid in the process's own PID namespace (NSpid's last field).
  int32_t nspid = 0;
  /// The java executable installed with the JVM, as the process sees it
  /// (to run inside its mount namespace): "/proc/<nspid>/exe" when the
  /// process is `java` itself (its exe's or argv[0]'s base name), else
  /// `<libjvm.so's directory>/../../bin/java` or `../../../bin/java`
  /// (normalized) when that is an executable regular file under the
  /// process's root; "" when none is found (gProfiler's "/java not found").
  std::string java;
  /// Identity of that executable (device, inode, size, change time), so
  /// that its version is asked once for all JVMs that share it; "" if none.
  std::string java_key;
};

/// Reads /proc/<pid>/{stat,status,exe,cmdline,maps} (bounded). nullopt if
/// the process is gone.
std::optional<jvm_process>
read_jvm_process(int32_t pid, const std::string& proc_root = "/proc");

/// The text a `java -version` run gives gProfiler: its standard error with
/// surrounding whitespace stripped (Python's str.strip()).
std::string java_version_text(std::string_view stderr_text);

/// What gProfiler reads from `java -version` (granulate_utils'
/// parse_jvm_version).
struct jvm_version {
  /// Release numbers: 17.0.15 -> {17, 0, 15}; 1.8.0_292 -> {8, 292}.
  std::vector<uint64_t> version;
  uint64_t build = 0;
  /// The VM's name from the third line ("OpenJDK 64-Bit Server VM").
  std::string vm_name;
  /// "HotSpot", "Zing", "OpenJ9" or "" (unknown).
  std::string vm_type;
  /// Zing's own major.minor.micro; empty for other VMs.
  std::vector<uint64_t> zing_version;
};

/// Parses the text of `java -version`; nullopt (and `why`) where
/// granulate_utils' parser fails.
std::optional<jvm_version> parse_jvm_version(std::string_view text,
                                             std::string* why = nullptr);

/// gProfiler's "simple" version check before async-profiler is loaded:
/// Zing before 20 (and 20.x before 20.08.101, except 20.10+) and HotSpot 6
/// and older are not profiled. "" when supported, else why not.
std::string jvm_unsupported_reason(const jvm_version& v);

// -- the ELF id of a mapped library
// ---------------------------------------------------

/// The id gProfiler gives the first mapped file whose path contains
/// `dso_part` (get_mapped_dso_elf_id): "buildid:<hex>" from its
/// .note.gnu.build-id section, else "sha1:<hex>" of the whole file (at most
/// 1 GiB). The file is opened through /proc/<pid>/map_files (the very file
/// mapped), else by its path under the process's root. nullopt if no such
/// mapping or the file cannot be read.
std::optional<std::string> mapped_elf_id(int32_t pid, std::string_view dso_part,
                                         const std::string& proc_root
                                         = "/proc");

/// The ELF id of an open file (see mapped_elf_id); nullopt if unreadable.
std::optional<std::string> elf_id_of_fd(int fd);

// -- async-profiler
// ---------------------------------------------------------------------

/// Whether this process can open a perf event (the CPU clock of itself):
/// gProfiler's choice of async-profiler's `cpu` mode over `itimer` for
/// --java-async-profiler-mode auto.
bool perf_events_usable();

// -- the application metadata
// -----------------------------------------------------------

/// The Java members of a JVM's application metadata, as gProfiler's
/// JavaMetadata puts them before the common ones:
/// `"java_version":...,"libjvm_elfid":...,"jvm_flags":...` (no braces).
/// `jvm_flags` is JSON already: a list (jvm_flags_json) or a string.
std::string java_metadata_fields(std::string_view java_version,
                                 const std::optional<std::string>& libjvm_elfid,
                                 std::string_view jvm_flags);

} // namespace gpa::rt

#pragma once

// Application identifiers and application metadata as gProfiler builds them
// (gprofiler/metadata/application_identifiers*.py, application_metadata.py).
//
// An app id names what a process runs ("python: -m http.server",
// "gunicorn: my.wsgi:app (/srv/my/wsgi.py)", "java: app.jar"); the merger puts
// it as the frame "appid: <id>" right after the comm. gProfiler computes it
// only for the processes its runtime profilers profile (Python, Java, Ruby)
// and, for perf-only processes, only for Node.js ones; application metadata
// likewise. We have no runtime profilers yet, so the process's runtime is
// detected as those profilers select their processes (/proc/PID/maps
// patterns, gProfiler's blacklist) and the same identifiers run on it.
//
// Everything read from a process is hostile: cmdlines with NULs, newlines or
// invalid UTF-8, huge cmdlines, symlink loops and links pointing outside the
// process's root. Reads are bounded, files of the process (uwsgi .ini, Spark
// properties) are opened under its root (/proc/PID/root) without escaping
// it, and nothing here throws.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gpa::rt {

/// Which of gProfiler's identifier lists applies to a process: the runtime
/// profiler that would profile it.
enum class app_runtime {
  /// No runtime gProfiler identifies: no app id, no application metadata.
  none,
  /// A mapped file matches gProfiler's Python pattern
  /// (`/(lib)?python[^/]*$`, `/site-packages/.`, `/dist-packages/.`) and the
  /// cmdline holds none of its blacklisted names.
  python,
  /// libjvm.so is mapped.
  java,
  /// A mapped file's name starts with "ruby".
  ruby,
  /// The exe's or argv[0]'s base name is "node" (perf's Node metadata).
  node,
};

/// "python", "java", "ruby", "node" or "none".
const char* app_runtime_name(app_runtime r);

/// What gProfiler's identifiers look at, read once from /proc.
struct process_facts {
  /// Process ID.
  int32_t pid = 0;
  /// Parent process ID (0 if unknown).
  int32_t ppid = 0;
  /// argv as psutil's Process.cmdline() splits /proc/PID/cmdline: on NULs
  /// (one trailing NUL dropped), or on spaces when a process rewrote its
  /// title without NULs. Read at most `max_cmdline_bytes`.
  std::vector<std::string> cmdline;
  /// True if the cmdline was longer than what was read.
  bool cmdline_truncated = false;
  /// The working directory (readlink of /proc/PID/cwd), as the process sees
  /// it; "" if unreadable.
  std::string cwd;
  /// The executable (readlink of /proc/PID/exe, " (deleted)" dropped as
  /// psutil does); "" if unreadable (kernel thread).
  std::string exe;
  /// /proc/PID/comm without its newline.
  std::string comm;
  /// Where the process's files are: "<proc_root>/<pid>/root". Tests point it
  /// at a directory of fixture files.
  std::string root;
  /// NAME=VALUE entries of /proc/PID/environ; read only when an identifier
  /// needs them (Java with --app-id-args-filter).
  std::vector<std::string> environ;
  /// The runtime detected from /proc/PID/maps, exe and cmdline.
  app_runtime runtime = app_runtime::none;
};

/// How app ids are made: gProfiler's enrichment options.
struct app_id_options {
  /// --app-id-args-filter: regular expressions (ECMAScript syntax, searched
  /// anywhere in an argument, like Python's re.search); a JVM argument that
  /// matches any is appended to a Java app id: "java: app.jar (-Xmx1g)".
  /// gProfiler applies them to Java's JVM arguments only.
  std::vector<std::string> args_filter;
  /// --java-collect-spark-app-name-as-appid: a Spark executor's app id also
  /// gets ", spark: <spark.app.name>".
  bool java_spark_app_name = false;
  /// Whether gProfiler's Python, Java and Ruby profilers are enabled
  /// (--no-python / --python-mode disabled ...): gProfiler gives app ids to
  /// those runtimes only through their profilers. Node ids come from perf.
  bool python = true;
  bool java = true;
  bool ruby = true;
  /// The agent's own PID: it and its children (perf, which links libpython
  /// on Debian) get no app id or metadata, as gProfiler's profilers skip
  /// their own process and its static perf matches no runtime. 0: none.
  int32_t agent_pid = 0;
};

/// Bytes of /proc/PID/cmdline read at most (argv beyond is cut).
inline constexpr size_t max_cmdline_bytes = 256 * 1024;

/// Reads what the identifiers need about `pid` under `proc_root` (bounded:
/// cmdline, cwd and exe links, comm, maps for the runtime, environ only if
/// `with_environ`). nullopt if the process is gone (or a zombie / kernel
/// thread with neither cmdline nor exe).
std::optional<process_facts>
read_process_facts(int32_t pid, const std::string& proc_root = "/proc",
                   bool with_environ = false);

/// The app id gProfiler gives a process with these facts, without the
/// "appid: " prefix; "" when none. Pure except for reading files under
/// `p.root` (uwsgi .ini files, Spark's properties, symlinks of the path
/// shown). `notes`, if given, receives gProfiler's warnings ("couldn't find
/// uwsgi wsgi module ...") and why an identifier failed.
std::string app_id_from(const process_facts& p, const app_id_options& o,
                        std::vector<std::string>* notes = nullptr);

/// read_process_facts + app_id_from; "" if the process is gone or has none.
std::string app_id_of(int32_t pid, const app_id_options& o,
                      const std::string& proc_root = "/proc");

/// The part of a Java command line gProfiler reads from the JVM
/// (`jcmd PID VM.command_line`): what the java launcher passed to the VM.
struct java_command_line {
  /// The "jvm_args:" options in the JVM's order: JAVA_TOOL_OPTIONS,
  /// JDK_JAVA_OPTIONS, the command line's options (translated as the
  /// launcher does: `-p X` is `--module-path=X`, `-cp` dropped...),
  /// _JAVA_OPTIONS.
  std::vector<std::string> jvm_args;
  /// The first word of "java_command:": the jar of `-jar`, the main class,
  /// or the module[/class] of `-m`; "" if the launcher was given none.
  std::string command;
};

/// Reconstructs what `jcmd VM.command_line` shows from the java launcher's
/// argv and environment ("NAME=VALUE" entries). `@argfiles` are not
/// expanded.
java_command_line
parse_java_command_line(const std::vector<std::string>& argv,
                        const std::vector<std::string>& environ);

// -- application metadata
// ------------------------------------------------------

/// gProfiler's base ApplicationMetadata of a process. Each field is the value
/// or gProfiler's rendering of the error that prevented it ("error:
/// <ExceptionClass>", e.g. "error: KeyError" for an architecture other than
/// x86_64 and aarch64, "error: ELFError" for an exe that is not ELF).
struct application_metadata {
  /// The executable's path (psutil's Process.exe()).
  std::string exe;
  /// The path the process was exec'ed with: AT_EXECFN of /proc/PID/auxv,
  /// read from /proc/PID/mem.
  std::string execfn;
  /// The executable's architecture from its ELF header, as `uname -m` names
  /// it ("x86_64", "aarch64").
  std::string arch;
};

/// Reads the metadata of `pid`; nullopt if the process is gone (or a zombie).
std::optional<application_metadata>
read_application_metadata(int32_t pid, const std::string& proc_root = "/proc");

/// The metadata as the JSON object gProfiler records in the header's
/// "application_metadata" list: {"exe":..,"execfn":..,"arch":..} (compact,
/// ASCII only: other characters \u-escaped as Python's json.dumps does, a
/// byte that is not UTF-8 as \udcXX like Python's surrogateescape).
std::string to_json(const application_metadata& m);

/// Appends `s` to `out` as a JSON string the way Python's json.dumps writes
/// it (ASCII only: other characters \u-escaped, a byte that is not UTF-8 as
/// \udcXX like Python's surrogateescape), for metadata that gProfiler
/// records.
void append_python_json_string(std::string& out, std::string_view s);

/// Whether an executable's base name is a Python interpreter's as gProfiler
/// tells them (`^python([23](\.\d{1,2})?)?$`: python, python3, python3.11).
bool python_executable_name(std::string_view exe);

/// read_application_metadata + to_json; "" if the process is gone.
std::string application_metadata_json(int32_t pid,
                                      const std::string& proc_root = "/proc");

/// The Node.js members gProfiler's NodePerfMetadata puts in front of the
/// common ones, as JSON object members: `"node_version":"v20.20.2",
/// "link":"dynamic","libc":"glibc"` (the version compiled into the
/// executable, read once per file; "link" from its PT_DYNAMIC segment;
/// "libc" "musl" when ld-musl is mapped, null for a static executable).
std::string node_metadata_members(int32_t pid,
                                  const std::string& proc_root = "/proc");

/// Whether gProfiler records application metadata for a process of this
/// runtime (the runtimes it profiles, and Node.js under perf).
bool records_application_metadata(app_runtime r, const app_id_options& o);

/// The application metadata JSON gProfiler records for `pid`: "" when it
/// records none for it (see records_application_metadata) or the process is
/// gone.
std::string application_metadata_of(int32_t pid, const app_id_options& o,
                                    const std::string& proc_root = "/proc");

} // namespace gpa::rt

#pragma once

// The agent's options: one struct per actor, each field with its default and a
// line saying what it does. config/option_table.cpp binds every field to its
// command-line flag, GPROFILER_* environment variable and config-file key.
//
// Precedence, lowest to highest: these defaults, the JSON config file
// (--config), the environment, the command line.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace gpa {

/// How the agent treats a profiler (perf or a runtime).
/// Each runtime accepts the gProfiler mode names listed in option_table.cpp.
using profiler_mode = std::string;

/// What the scheduler does when a tick finds a snapshot still collecting.
enum class overlap_policy {
  /// Cut the profilers that missed their deadline (error stack) and go on.
  cut,
  /// Skip this tick; the running snapshot keeps its deadlines.
  skip,
};

/// Options of the scheduler: snapshot cadence and deadlines.
/// gProfiler's bounds of -d and -f, and of -f when perf unwinds with DWARF
/// (--perf-mode dwarf or smart): the option table, the rules between
/// options and the commands of Performance Studio check the same ones.
inline constexpr int64_t max_duration_s = 86400;
inline constexpr int64_t max_frequency = 10000;
inline constexpr int64_t max_dwarf_frequency = 100;

struct scheduler_options {
  /// Length of one profiling window (-d).
  std::chrono::seconds duration{60};
  /// Sampling frequency in Hz (-f).
  int64_t frequency = 11;
  /// Profile until signalled instead of one window (-c).
  bool continuous = false;
  /// Time a profiler gets after its window ends before it is cut.
  std::chrono::seconds profiler_grace{10};
  /// What a tick does while the previous snapshot is still collecting.
  overlap_policy overlap = overlap_policy::cut;
  /// Only these processes are profiled (--pids); empty means all.
  std::vector<int64_t> pids;
  /// Consecutive failures after which a profiler backs off.
  int64_t backoff_after_failures = 3;
  /// Longest back-off of a failing profiler, in snapshots.
  int64_t backoff_max_snapshots = 16;
};

/// Options of the process reaper.
struct reaper_options {
  /// Children alive at once; further requests wait in the queue.
  int64_t max_children = 16;
  /// Requests that may wait; past this a request fails at once.
  int64_t max_queued = 256;
  /// Time between SIGTERM and SIGKILL when a child is stopped.
  std::chrono::milliseconds kill_grace{2000};
  /// Parent of the agent's private temporary directory.
  std::string temp_root = "/tmp";
};

/// Options of the system profiler (perf).
struct perf_options {
  /// fp, dwarf, smart or disabled (--perf-mode; --no-perf = disabled).
  profiler_mode mode = "fp";
  /// Path or name of the perf binary.
  std::string path = "perf";
  /// Stack bytes copied per sample in dwarf mode.
  int64_t dwarf_stack_size = 8192;
  /// perf is restarted between windows once its RSS passes this many MB.
  int64_t rss_limit_mb = 512;
  /// perf's ring buffer, in pages (-m).
  int64_t mmap_pages = 129;
  /// Never restart perf for its memory use (--perf-no-memory-restart).
  bool no_memory_restart = false;
  /// Time perf gets for each start-up step (test recording, getting ready);
  /// a perf record that is not ready by then is restarted.
  std::chrono::seconds start_timeout{30};
};

/// Options shared by the runtime profilers (Java, Python, ...).
struct runtime_options {
  /// --java-mode: perf-map (JIT symbols via jcmd Compiler.perfmap), ap
  /// (async-profiler through --java-async-profiler-path; perf-map without
  /// it) or disabled.
  profiler_mode java_mode = "perf-map";
  /// --python-mode: auto, pyspy, py-spy or disabled.
  profiler_mode python_mode = "auto";
  /// --ruby-mode: rbspy or disabled.
  profiler_mode ruby_mode = "rbspy";
  /// --php-mode: phpspy or disabled.
  profiler_mode php_mode = "disabled";
  /// --dotnet-mode: dotnet-trace or disabled.
  profiler_mode dotnet_mode = "disabled";
  /// --nodejs-mode: perf, attach-maps or disabled.
  profiler_mode nodejs_mode = "disabled";
  /// Tool paths (names are looked up in PATH).
  std::string jcmd_path = "jcmd";
  /// async-profiler's launcher (asprof, async-profiler 3+), for --java-mode
  /// ap; "" (none: ap falls back to perf-map).
  std::string java_async_profiler_path;
  /// --py-spy-path: py-spy instead of the built-in reader ("" for none).
  std::string py_spy_path;
  std::string rbspy_path = "rbspy";
  std::string phpspy_path = "phpspy";
  std::string dotnet_trace_path = "dotnet-trace";
  /// Target processes a runtime profiler works on at once.
  int64_t concurrency = 4;
};

/// Options of the output writer.
struct output_options {
  /// Directory for profile_<time>.col and the flame graphs (-o); empty: none.
  std::string dir;
  /// Keep only the newest files (--rotating-output).
  bool rotating = false;
  /// Profiles kept with --rotating-output (gProfiler keeps only the last).
  int64_t rotating_keep = 1;
  /// Write no flame-graph page (--no-flamegraph).
  bool no_flamegraph = false;
};

/// Options of the uploader.
struct upload_options {
  /// Send each profile to the backend (-u).
  bool enabled = false;
  /// API token (secret: never logged or printed).
  std::string token;
  /// Service name the profiles are filed under.
  std::string service_name;
  /// Performance Studio's base URL.
  std::string server_host = "https://profiler.granulate.io";
  /// Seconds an upload may take.
  std::chrono::seconds timeout{120};
  /// Skip TLS verification (--no-verify).
  bool no_verify = false;
  /// CA bundle for TLS verification; empty: the system's.
  std::string ca_bundle;
  /// Directory of profiles waiting to be sent.
  std::string spool_dir = "/var/spool/gprofiler-agent";
  /// Bytes the spool may hold.
  int64_t spool_max_bytes = 256ll << 20;
  /// Profiles the spool may hold.
  int64_t spool_max_files = 1000;
  /// The HTTP session is recycled after this many uploads.
  int64_t session_max_uploads = 100;
  /// Pyroscope's base URL; empty: no Pyroscope upload.
  std::string pyroscope_url;
  /// Application name in Pyroscope.
  std::string pyroscope_app = "gprofiler-agent";
  /// Extra Pyroscope tags, "k=v,k=v".
  std::string pyroscope_tags;
};

/// Options of the memory monitor.
struct monitor_options {
  /// Seconds between samples of the agent's footprint.
  std::chrono::seconds interval{5};
  /// RSS thresholds of the agent process, in MB.
  int64_t agent_warning_mb = 40;
  int64_t agent_critical_mb = 80;
  int64_t agent_emergency_mb = 160;
  /// RSS thresholds of the agent's whole process tree, in MB.
  int64_t tree_warning_mb = 600;
  int64_t tree_critical_mb = 1000;
  int64_t tree_emergency_mb = 1500;
  /// Prometheus metrics on this loopback address ("127.0.0.1:9464");
  /// empty: off.
  std::string metrics_address;
};

/// Options of logging.
struct log_options {
  /// Rotating log file; empty: console only.
  std::string file = "/var/log/gprofiler/gprofiler.log";
  /// Size at which the log file rotates, in bytes.
  int64_t rotate_max_size = 5 << 20;
  /// Rotated files kept.
  int64_t rotate_backup_count = 1;
  /// Debug logging (-v).
  bool verbose = false;
};

/// Options of the process as a whole.
struct process_options {
  /// PID file; empty: none.
  std::string pid_file = "/var/run/gprofiler.pid";
  /// Run without root (runtime profilers that need it are skipped).
  bool rootless = false;
};

/// Where the container runtimes listen: the agent asks them for the names
/// of the containers its processes run in (see runtime/containers.hpp).
/// The defaults are where Docker, containerd and CRI-O listen, the paths
/// gProfiler (granulate-utils) asks.
struct container_options {
  /// The Docker Engine API; empty: do not ask Docker.
  std::string docker_socket = "/var/run/docker.sock";
  /// CRI runtimes (containerd, CRI-O), each asked in turn; empty entries
  /// are skipped.
  std::vector<std::string> cri_sockets
      = {"/run/containerd/containerd.sock", "/var/run/crio/crio.sock"};
};

/// The header's metadata and metrics (gProfiler's flags), and where cloud
/// metadata comes from (our extensions: gProfiler's endpoints are fixed).
struct metadata_options {
  /// --disable-metrics-collection: the header's metrics and the upload's
  /// cpu_avg/mem_avg are null.
  bool disable_metrics_collection = false;
  /// --disable-metadata-collection: the header's metadata is the hostname,
  /// the profiling mode and the sampling keys; no cloud lookup.
  bool disable_metadata_collection = false;
  /// gProfiler's external metadata file ({"static": {...}, "application":
  /// {"<pid>": {...}}}); empty: none.
  std::string external_metadata;
  /// Where the machine's DMI data is: it alone decides which cloud's
  /// metadata service, if any, is asked.
  std::string dmi_dir = "/sys/class/dmi/id";
  /// Base URLs of the instance metadata services.
  std::string aws_metadata_url = "http://169.254.169.254";
  std::string gcp_metadata_url = "http://metadata.google.internal";
  std::string azure_metadata_url = "http://169.254.169.254";
};

/// Options of gProfiler's command line whose feature is not built yet (or
/// that gProfiler itself deprecated): parsed, validated and stored so that
/// gProfiler's command lines and files work and --print-config shows them;
/// the agent warns at start when one is set. Each field is named after its
/// flag; see option_table.cpp for what the flag does in gProfiler.
struct compat_options {
  /// --mode: cpu (what the agent does), allocation or none.
  std::string profiling_mode = "cpu";
  int64_t min_duration = 0;
  bool insert_dso_name = false;
  std::string alloc_interval;
  int64_t max_processes_runtime_profiler = 0;
  int64_t skip_system_profilers_above = 0;
  std::string perf_event;
  int64_t perf_event_period = 0;
  std::string hw_events_file;
  /// Deprecated by gProfiler (removed in its 1.42.0).
  int64_t spark_sample_period = 120;
  bool collect_spark_metrics = false;
  bool log_usage = false;
  bool dont_disable_core_files = false;
  bool dont_send_logs = false;
  bool disable_container_names = false;
  std::string profile_api_version;
  bool disable_pidns_check = false;
  bool disable_application_identifiers = false;
  std::vector<std::string> app_id_args_filter;
  bool disable_application_metadata = false;
  int64_t controller_pid = 0;
  /// Deprecated by gProfiler (removed in its 1.49.0).
  bool databricks_job_name_as_service_name = false;
  bool profile_spawned_processes = false;
  bool diagnostics = false;
  std::string heartbeat_file;
  bool enable_heartbeat_server = false;
  int64_t heartbeat_interval = 30;
  std::string api_server = "https://api.granulate.io";
  bool curlify_requests = false;
  bool enable_hw_metrics_collection = false;
  std::string perfspect_path;
  int64_t perfspect_duration = 60;
  bool no_python_versions = false;
  int64_t pyperf_user_stacks_pages = 0;
  bool python_pyperf_verbose = false;
  std::vector<int64_t> python_pyspy_process;
  int64_t python_skip_pyperf_profiler_above = 0;
  bool java_no_version_check = false;
  std::string java_async_profiler_mode = "auto";
  int64_t java_async_profiler_safemode = 0;
  std::string java_async_profiler_features = "probesp,vtable";
  std::string java_async_profiler_args;
  std::string java_safemode = "profiled-oom,profiled-signaled,hserr";
  int64_t java_jattach_timeout = 30;
  int64_t java_async_profiler_mcache = 30;
  bool java_collect_spark_app_name_as_appid = false;
  bool java_async_profiler_no_report_meminfo = false;
  std::string java_collect_jvm_flags = "default";
  bool java_full_hserr = false;
  bool java_include_method_modifiers = false;
  std::string java_line_numbers = "none";
  bool java_collect_thread_names = false;
  bool perf_use_cgroups = false;
  int64_t perf_max_cgroups = 50;
  int64_t perf_max_docker_containers = 0;
  std::string php_proc_filter = "php-fpm";
};

/// Every option of the agent.
struct agent_options {
  scheduler_options scheduler;
  reaper_options reaper;
  perf_options perf;
  runtime_options runtimes;
  output_options output;
  upload_options upload;
  monitor_options monitor;
  log_options log;
  process_options process;
  container_options containers;
  metadata_options metadata;
  compat_options compat;
};

} // namespace gpa

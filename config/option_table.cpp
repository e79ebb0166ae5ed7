#include "config/option_table.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>

#include <regex.h>

#include "config/checks.hpp"

namespace gpa::config {

namespace {

// -- conversions between option_value and the fields of agent_options --------

option_value to_value(bool x) {
  option_value v;
  v.flag = x;
  return v;
}

option_value to_value(int64_t x) {
  option_value v;
  v.integer = x;
  return v;
}

option_value to_value(const std::string& x) {
  option_value v;
  v.text = x;
  return v;
}

option_value to_value(std::chrono::seconds x) {
  return to_value(static_cast<int64_t>(x.count()));
}

option_value to_value(std::chrono::milliseconds x) {
  return to_value(static_cast<int64_t>(x.count()));
}

option_value to_value(const std::vector<int64_t>& x) {
  option_value v;
  v.list = x;
  return v;
}

option_value to_value(const std::vector<std::string>& x) {
  option_value v;
  v.texts = x;
  return v;
}

option_value to_value(overlap_policy x) {
  return to_value(std::string{x == overlap_policy::cut ? "cut" : "skip"});
}

void from_value(const option_value& v, bool& x) {
  x = v.flag;
}

void from_value(const option_value& v, int64_t& x) {
  x = v.integer;
}

void from_value(const option_value& v, std::string& x) {
  x = v.text;
}

void from_value(const option_value& v, std::chrono::seconds& x) {
  x = std::chrono::seconds{v.integer};
}

void from_value(const option_value& v, std::chrono::milliseconds& x) {
  x = std::chrono::milliseconds{v.integer};
}

void from_value(const option_value& v, std::vector<int64_t>& x) {
  x = v.list;
}

void from_value(const option_value& v, std::vector<std::string>& x) {
  x = v.texts;
}

void from_value(const option_value& v, overlap_policy& x) {
  x = v.text == "skip" ? overlap_policy::skip : overlap_policy::cut;
}

/// Binds an option to the field `mem` of the sub-struct `sub`.
template <class Sub, class T>
void bind(option_spec& spec, Sub agent_options::*sub, T Sub::*mem) {
  spec.set = [sub, mem](agent_options& opts, const option_value& v) {
    from_value(v, opts.*sub.*mem);
  };
  spec.get = [sub, mem](const agent_options& opts) {
    return to_value(opts.*sub.*mem);
  };
}

constexpr int64_t i64_max = std::numeric_limits<int64_t>::max();

/// Collects the table; each helper appends one option.
class table_builder {
public:
  std::vector<option_spec> specs;
  std::string group;
  /// Marks the options added while set as not supported yet.
  bool unsupported = false;

  template <class Sub, class T>
  option_spec& add(std::string name, char short_name, value_kind kind,
                   Sub agent_options::*sub, T Sub::*mem, std::string help) {
    option_spec spec;
    spec.name = std::move(name);
    spec.short_name = short_name;
    spec.group = group;
    spec.help = std::move(help);
    spec.kind = kind;
    spec.unsupported = unsupported;
    bind(spec, sub, mem);
    specs.push_back(std::move(spec));
    return specs.back();
  }

  template <class Sub, class T>
  option_spec& integer(std::string name, char short_name,
                       Sub agent_options::*sub, T Sub::*mem, int64_t min,
                       int64_t max, std::string help) {
    auto& spec = add(std::move(name), short_name, value_kind::integer, sub, mem,
                     std::move(help));
    spec.min = min;
    spec.max = max;
    return spec;
  }

  template <class Sub, class T>
  option_spec& choice(std::string name, Sub agent_options::*sub, T Sub::*mem,
                      std::vector<std::string> choices, std::string help) {
    auto& spec = add(std::move(name), 0, value_kind::choice, sub, mem,
                     std::move(help));
    spec.choices = std::move(choices);
    return spec;
  }

  /// A flag of gProfiler's whose feature is not built (see compat_options).
  template <class T>
  option_spec& compat(std::string name, value_kind kind, T compat_options::*mem,
                      std::string help) {
    auto& spec = add(std::move(name), 0, kind, &agent_options::compat, mem,
                     std::move(help));
    spec.unsupported = true;
    return spec;
  }

  option_spec& alias(std::string name, char short_name, std::string target,
                     std::string value, std::string help,
                     value_kind kind = value_kind::flag) {
    option_spec spec;
    spec.name = std::move(name);
    spec.short_name = short_name;
    spec.group = group;
    spec.help = std::move(help);
    spec.kind = kind;
    spec.alias_of = std::move(target);
    spec.alias_value = std::move(value);
    spec.unsupported = unsupported;
    specs.push_back(std::move(spec));
    return specs.back();
  }

  void meta(std::string name, char short_name, value_kind kind,
            std::string help) {
    option_spec spec;
    spec.name = std::move(name);
    spec.short_name = short_name;
    spec.group = group;
    spec.help = std::move(help);
    spec.kind = kind;
    spec.meta = true;
    specs.push_back(std::move(spec));
  }

  /// A runtime profiler: --<rt>-mode plus --no-<rt>.
  /// gProfiler's legacy "none" is accepted for every mode and means
  /// "disabled".
  void runtime(const std::string& rt, profiler_mode runtime_options::*mem,
               std::vector<std::string> modes, const std::string& what,
               const std::string& detail = {}) {
    modes.push_back("none");
    choice(rt + "-mode", &agent_options::runtimes, mem, std::move(modes),
           "How to profile " + what + " processes"
               + (detail.empty() ? std::string{} : " (" + detail + ")"))
        .synonyms
        = {{"none", "disabled"}};
    alias("no-" + rt, 0, rt + "-mode", "disabled",
          "Do not profile " + what + " processes (same as --" + rt
              + "-mode disabled)");
  }
};

std::vector<option_spec> build_table() {
  using ao = agent_options;
  using vk = value_kind;
  table_builder t;

  t.group = "Profiling";
  t.integer("profiling-duration", 'd', &ao::scheduler,
            &scheduler_options::duration, 1, max_duration_s,
            "Length of one profiling window, in seconds");
  t.integer("profiling-frequency", 'f', &ao::scheduler,
            &scheduler_options::frequency, 1, max_frequency,
            "Sampling frequency, in Hz");
  t.add("continuous", 'c', vk::flag, &ao::scheduler,
        &scheduler_options::continuous,
        "Profile window after window until stopped (default: one window)");
  {
    auto& pids = t.add(
        "pids", 0, vk::int_list, &ao::scheduler, &scheduler_options::pids,
        "Profile only these processes, comma-separated; given again, adds to "
        "the list (default: all)");
    pids.min = 1;
    pids.extend = true;
  }
  t.integer("profiler-grace", 0, &ao::scheduler,
            &scheduler_options::profiler_grace, 0, 3600,
            "Seconds a profiler may run past its window before it is cut");
  t.choice("overlap-policy", &ao::scheduler, &scheduler_options::overlap,
           {"cut", "skip"},
           "When a window ends while profilers still run: cut them at their "
           "deadline, or skip the next window");
  t.integer("backoff-after-failures", 0, &ao::scheduler,
            &scheduler_options::backoff_after_failures, 1, 1000,
            "Failures in a row after which a profiler backs off");
  t.integer("backoff-max-snapshots", 0, &ao::scheduler,
            &scheduler_options::backoff_max_snapshots, 1, 10000,
            "Longest back-off of a failing profiler, in windows");
  {
    auto& mode = t.choice("mode", &ao::compat, &compat_options::profiling_mode,
                          {"cpu", "allocation", "none"},
                          "What to profile: cpu (allocation and none are not "
                          "supported yet)");
    mode.unsupported_choices = {"allocation", "none"};
  }
  t.compat("alloc-interval", vk::string, &compat_options::alloc_interval,
           "Allocation sampling interval in bytes, with --mode allocation");
  t.compat("min-duration", vk::integer, &compat_options::min_duration,
           "Runtime profilers skip processes younger than this many "
           "seconds (0: none; perf is not filtered, as in gProfiler)")
      .min
      = 0;
  t.specs.back().unsupported = false;
  t.compat("max-processes-runtime-profiler", vk::integer,
           &compat_options::max_processes_runtime_profiler,
           "Processes a runtime profiler profiles at most, the busiest "
           "first (0: no limit)")
      .min
      = 0;
  t.specs.back().unsupported = false;
  t.compat("skip-system-profilers-above", vk::integer,
           &compat_options::skip_system_profilers_above,
           "Do not run perf if the host has more processes than this at "
           "start (0: no limit)")
      .min
      = 0;
  t.specs.back().unsupported = false;
  t.compat("profile-spawned-processes", vk::flag,
           &compat_options::profile_spawned_processes,
           "Also profile processes started during a window (runtime "
           "profilers that record over the window, for the time left)");
  t.specs.back().unsupported = false;
  t.compat("insert-dso-name", vk::flag, &compat_options::insert_dso_name,
           "Add the DSO name to frames");

  t.group = "Output";
  t.add("output-dir", 'o', vk::string, &ao::output, &output_options::dir,
        "Write profiles and flame graphs to this directory");
  t.add("rotating-output", 0, vk::flag, &ao::output, &output_options::rotating,
        "Keep only the last profile (and its page) in the output "
        "directory, as gProfiler does");
  t.integer("rotating-output-keep", 0, &ao::output,
            &output_options::rotating_keep, 1, 100000,
            "Profiles kept with --rotating-output (ours: gProfiler keeps "
            "1)");
  t.add("no-flamegraph", 0, vk::flag, &ao::output,
        &output_options::no_flamegraph, "Do not write flame-graph pages");
  t.alias("flamegraph", 0, "no-flamegraph", "false",
          "Write flame-graph pages (the default; undoes --no-flamegraph)");

  t.group = "Upload";
  t.add("upload-results", 'u', vk::flag, &ao::upload, &upload_options::enabled,
        "Upload each profile to the server (needs --token, --service-name)");
  t.add("token", 0, vk::string, &ao::upload, &upload_options::token,
        "API token of the server (secret; prefer GPROFILER_TOKEN)");
  t.specs.back().secret = true;
  t.specs.back().rule = text_rule::header;
  t.add("service-name", 0, vk::string, &ao::upload,
        &upload_options::service_name, "Service name the profiles belong to")
      .rule
      = text_rule::header;
  t.add("server-host", 0, vk::string, &ao::upload, &upload_options::server_host,
        "Base URL of gProfiler Performance Studio (https:// or http://)")
      .rule
      = text_rule::url;
  t.integer("server-upload-timeout", 0, &ao::upload, &upload_options::timeout,
            1, 3600, "Seconds an upload may take");
  t.add("no-verify", 0, vk::flag, &ao::upload, &upload_options::no_verify,
        "Do not verify the server's TLS certificate (insecure)");
  t.add("ca-bundle", 0, vk::string, &ao::upload, &upload_options::ca_bundle,
        "CA bundle for TLS verification (default: the system's)");
  t.add("spool-dir", 0, vk::string, &ao::upload, &upload_options::spool_dir,
        "Directory of profiles waiting to be uploaded");
  t.add("spool-max-size", 0, vk::bytes, &ao::upload,
        &upload_options::spool_max_bytes,
        "Bytes the spool may hold (at least 1MB)")
      .min
      = int64_t{1} << 20;
  t.integer("spool-max-files", 0, &ao::upload, &upload_options::spool_max_files,
            1, 1000000, "Profiles the spool may hold");
  t.integer("upload-session-max-uploads", 0, &ao::upload,
            &upload_options::session_max_uploads, 1, 1000000,
            "Uploads after which the HTTP session is recycled");
  t.add("pyroscope-url", 0, vk::string, &ao::upload,
        &upload_options::pyroscope_url,
        "Also send each profile to this Pyroscope server (base URL)")
      .rule
      = text_rule::optional_url;
  t.add("pyroscope-app-name", 0, vk::string, &ao::upload,
        &upload_options::pyroscope_app, "Application name in Pyroscope");
  t.add("pyroscope-tags", 0, vk::string, &ao::upload,
        &upload_options::pyroscope_tags, "Pyroscope tags, k=v,k=v");
  // Read by the log shipper (runtime/log_shipper.hpp); gProfiler's
  // metrics and heartbeats to it are not built.
  t.compat("api-server", vk::string, &compat_options::api_server,
           "Server that receives the agent's logs (with -u, unless "
           "--dont-send-logs)");
  t.specs.back().unsupported = false;
  t.specs.back().rule = text_rule::url;
  t.alias("glogger-server", 0, "api-server", "",
          "Deprecated alias for --api-server", vk::string)
      .rule
      = text_rule::url;
  t.compat("profile-api-version", vk::choice,
           &compat_options::profile_api_version,
           "Upload with a legacy API version")
      .choices
      = {"v1"};
  t.specs.back().allow_empty = true;
  t.specs.back().partial
      = "v1 stops sending the agent's logs to the API server, as in "
        "gProfiler; uploads keep the v2 protocol (the legacy upload API is "
        "not supported yet)";
  t.compat("curlify-requests", vk::flag, &compat_options::curlify_requests,
           "Log each HTTP request as a curl command");
  t.meta("file-path", 0, vk::string,
         "With the upload-file command: the .col file to upload");

  t.group = "System profiler (perf)";
  t.choice("perf-mode", &ao::perf, &perf_options::mode,
           {"fp", "dwarf", "smart", "disabled", "none"},
           "Call graphs from frame pointers (fp), DWARF unwinding (dwarf), "
           "both with the deeper kept per process (smart), or no perf "
           "(disabled; none is the same)")
      .synonyms
      = {{"none", "disabled"}};
  t.alias("no-perf", 0, "perf-mode", "disabled",
          "Do not run perf (same as --perf-mode disabled)");
  t.add("perf-path", 0, vk::string, &ao::perf, &perf_options::path,
        "perf binary to run");
  t.add("perf-dwarf-stack-size", 0, vk::bytes, &ao::perf,
        &perf_options::dwarf_stack_size,
        "Stack bytes copied per sample with --perf-mode dwarf or smart")
      .min
      = 8;
  t.specs.back().max = 65528;
  t.integer("perf-rss-limit-mb", 0, &ao::perf, &perf_options::rss_limit_mb, 16,
            1 << 20, "perf is restarted once its RSS passes this many MB");
  t.integer("perf-mmap-pages", 0, &ao::perf, &perf_options::mmap_pages, 1,
            1 << 20, "perf's ring buffer size, in pages");
  t.integer("perf-start-timeout", 0, &ao::perf, &perf_options::start_timeout, 1,
            3600,
            "Seconds perf gets to start; a perf that hangs longer is "
            "restarted");
  t.add("perf-no-memory-restart", 0, vk::flag, &ao::perf,
        &perf_options::no_memory_restart,
        "Never restart perf for its memory use (--perf-rss-limit-mb)");
  t.compat("perf-use-cgroups", vk::flag, &compat_options::perf_use_cgroups,
           "Run perf on the busiest cgroups only");
  t.compat("perf-max-cgroups", vk::integer, &compat_options::perf_max_cgroups,
           "Cgroups perf profiles at most with --perf-use-cgroups")
      .min
      = 0;
  t.compat("perf-max-docker-containers", vk::integer,
           &compat_options::perf_max_docker_containers,
           "Docker containers perf profiles at most (0: all)")
      .min
      = 0;
  t.compat("perf-event", vk::string, &compat_options::perf_event,
           "Sample this perf event instead of CPU time (perf only)");
  t.compat("perf-event-period", vk::integer, &compat_options::perf_event_period,
           "Sample every N events of --perf-event instead of -f (0: off)")
      .min
      = 0;
  t.compat("hw-events-file", vk::string, &compat_options::hw_events_file,
           "JSON file of custom PMU events for --perf-event");

  // Java (JIT symbols for perf), Node.js, Ruby, PHP, .NET and Python run;
  // PyPerf's options are accepted and said to be unsupported.
  t.group = "Runtime profilers";
  t.runtime("java", &runtime_options::java_mode, {"perf-map", "ap", "disabled"},
            "Java",
            "perf-map: JIT symbols for perf through jattach or jcmd; ap: "
            "async-profiler, with --java-async-profiler-path, else perf-map");
  t.add("jcmd-path", 0, vk::string, &ao::runtimes, &runtime_options::jcmd_path,
        "jcmd binary, used for Java JIT symbols when jattach is not installed");
  t.add("java-async-profiler-path", 0, vk::string, &ao::runtimes,
        &runtime_options::java_async_profiler_path,
        "async-profiler's asprof (async-profiler 3 or later), for --java-mode "
        "ap");
  t.integer("runtime-concurrency", 0, &ao::runtimes,
            &runtime_options::concurrency, 1, 256,
            "Target processes a runtime profiler works on at once");
  t.compat("java-jattach-timeout", vk::integer,
           &compat_options::java_jattach_timeout,
           "Seconds attaching to a JVM may take")
      .min
      = 1;
  t.specs.back().unsupported = false;
  t.runtime("nodejs", &runtime_options::nodejs_mode,
            {"perf", "attach-maps", "disabled"}, "Node.js",
            "attach-maps: make running Node processes write perf maps; perf: "
            "perf inject --jit on the jitdumps of node --perf-prof");
  t.runtime("ruby", &runtime_options::ruby_mode, {"rbspy", "disabled"}, "Ruby",
            "rbspy: each Ruby process recorded for the window");
  t.runtime("php", &runtime_options::php_mode, {"phpspy", "disabled"}, "PHP",
            "phpspy: one per window for the processes of --php-proc-filter");
  t.runtime("dotnet", &runtime_options::dotnet_mode,
            {"dotnet-trace", "disabled"}, ".NET",
            "dotnet-trace: each .NET process traced for the window");
  t.add("rbspy-path", 0, vk::string, &ao::runtimes,
        &runtime_options::rbspy_path,
        "rbspy binary (a name is looked up in PATH)");
  t.add("phpspy-path", 0, vk::string, &ao::runtimes,
        &runtime_options::phpspy_path,
        "phpspy binary (a name is looked up in PATH)");
  t.add("dotnet-trace-path", 0, vk::string, &ao::runtimes,
        &runtime_options::dotnet_trace_path,
        "dotnet-trace binary (a name is looked up in PATH)");
  {
    auto& f = t.compat("php-proc-filter", vk::string,
                       &compat_options::php_proc_filter,
                       "Pattern (extended regular expression) of the names "
                       "of the PHP processes, as pgrep matches them");
    f.unsupported = false;
    f.rule = text_rule::process_pattern;
  }
  t.runtime("python", &runtime_options::python_mode,
            {"auto", "pyperf", "pyspy", "py-spy", "disabled"}, "Python",
            "the built-in CPython 3.7-3.13 reader, or py-spy with "
            "--py-spy-path; pyperf (PyPerf, eBPF) is not built: the built-in "
            "reader is used");
  t.add("py-spy-path", 0, vk::string, &ao::runtimes,
        &runtime_options::py_spy_path,
        "py-spy binary: Python processes are profiled with py-spy instead of "
        "the built-in reader (a name is looked up in PATH)");
  t.compat("no-python-versions", vk::flag, &compat_options::no_python_versions,
           "Do not add package versions to Python frames")
      .unsupported
      = false;
  t.unsupported = true;
  t.compat("pyperf-user-stacks-pages", vk::integer,
           &compat_options::pyperf_user_stacks_pages,
           "User stack pages PyPerf copies (0: its default)")
      .min
      = 0;
  t.compat("python-pyperf-verbose", vk::flag,
           &compat_options::python_pyperf_verbose, "Verbose PyPerf logs");
  {
    auto& f = t.compat("python-pyspy-process", vk::int_list,
                       &compat_options::python_pyspy_process,
                       "Profile these processes as Python even if they do not "
                       "look like it, comma-separated; given again, adds to "
                       "the list");
    f.extend = true;
    f.unsupported = false;
  }
  t.compat("python-skip-pyperf-profiler-above", vk::integer,
           &compat_options::python_skip_pyperf_profiler_above,
           "Do not run PyPerf while the host has more processes than this (0: "
           "no limit)")
      .min
      = 0;
  t.compat("java-no-version-check", vk::flag,
           &compat_options::java_no_version_check,
           "Skip the JVM version check before async-profiler (ap)")
      .unsupported
      = false;
  {
    auto& m = t.compat("java-async-profiler-mode", vk::choice,
                       &compat_options::java_async_profiler_mode,
                       "async-profiler's event (ap): cpu, itimer, or auto "
                       "(cpu if perf events can be opened)");
    m.choices = {"cpu", "itimer", "alloc", "auto"};
    m.unsupported = false;
    m.unsupported_choices = {"alloc"};
  }
  t.compat("java-async-profiler-safemode", vk::integer,
           &compat_options::java_async_profiler_safemode,
           "async-profiler's safemode bits (ap)");
  t.specs.back().min = 0;
  t.specs.back().max = 63;
  t.specs.back().unsupported = false;
  {
    auto& f = t.compat("java-async-profiler-features", vk::string,
                       &compat_options::java_async_profiler_features,
                       "async-profiler's features, comma-separated: probesp, "
                       "vtable, comptask (ap)");
    f.rule = text_rule::choice_list;
    f.choices = {"probesp", "vtable", "comptask"};
    f.unsupported = false;
  }
  t.compat("java-async-profiler-args", vk::string,
           &compat_options::java_async_profiler_args,
           "async-profiler's own options, name[=value],... (ap: passed as "
           "asprof's options where it has them)")
      .unsupported
      = false;
  t.compat("java-safemode", vk::string, &compat_options::java_safemode,
           "Java safemode options, comma-separated (alone: all)")
      .implicit_value
      = "all";
  t.compat("java-async-profiler-mcache", vk::integer,
           &compat_options::java_async_profiler_mcache,
           "async-profiler's mcache option");
  t.specs.back().min = 0;
  t.specs.back().max = 255;
  t.compat("java-collect-spark-app-name-as-appid", vk::flag,
           &compat_options::java_collect_spark_app_name_as_appid,
           "Add a Spark executor's application name to its app id")
      .unsupported
      = false;
  t.compat("java-async-profiler-no-report-meminfo", vk::flag,
           &compat_options::java_async_profiler_no_report_meminfo,
           "Do not collect async-profiler's meminfo");
  {
    auto& f = t.compat("java-collect-jvm-flags", vk::string,
                       &compat_options::java_collect_jvm_flags,
                       "JVM flags each JVM's application metadata records: "
                       "default, all, none or a comma-separated list");
    f.implicit_value = "";
    f.unsupported = false;
  }
  t.compat("java-full-hserr", vk::flag, &compat_options::java_full_hserr,
           "Log whole hs_err files of profiled JVMs");
  t.compat("java-include-method-modifiers", vk::flag,
           &compat_options::java_include_method_modifiers,
           "Add method modifiers to Java frames");
  t.compat("java-line-numbers", vk::choice, &compat_options::java_line_numbers,
           "Line numbers in Java frames")
      .choices
      = {"none", "line-of-function"};
  t.compat("java-collect-thread-names", vk::flag,
           &compat_options::java_collect_thread_names,
           "Record Java thread names per sample (ap)")
      .unsupported
      = false;
  t.unsupported = false;

  t.group = "Child processes";
  t.integer("max-children", 0, &ao::reaper, &reaper_options::max_children, 1,
            4096, "Child processes alive at once");
  t.integer("max-queued-children", 0, &ao::reaper, &reaper_options::max_queued,
            0, 1000000, "Child processes waiting to start");
  t.integer("kill-grace-ms", 0, &ao::reaper, &reaper_options::kill_grace, 0,
            600000, "Milliseconds between SIGTERM and SIGKILL");
  t.add("temp-dir", 0, vk::string, &ao::reaper, &reaper_options::temp_root,
        "Where the agent makes its private temporary directory");

  t.group = "Memory monitor and metrics";
  t.integer("monitor-interval", 0, &ao::monitor, &monitor_options::interval, 1,
            3600, "Seconds between samples of the agent's footprint");
  t.integer("agent-rss-warning-mb", 0, &ao::monitor,
            &monitor_options::agent_warning_mb, 1, i64_max,
            "Agent RSS (MB) that counts as warning pressure");
  t.integer("agent-rss-critical-mb", 0, &ao::monitor,
            &monitor_options::agent_critical_mb, 1, i64_max,
            "Agent RSS (MB) that counts as critical pressure");
  t.integer("agent-rss-emergency-mb", 0, &ao::monitor,
            &monitor_options::agent_emergency_mb, 1, i64_max,
            "Agent RSS (MB) that counts as emergency pressure");
  t.integer("tree-rss-warning-mb", 0, &ao::monitor,
            &monitor_options::tree_warning_mb, 1, i64_max,
            "RSS (MB) of the agent and all its children: warning");
  t.integer("tree-rss-critical-mb", 0, &ao::monitor,
            &monitor_options::tree_critical_mb, 1, i64_max,
            "RSS (MB) of the agent and all its children: critical");
  t.integer("tree-rss-emergency-mb", 0, &ao::monitor,
            &monitor_options::tree_emergency_mb, 1, i64_max,
            "RSS (MB) of the agent and all its children: emergency");
  t.add("metrics-address", 0, vk::string, &ao::monitor,
        &monitor_options::metrics_address,
        "Serve Prometheus metrics on this loopback host:port (default: off)");

  t.group = "Containers, metadata and application ids";
  t.compat("disable-container-names", vk::flag,
           &compat_options::disable_container_names,
           "Do not look up the container names of processes (from Docker "
           "and CRI, see --docker-socket, --cri-socket)")
      .unsupported
      = false;
  t.add("docker-socket", 0, vk::string, &ao::containers,
        &container_options::docker_socket,
        "Docker Engine API socket asked for container names (empty: do not "
        "ask Docker)");
  t.specs.back().rule = text_rule::socket_path;
  {
    auto& cri = t.add("cri-socket", 0, vk::text_list, &ao::containers,
                      &container_options::cri_sockets,
                      "CRI socket (containerd, CRI-O) asked for container "
                      "names; given again, adds to the list (the first "
                      "replaces the defaults; empty: none)");
    cri.rule = text_rule::socket_path;
    cri.extend = true;
  }
  t.compat("disable-pidns-check", vk::flag,
           &compat_options::disable_pidns_check,
           "Skip the start-up check that the agent runs in the host's PID "
           "namespace")
      .unsupported
      = false;
  t.add("disable-metrics-collection", 0, vk::flag, &ao::metadata,
        &metadata_options::disable_metrics_collection,
        "Send no host CPU and memory use (metrics are null)");
  t.add("disable-metadata-collection", 0, vk::flag, &ao::metadata,
        &metadata_options::disable_metadata_collection,
        "Send no system and cloud metadata (only the hostname)");
  t.compat("disable-application-identifiers", vk::flag,
           &compat_options::disable_application_identifiers,
           "Do not add application ids (the 'appid: ...' frame) to stacks")
      .unsupported
      = false;
  auto& args_filter = t.compat(
      "app-id-args-filter", vk::text_list, &compat_options::app_id_args_filter,
      "Regex (ECMAScript) of JVM arguments added to Java app ids; may be "
      "given several times");
  args_filter.extend = true;
  args_filter.unsupported = false;
  t.compat("disable-application-metadata", vk::flag,
           &compat_options::disable_application_metadata,
           "Do not collect application metadata (exe, execfn, arch per "
           "process; profile lines then have no metadata index)")
      .unsupported
      = false;
  t.add("external-metadata", 0, vk::string, &ao::metadata,
        &metadata_options::external_metadata,
        "gProfiler's external metadata file (JSON); its static part goes "
        "into every profile's header");
  t.add("dmi-dir", 0, vk::string, &ao::metadata, &metadata_options::dmi_dir,
        "DMI data that tells the cloud (no match: no metadata request)");
  t.add("aws-metadata-url", 0, vk::string, &ao::metadata,
        &metadata_options::aws_metadata_url,
        "Base URL of AWS's instance metadata service")
      .rule
      = text_rule::url;
  t.add("gcp-metadata-url", 0, vk::string, &ao::metadata,
        &metadata_options::gcp_metadata_url,
        "Base URL of GCP's instance metadata service")
      .rule
      = text_rule::url;
  t.add("azure-metadata-url", 0, vk::string, &ao::metadata,
        &metadata_options::azure_metadata_url,
        "Base URL of Azure's instance metadata service")
      .rule
      = text_rule::url;

  t.group = "Logging";
  t.add("log-file", 0, vk::string, &ao::log, &log_options::file,
        "Rotating log file (empty: console only)");
  t.add("log-rotate-max-size", 0, vk::bytes, &ao::log,
        &log_options::rotate_max_size, "Size at which the log file rotates")
      .min
      = 1024;
  t.integer("log-rotate-backup-count", 0, &ao::log,
            &log_options::rotate_backup_count, 0, 1000,
            "Rotated log files kept");
  t.add("verbose", 'v', vk::flag, &ao::log, &log_options::verbose,
        "Debug logging");
  t.compat("dont-send-logs", vk::flag, &compat_options::dont_send_logs,
           "Do not send logs to the API server (GPROFILER_DONT_SEND_LOGS, "
           "set to any value, does the same)")
      .unsupported
      = false;
  t.compat("log-usage", vk::flag, &compat_options::log_usage,
           "Log the agent's CPU and memory use each window");
  t.compat("diagnostics", vk::flag, &compat_options::diagnostics,
           "Extra verbose diagnostic logs");

  t.group = "Process";
  t.add("pid-file", 0, vk::string, &ao::process, &process_options::pid_file,
        "PID file, also the one-instance-per-host lock (empty: none)");
  t.add("rootless", 0, vk::flag, &ao::process, &process_options::rootless,
        "Run without root; profilers that need it are disabled")
      .unsupported
      = true;
  t.compat("controller-pid", vk::integer, &compat_options::controller_pid,
           "Exit when this process exits (0: none)")
      .min
      = 0;
  t.compat("dont-disable-core-files", vk::flag,
           &compat_options::dont_disable_core_files,
           "Keep the core-file limit (by default it is set to 0 for the "
           "agent and the tools it runs)")
      .unsupported
      = false;
  t.compat("heartbeat-file", vk::string, &compat_options::heartbeat_file,
           "File touched when each window starts (its modification time is "
           "the last window's)")
      .unsupported
      = false;
  t.compat("enable-heartbeat-server", vk::flag,
           &compat_options::enable_heartbeat_server,
           "Profile only on Performance Studio's commands, taken from "
           "heartbeats to --api-server (needs -u, --token, --service-name)")
      .unsupported
      = false;
  t.compat("heartbeat-interval", vk::integer,
           &compat_options::heartbeat_interval,
           "Seconds between heartbeats to the server");
  t.specs.back().min = 1;
  t.specs.back().unsupported = false;
  t.compat("enable-hw-metrics-collection", vk::flag,
           &compat_options::enable_hw_metrics_collection,
           "Collect hardware metrics with PerfSpect");
  t.compat("perfspect-path", vk::string, &compat_options::perfspect_path,
           "PerfSpect binary");
  t.compat("perfspect-duration", vk::integer,
           &compat_options::perfspect_duration,
           "Seconds of each PerfSpect collection")
      .min
      = 1;

  t.group = "Deprecated by gProfiler (accepted, no effect)";
  t.compat("spark-sample-period", vk::integer,
           &compat_options::spark_sample_period, "Removed in gProfiler 1.42.0")
      .deprecated
      = "--spark-sample-period is deprecated and removed in version 1.42.0";
  t.compat("collect-spark-metrics", vk::flag,
           &compat_options::collect_spark_metrics,
           "Removed in gProfiler 1.42.0")
      .deprecated
      = "--collect-spark-metrics is deprecated and removed in version 1.42.0";
  t.compat("databricks-job-name-as-service-name", vk::flag,
           &compat_options::databricks_job_name_as_service_name,
           "Removed in gProfiler 1.49.0")
      .deprecated
      = "--databricks-job-name-as-service-name is deprecated and removed in "
        "version 1.49.0";

  t.group = "Configuration and help";
  t.meta("config", 0, vk::string,
         "Read options from this file, in gProfiler's format (key = value) "
         "or JSON; read after /etc/gprofiler/config.ini (flags and "
         "environment win)");
  t.meta("print-config", 0, vk::flag,
         "Print the effective configuration as JSON and exit");
  t.meta("version", 0, vk::flag, "Print the version and exit");
  t.meta("help", 'h', vk::flag, "Print this help and exit");
  // Synonyms are stored as what they stand for, whatever sets them.
  for (auto& spec : t.specs) {
    if (spec.synonyms.empty() || !spec.set)
      continue;
    spec.set = [set = spec.set, syn = spec.synonyms](agent_options& opts,
                                                     const option_value& v) {
      auto x = v;
      for (auto& [from, to] : syn)
        if (x.text == from)
          x.text = to;
      set(opts, x);
    };
  }
  return std::move(t.specs);
}

std::string lower(std::string x) {
  for (auto& c : x)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return x;
}

std::optional<int64_t> parse_int(const std::string& text) {
  if (text.empty())
    return std::nullopt;
  errno = 0;
  char* end = nullptr;
  auto x = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || end != text.c_str() + text.size())
    return std::nullopt;
  return static_cast<int64_t>(x);
}

std::optional<int64_t> parse_bytes(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])))
    ++i;
  auto number = parse_int(text.substr(0, i));
  if (!number)
    return std::nullopt;
  auto unit = lower(text.substr(i));
  int64_t factor = 1;
  if (unit.empty() || unit == "b")
    factor = 1;
  else if (unit == "k" || unit == "kb" || unit == "kib")
    factor = int64_t{1} << 10;
  else if (unit == "m" || unit == "mb" || unit == "mib")
    factor = int64_t{1} << 20;
  else if (unit == "g" || unit == "gb" || unit == "gib")
    factor = int64_t{1} << 30;
  else
    return std::nullopt;
  if (*number > std::numeric_limits<int64_t>::max() / factor)
    return std::nullopt;
  return *number * factor;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min(
          {row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

/// Why `path` cannot name a unix socket the agent connects to, or "".
/// Empty means "none".
std::string socket_path_error(const std::string& path) {
  if (path.empty())
    return {};
  if (path.front() != '/')
    return "must be an absolute path";
  // sockaddr_un's sun_path holds 108 bytes with the terminating NUL.
  if (path.size() > 107)
    return "must be at most 107 bytes long (a unix socket path)";
  for (unsigned char c : path)
    if (c < 0x20 || c == 0x7f)
      return "must not contain control characters";
  return {};
}

std::string process_pattern_error(const std::string& pattern) {
  if (pattern.empty())
    return "must not be empty";
  if (pattern.front() == '-')
    return "must be a pattern (pgrep options are not supported)";
  for (unsigned char c : pattern)
    if (c < 0x20 || c == 0x7f)
      return "must not contain control characters";
  // pgrep's own flags.
  regex_t re;
  int rc = ::regcomp(&re, pattern.c_str(), REG_EXTENDED | REG_NOSUB);
  if (rc != 0) {
    char buf[256];
    ::regerror(rc, &re, buf, sizeof(buf));
    return std::string{"is not a valid extended regular expression: "} + buf;
  }
  ::regfree(&re);
  return {};
}

} // namespace

std::string unsupported_warning(const option_spec& spec,
                                const option_value& value,
                                const std::string& where) {
  if (!spec.deprecated.empty())
    return spec.deprecated + " (set by " + where + ")";
  if (spec.unsupported && !spec.partial.empty())
    return "--" + spec.name + ": " + spec.partial + " (set by " + where + ")";
  if (spec.unsupported)
    return "--" + spec.name + " is not supported yet: it has no effect (set by "
           + where + ")";
  auto& bad = spec.unsupported_choices;
  if (std::find(bad.begin(), bad.end(), value.text) != bad.end())
    return "--" + spec.name + " " + value.text
           + " is not supported yet: it has no effect (set by " + where + ")";
  return {};
}

std::string option_spec::env_name() const {
  std::string result = "GPROFILER_";
  for (auto c : name)
    result
        += c == '-'
               ? '_'
               : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return result;
}

std::string option_spec::json_key() const {
  auto result = name;
  std::replace(result.begin(), result.end(), '-', '_');
  return result;
}

const std::vector<option_spec>& option_table() {
  static const std::vector<option_spec> table = build_table();
  return table;
}

const option_spec* find_option(const std::string& name) {
  for (auto& spec : option_table())
    if (spec.name == name)
      return &spec;
  return nullptr;
}

const option_spec* find_short_option(char letter) {
  for (auto& spec : option_table())
    if (spec.short_name != 0 && spec.short_name == letter)
      return &spec;
  return nullptr;
}

const option_spec* find_json_key(const std::string& key) {
  for (auto& spec : option_table())
    if (spec.stored() && spec.json_key() == key)
      return &spec;
  return nullptr;
}

std::string check_value(const option_spec& spec, const option_value& value) {
  auto in_range = [&](int64_t x) -> std::string {
    if (x < spec.min)
      return "must be >= " + std::to_string(spec.min);
    if (x > spec.max)
      return "must be <= " + std::to_string(spec.max);
    return {};
  };
  switch (spec.kind) {
    case value_kind::integer:
    case value_kind::bytes: return in_range(value.integer);
    case value_kind::int_list:
      for (auto x : value.list)
        if (auto why = in_range(x); !why.empty())
          return "every element " + why;
      return {};
    case value_kind::choice: {
      auto& cs = spec.choices;
      if (std::find(cs.begin(), cs.end(), value.text) != cs.end()
          || (spec.allow_empty && value.text.empty()))
        return {};
      std::string why = "must be one of";
      for (auto& c : cs)
        why += " " + c;
      return why;
    }
    case value_kind::string:
      switch (spec.rule) {
        case text_rule::any: return {};
        case text_rule::header: return header_value_error(value.text);
        case text_rule::optional_url:
          if (value.text.empty())
            return {};
          [[fallthrough]];
        case text_rule::url: return check_server_url(value.text);
        case text_rule::socket_path: return socket_path_error(value.text);
        case text_rule::process_pattern:
          return process_pattern_error(value.text);
        case text_rule::choice_list: {
          size_t pos = 0;
          while (true) {
            auto comma = value.text.find(',', pos);
            auto item = value.text.substr(pos, comma == std::string::npos
                                                   ? std::string::npos
                                                   : comma - pos);
            auto& cs = spec.choices;
            if (std::find(cs.begin(), cs.end(), item) == cs.end()) {
              std::string why = "must be a comma-separated list of";
              for (auto& c : cs)
                why += " " + c;
              return why;
            }
            if (comma == std::string::npos)
              return {};
            pos = comma + 1;
          }
        }
      }
      return {};
    case value_kind::text_list:
      if (spec.rule == text_rule::socket_path)
        for (auto& x : value.texts)
          if (auto why = socket_path_error(x); !why.empty())
            return "every element " + why;
      return {};
    default: return {};
  }
}

std::optional<option_value> parse_value(const option_spec& spec,
                                        const std::string& text,
                                        std::string& why) {
  option_value v;
  switch (spec.kind) {
    case value_kind::flag: {
      auto t = lower(text);
      if (t == "1" || t == "true" || t == "yes" || t == "on") {
        v.flag = true;
      } else if (t == "0" || t == "false" || t == "no" || t == "off") {
        v.flag = false;
      } else {
        why = "must be true or false";
        return std::nullopt;
      }
      return v;
    }
    case value_kind::integer: {
      auto x = parse_int(text);
      if (!x) {
        why = "must be a whole number";
        return std::nullopt;
      }
      v.integer = *x;
      break;
    }
    case value_kind::bytes: {
      auto x = parse_bytes(text);
      if (!x) {
        why = "must be a size such as 5MB, 512KB or 1048576";
        return std::nullopt;
      }
      v.integer = *x;
      break;
    }
    case value_kind::int_list: {
      size_t pos = 0;
      while (pos <= text.size() && !text.empty()) {
        auto comma = text.find(',', pos);
        auto item = text.substr(
            pos, comma == std::string::npos ? std::string::npos : comma - pos);
        auto x = parse_int(item);
        if (!x) {
          why = "must be comma-separated whole numbers";
          return std::nullopt;
        }
        v.list.push_back(*x);
        if (comma == std::string::npos)
          break;
        pos = comma + 1;
      }
      break;
    }
    case value_kind::string:
    case value_kind::choice: v.text = text; break;
    case value_kind::text_list: v.texts.push_back(text); break;
  }
  why = check_value(spec, v);
  if (!why.empty())
    return std::nullopt;
  return v;
}

std::string format_value(const option_spec& spec, const option_value& value) {
  switch (spec.kind) {
    case value_kind::flag: return value.flag ? "true" : "false";
    case value_kind::integer:
    case value_kind::bytes: return std::to_string(value.integer);
    case value_kind::int_list: {
      std::string result;
      for (auto x : value.list) {
        if (!result.empty())
          result += ',';
        result += std::to_string(x);
      }
      return result;
    }
    case value_kind::text_list: {
      std::string result;
      for (auto& x : value.texts)
        result += (result.empty() ? "" : " ") + x;
      return result;
    }
    default:
      if (spec.secret && !value.text.empty())
        return std::string{placeholder};
      if (spec.rule == text_rule::url || spec.rule == text_rule::optional_url)
        return redact_url(value.text, placeholder);
      return value.text;
  }
}

bool holds_placeholder(const option_spec& spec, const std::string& text) {
  if (spec.secret)
    return text == placeholder;
  if (spec.rule != text_rule::url && spec.rule != text_rule::optional_url)
    return false;
  server_url url;
  return check_server_url(text, &url).empty() && url.password == placeholder;
}

std::string shown_value(const option_spec& spec, const std::string& text) {
  if (spec.secret)
    return std::string{placeholder};
  auto raw = text;
  if (spec.rule == text_rule::url || spec.rule == text_rule::optional_url) {
    // The password masked; a query or fragment (which may hold a key)
    // marked as there without its text.
    raw = redact_url(text);
    if (auto cut = text.find_first_of("?#"); cut != std::string::npos)
      raw += text[cut] + std::string{"..."};
  }
  std::string result;
  for (auto ch : raw) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '\r') {
      result += "\\r";
    } else if (c == '\n') {
      result += "\\n";
    } else if (c < 0x20 || c == 0x7f) {
      static constexpr char hex[] = "0123456789abcdef";
      result += "\\x";
      result += hex[c >> 4];
      result += hex[c & 0xf];
    } else {
      result += ch;
    }
  }
  return result;
}

std::string suggest(const std::string& name) {
  std::string best;
  size_t best_distance = 3; // suggest only close matches
  for (auto& spec : option_table()) {
    auto d = edit_distance(name, spec.name);
    if (d < best_distance) {
      best_distance = d;
      best = spec.name;
    }
  }
  return best;
}

} // namespace gpa::config

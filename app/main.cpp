// gprofiler-agent's entry point: parse the configuration, then run the agent
// or one of its subcommands. Configuration mistakes exit with status 2 and
// one line on stderr.

#include <cstdio>
#include <exception>
#include <iostream>
#include <map>
#include <memory>

#include <spdlog/spdlog.h>

#include "app/agent.hpp"
#include "app/commands.hpp"
#include "config/checks.hpp"
#include "config/load.hpp"
#include "config/version.hpp"
#include "runtime/error.hpp"
#include "runtime/files.hpp"
#include "runtime/host_info.hpp"
#include "runtime/log.hpp"
#include "runtime/metrics_server.hpp"
#include "runtime/process_env.hpp"

extern char** environ;

namespace {

int fail_config(const std::string& msg) {
  std::fprintf(stderr, "gprofiler-agent: error: %s\n", msg.c_str());
  return 2;
}

/// The config file reader: runtime's bounded one (regular files or stdin,
/// no waiting on a FIFO, at most `max_bytes`).
std::string read_config_file(const std::string& path, uint64_t max_bytes) {
  auto text = gpa::rt::read_input_file(path, max_bytes);
  if (!text) {
    auto& ctx = text.error().context();
    auto why = ctx.size() == 1 && ctx.match_element<std::string>(0)
                   ? ctx.get_as<std::string>(0)
                   : gpa::describe(text.error());
    throw gpa::config::config_error("config file " + path + ": " + why);
  }
  return std::move(*text);
}

/// The default config file to read: gProfiler's /etc/gprofiler/config.ini,
/// or GPA_DEFAULT_CONFIG's file (empty: none); "" when it does not exist,
/// which is not a mistake (a file that exists and cannot be read is).
std::string default_config_file(const std::map<std::string, std::string>& env) {
  std::string path = gpa::config::default_config_path;
  if (auto i = env.find(gpa::config::default_config_env); i != env.end())
    path = i->second;
  if (path.empty() || gpa::rt::path_absent(path))
    return {};
  return path;
}

/// The log shipper of gProfiler's RemoteLogsHandler: the API server, the
/// token, and the metadata of every batch; TLS as the uploads' (--no-verify,
/// --ca-bundle; the uploader warns about --no-verify).
gpa::rt::log_shipper_options shipper_options(const gpa::agent_options& o) {
  gpa::rt::log_shipper_options s;
  s.api_server = o.compat.api_server;
  s.token = o.upload.token;
  s.metadata.run_id = gpa::rt::random_run_id();
  s.metadata.gprofiler_version = gpa::agent_version;
  s.metadata.service_name = o.upload.service_name;
  s.metadata.hostname = gpa::rt::host_name();
  s.http.verify = !o.upload.no_verify;
  s.http.ca_bundle = o.upload.ca_bundle;
  s.http.user_agent = std::string{"gprofiler-agent/"} + gpa::agent_version;
  return s;
}

} // namespace

/// Reads the configuration again as at start (SIGHUP): the same arguments
/// and environment, the config files as they are now. Returns what is wrong
/// with it, or "" with `out` set.
std::string reread_config(const std::vector<std::string>& args,
                          const std::map<std::string, std::string>& env,
                          gpa::agent_options& out) {
  try {
    auto inv = gpa::config::parse(args, env, read_config_file,
                                  default_config_file(env));
    gpa::config::validate(inv);
    for (auto& w : inv.warnings)
      gpa::log::get("agent")->warn("{}", w);
    out = std::move(inv.options);
    return {};
  } catch (const gpa::config::config_error& err) {
    return err.what();
  }
}

int main(int argc, char** argv) {
  // The Node.js profiler's own child: no configuration, no logging setup.
  if (argc >= 2 && std::string(argv[1]) == "node-attach")
    return gpa::run_node_attach(argc - 2, argv + 2);
  gpa::config::invocation inv;
  std::vector<std::string> args(argv + 1, argv + argc);
  std::map<std::string, std::string> env;
  try {
    env = gpa::config::environment_map(environ);
    inv = gpa::config::parse(args, env, read_config_file,
                             default_config_file(env));
    if (inv.help) {
      std::cout << gpa::config::help_text();
      return 0;
    }
    if (inv.version) {
      std::cout << "gprofiler-agent " << gpa::agent_version << "\n";
      return 0;
    }
    gpa::config::validate(inv);
  } catch (const gpa::config::config_error& err) {
    return fail_config(err.what());
  }
  if (auto& addr = inv.options.monitor.metrics_address; !addr.empty()) {
    gpa::rt::loopback_endpoint ep;
    if (auto why = gpa::rt::parse_loopback_address(addr, ep); !why.empty())
      return fail_config("--metrics-address: " + why);
  }
  if (inv.print_config) {
    std::cout << gpa::config::to_json(inv.options);
    return 0;
  }
  if (inv.command == "collapse-perf")
    return gpa::run_collapse_perf(inv);
  if (inv.command == "flamegraph")
    return gpa::run_flamegraph(inv);
  // A log file that is not one (a FIFO, a device, a link) is a mistake in
  // the flags: exit 2, before anything else happens. One that cannot be
  // created (a user without root) leaves the console.
  bool unsafe_log = false;
  auto log_error = gpa::log::setup(inv.options.log, &unsafe_log);
  if (!log_error.empty() && unsafe_log)
    return fail_config(log_error);
  // As gProfiler: the server gets every line from the first on.
  bool ships = gpa::config::ships_logs(inv, env);
  if (ships)
    gpa::log::start_shipping(shipper_options(inv.options));
  if (!log_error.empty())
    gpa::log::get("agent")->warn("{}; logging to the console only", log_error);
  if (ships)
    gpa::log::get("agent")->info(
        "sending the agent's logs to {} (--dont-send-logs: not)",
        gpa::config::redact_url(
            gpa::rt::logs_url(inv.options.compat.api_server)));
  for (auto& w : inv.warnings)
    gpa::log::get("agent")->warn("{}", w);
  if (inv.command == "upload-file") {
    int status = gpa::run_upload_file(inv);
    gpa::log::shutdown();
    return status;
  }
  // Before any thread exists: the agent's main thread alone takes SIGINT,
  // SIGTERM, SIGHUP, SIGUSR1 and SIGUSR2 (subcommands keep the default:
  // Ctrl-C stops them).
  gpa::rt::block_agent_signals();
  int status = 1;
  try {
    std::unique_ptr<gpa::rt::pid_file> pid;
    if (!inv.options.process.pid_file.empty())
      pid = std::make_unique<gpa::rt::pid_file>(inv.options.process.pid_file);
    status = gpa::run_agent(inv.options, [&](gpa::agent_options& out) {
      return reread_config(args, env, out);
    });
  } catch (const gpa::rt::start_error& ex) {
    gpa::log::get("agent")->critical("{}", ex.what());
    status = ex.status();
  } catch (const std::exception& ex) {
    gpa::log::get("agent")->critical("{}", ex.what());
    status = 1;
  }
  gpa::log::shutdown();
  return status;
}

// The options of a session: the agent's own, a command's over them, and
// what a reload (SIGHUP) may change while the agent runs.

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "app/agent.hpp"
#include "config/load.hpp"

namespace gpa {

namespace {

std::string compact(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w{buf};
  v.Accept(w);
  return buf.GetString();
}

} // namespace

std::string session_options(const agent_options& base,
                            const control_command* cmd, agent_options& out) {
  out = base;
  if (!cmd)
    return {};
  if (cmd->duration_s < 0 || cmd->duration_s > max_duration_s)
    return "duration " + std::to_string(cmd->duration_s)
           + " s is out of range (1 to " + std::to_string(max_duration_s) + ")";
  if (cmd->frequency < 0 || cmd->frequency > max_frequency)
    return "frequency " + std::to_string(cmd->frequency)
           + " Hz is out of range (1 to " + std::to_string(max_frequency) + ")";
  if (cmd->duration_s > 0)
    out.scheduler.duration = std::chrono::seconds(cmd->duration_s);
  if (cmd->frequency > 0)
    out.scheduler.frequency = cmd->frequency;
  // gProfiler's rule for -f with DWARF unwinding.
  if (cmd->frequency > max_dwarf_frequency
      && (out.perf.mode == "dwarf" || out.perf.mode == "smart"))
    return "frequency " + std::to_string(cmd->frequency) + " Hz is above "
           + std::to_string(max_dwarf_frequency)
           + ", the limit with --perf-mode " + out.perf.mode;
  for (auto pid : cmd->pids)
    if (pid <= 0 || pid > INT32_MAX)
      return "pid " + std::to_string(pid) + " is not a process id";
  if (!cmd->pids.empty())
    out.scheduler.pids = cmd->pids;
  out.scheduler.continuous = cmd->continuous;
  return {};
}

agent_options reloaded_options(const agent_options& running,
                               const agent_options& next,
                               std::vector<std::string>& changed,
                               std::vector<std::string>& kept) {
  // What the sessions are built from applies; what the lasting actors, the
  // process or the start-up rules were built from stays until a restart.
  agent_options merged = next;
  merged.scheduler.continuous = running.scheduler.continuous;
  merged.reaper = running.reaper;
  merged.output = running.output;
  merged.upload = running.upload;
  merged.monitor = running.monitor;
  merged.log = running.log;
  merged.process = running.process;
  merged.containers = running.containers;
  merged.metadata = running.metadata;
  auto& c = merged.compat;
  auto& r = running.compat;
  c.skip_system_profilers_above = r.skip_system_profilers_above;
  c.log_usage = r.log_usage;
  c.dont_disable_core_files = r.dont_disable_core_files;
  c.dont_send_logs = r.dont_send_logs;
  c.disable_container_names = r.disable_container_names;
  c.profile_api_version = r.profile_api_version;
  c.disable_pidns_check = r.disable_pidns_check;
  c.disable_application_identifiers = r.disable_application_identifiers;
  c.app_id_args_filter = r.app_id_args_filter;
  c.disable_application_metadata = r.disable_application_metadata;
  c.controller_pid = r.controller_pid;
  c.diagnostics = r.diagnostics;
  c.heartbeat_file = r.heartbeat_file;
  c.enable_heartbeat_server = r.enable_heartbeat_server;
  c.heartbeat_interval = r.heartbeat_interval;
  c.api_server = r.api_server;
  c.curlify_requests = r.curlify_requests;
  c.php_proc_filter = r.php_proc_filter;
  c.java_collect_spark_app_name_as_appid
      = r.java_collect_spark_app_name_as_appid;

  rapidjson::Document before, after, applied;
  before.Parse(config::to_json(running).c_str());
  after.Parse(config::to_json(next).c_str());
  applied.Parse(config::to_json(merged).c_str());
  if (!before.IsObject() || !after.IsObject() || !applied.IsObject())
    return merged;
  for (auto& m : after.GetObject()) {
    auto old = before.FindMember(m.name);
    if (old != before.MemberEnd() && old->value == m.value)
      continue;
    std::string name = m.name.GetString();
    auto was = old != before.MemberEnd() ? compact(old->value) : "(none)";
    auto now = applied.FindMember(m.name);
    if (now != applied.MemberEnd() && now->value == m.value)
      changed.push_back(name + ": " + was + " -> " + compact(m.value));
    else
      kept.push_back(name + " (" + was + " -> " + compact(m.value) + ")");
  }
  return merged;
}

} // namespace gpa

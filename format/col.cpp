#include "format/col.hpp"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <map>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "format/json.hpp"
#include "format/time.hpp"

namespace gpa::format {

namespace {

/// Scales `stacks` so that their counts add up to `target` (largest
/// remainder method); stacks left at 0 are removed unless `keep_zeros`.
void scale_to(std::vector<stack_count>& stacks, uint64_t target,
              bool keep_zeros = false) {
  uint64_t total = 0;
  for (auto& s : stacks)
    total += s.count;
  if (total == 0 || total == target)
    return;
  struct share {
    size_t index;
    double remainder;
  };
  std::vector<share> shares;
  shares.reserve(stacks.size());
  uint64_t assigned = 0;
  for (size_t i = 0; i < stacks.size(); ++i) {
    double exact = static_cast<double>(stacks[i].count)
                   * static_cast<double>(target) / static_cast<double>(total);
    auto whole = static_cast<uint64_t>(exact);
    shares.push_back({i, exact - static_cast<double>(whole)});
    stacks[i].count = whole;
    assigned += whole;
  }
  std::sort(shares.begin(), shares.end(), [](auto& a, auto& b) {
    return a.remainder != b.remainder ? a.remainder > b.remainder
                                      : a.index < b.index;
  });
  for (size_t k = 0; assigned < target && k < shares.size(); ++k, ++assigned)
    ++stacks[shares[k].index].count;
  if (keep_zeros)
    return;
  stacks.erase(std::remove_if(stacks.begin(), stacks.end(),
                              [](auto& s) {
                                return s.count == 0;
                              }),
               stacks.end());
}

/// An error's frame: "[Profiling <what>: <reason>]", safe for the format.
std::string error_frame_text(const profiler_error& e) {
  std::string frame = "[Profiling " + e.what;
  if (!e.reason.empty())
    frame += ": " + e.reason;
  frame += "]";
  return sanitize_frame(frame);
}

uint64_t total_of(const process_stacks& p) {
  uint64_t n = 0;
  for (auto& s : p.stacks)
    n += s.count;
  return n;
}

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

void kv(json_writer& w, const char* key, const std::string& value) {
  w.Key(key);
  if (value.empty())
    w.String("unknown");
  else
    w.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
}

void kv(json_writer& w, const char* key, int64_t value) {
  w.Key(key);
  w.Int64(value);
}

} // namespace

namespace {

/// Average number of ';' of the distinct stacks of one process (gProfiler
/// counts them in "comm;frame;...", so it is the frame count).
double average_depth(const std::vector<const process_stacks*>& entries) {
  uint64_t stacks = 0;
  uint64_t separators = 0;
  for (auto* p : entries)
    for (auto& s : p->stacks) {
      ++stacks;
      separators += static_cast<uint64_t>(
          std::count(s.stack.begin(), s.stack.end(), ';'));
    }
  return stacks == 0
             ? 0.0
             : static_cast<double>(separators) / static_cast<double>(stacks);
}

using by_pid = std::map<int32_t, std::vector<const process_stacks*>>;

by_pid group_by_pid(const profile_part& part, uint64_t& total) {
  by_pid result;
  for (auto& p : part.processes) {
    result[p.pid].push_back(&p);
    total += total_of(p);
  }
  return result;
}

} // namespace

profile_part combine_smart(const profile_part& fp, const profile_part& dwarf) {
  profile_part result;
  result.snapshot_id = fp.snapshot_id;
  result.profiler = fp.profiler;
  result.errors = fp.errors;
  result.errors.insert(result.errors.end(), dwarf.errors.begin(),
                       dwarf.errors.end());
  uint64_t fp_total = 0;
  uint64_t dwarf_total = 0;
  auto fp_pids = group_by_pid(fp, fp_total);
  auto dwarf_pids = group_by_pid(dwarf, dwarf_total);
  if (dwarf_total == 0 || fp_total == 0) {
    result.processes = dwarf_total == 0 ? fp.processes : dwarf.processes;
    return result;
  }
  double ratio
      = static_cast<double>(fp_total) / static_cast<double>(dwarf_total);
  for (auto& [pid, fp_entries] : fp_pids) {
    auto d = dwarf_pids.find(pid);
    if (d == dwarf_pids.end()
        || average_depth(fp_entries) > average_depth(d->second)) {
      for (auto* p : fp_entries)
        result.processes.push_back(*p);
      continue;
    }
    // The DWARF stacks of this process, scaled as one set, then split back
    // into their (pid, comm) entries.
    std::vector<stack_count> all;
    std::vector<size_t> owner;
    uint64_t total = 0;
    for (size_t i = 0; i < d->second.size(); ++i)
      for (auto& s : d->second[i]->stacks) {
        all.push_back(s);
        owner.push_back(i);
        total += s.count;
      }
    scale_to(
        all,
        static_cast<uint64_t>(std::llround(static_cast<double>(total) * ratio)),
        true);
    std::vector<process_stacks> out;
    for (auto* p : d->second) {
      process_stacks copy = *p;
      copy.stacks.clear();
      out.push_back(std::move(copy));
    }
    for (size_t k = 0; k < all.size(); ++k)
      if (all[k].count > 0)
        out[owner[k]].stacks.push_back(std::move(all[k]));
    for (auto& p : out)
      if (!p.stacks.empty())
        result.processes.push_back(std::move(p));
  }
  return result;
}

std::vector<merged_stack> merge_parts(const std::vector<profile_part>& all,
                                      const std::string& system_profiler,
                                      const enrich_function& enrich) {
  // With --perf-mode smart, the two recordings become one system part.
  const profile_part* fp = nullptr;
  const profile_part* dwarf = nullptr;
  for (auto& part : all) {
    if (part.profiler == system_profiler)
      fp = &part;
    else if (part.profiler == smart_dwarf_profiler)
      dwarf = &part;
  }
  profile_part smart;
  std::vector<const profile_part*> view;
  for (auto& part : all)
    if (dwarf == nullptr
        || (&part != fp && part.profiler != smart_dwarf_profiler))
      view.push_back(&part);
  if (dwarf != nullptr) {
    profile_part none;
    none.profiler = system_profiler;
    smart = combine_smart(fp != nullptr ? *fp : none, *dwarf);
    smart.profiler = system_profiler;
    view.push_back(&smart);
  }
  // pid -> perf's samples of that pid.
  std::unordered_map<int32_t, uint64_t> perf_samples;
  for (auto* part : view)
    if (part->profiler == system_profiler)
      for (auto& p : part->processes)
        perf_samples[p.pid] += total_of(p);
  // pids a runtime profiler covered: their perf stacks are replaced.
  std::unordered_set<int32_t> replaced;
  for (auto* part : view)
    if (part->profiler != system_profiler)
      for (auto& p : part->processes)
        if (!p.stacks.empty())
          replaced.insert(p.pid);
  // gProfiler's rule for a runtime profiler's error about one process when
  // perf ran: it is attached to perf's stacks of that process, as the frame
  // after the comm; a process perf has no samples of loses it (one made-up
  // sample would be worse). Without perf, errors stand as they are.
  bool perf_ran = std::any_of(view.begin(), view.end(), [&](auto* part) {
    return part->profiler == system_profiler;
  });
  std::unordered_map<int32_t, std::string> error_frame;
  if (perf_ran)
    for (auto* part : view)
      if (part->profiler != system_profiler)
        for (auto& e : part->errors)
          if (e.pid > 0 && !replaced.count(e.pid) && perf_samples[e.pid] > 0)
            error_frame.emplace(e.pid, error_frame_text(e));
  // The enrichment of each process, looked up once per snapshot.
  std::unordered_map<int32_t, process_enrichment> enriched;
  auto enrichment_of
      = [&](int32_t pid, const std::string& comm) -> process_enrichment {
    if (!enrich || pid <= 0)
      return {};
    auto i = enriched.find(pid);
    if (i == enriched.end())
      i = enriched.emplace(pid, enrich(pid, comm)).first;
    return i->second;
  };
  std::map<std::tuple<uint32_t, std::string, std::string>, uint64_t> lines;
  // gProfiler's _enrich_and_finalize_stack: the app id goes between the
  // first frame (the comm) and the others.
  auto line_of = [](const std::string& stack, const std::string& appid) {
    if (appid.empty())
      return stack;
    auto frame = sanitize_frame("appid: " + appid);
    auto semi = stack.find(';');
    if (semi == std::string::npos)
      return stack + ";" + frame;
    return stack.substr(0, semi + 1) + frame + stack.substr(semi);
  };
  auto add = [&](const process_stacks& p,
                 const std::vector<stack_count>& stacks) {
    auto e = enrichment_of(p.pid, p.comm);
    auto safe = sanitize_frame(e.container.empty() ? p.container : e.container);
    for (auto& s : stacks)
      if (s.count > 0)
        lines[{e.app_metadata, safe, line_of(s.stack, e.appid)}] += s.count;
  };
  for (auto* pp : view) {
    auto& part = *pp;
    bool is_system = part.profiler == system_profiler;
    for (auto& p : part.processes) {
      if (is_system) {
        if (replaced.count(p.pid))
          continue;
        auto f = error_frame.find(p.pid);
        if (f == error_frame.end()) {
          add(p, p.stacks);
          continue;
        }
        auto annotated = p.stacks;
        for (auto& s : annotated) {
          auto semi = s.stack.find(';');
          s.stack = semi == std::string::npos
                        ? s.stack + ";" + f->second
                        : s.stack.substr(0, semi + 1) + f->second
                              + s.stack.substr(semi);
        }
        add(p, annotated);
        continue;
      }
      // Runtime stacks, scaled to perf's samples of the process if any.
      auto i = perf_samples.find(p.pid);
      if (i == perf_samples.end() || i->second == 0) {
        add(p, p.stacks);
        continue;
      }
      auto stacks = p.stacks;
      scale_to(stacks, i->second);
      add(p, stacks);
    }
    for (auto& e : part.errors) {
      // A runtime profiler's error about a process, with perf running: on
      // perf's stacks of it, or nowhere (see error_frame).
      if (perf_ran && !is_system && e.pid > 0)
        continue;
      auto comm = e.comm.empty() ? part.profiler : e.comm;
      auto en = enrichment_of(e.pid, comm);
      lines[{
          en.app_metadata, sanitize_frame(en.container),
          line_of(sanitize_frame(comm) + ";" + error_frame_text(e), en.appid)}]
          += 1;
    }
  }
  std::vector<merged_stack> result;
  result.reserve(lines.size());
  for (auto& [key, count] : lines)
    result.push_back(
        {std::get<1>(key), std::get<2>(key), count, std::get<0>(key)});
  return result;
}

namespace {

/// Writes `json`, an object the agent made or checked, as the value of the
/// current key; an empty object if it does not parse as one.
void raw_object(json_writer& w, const std::string& json) {
  rapidjson::Document doc;
  if (!parse_json(doc, json).empty() || !doc.IsObject())
    doc.SetObject();
  doc.Accept(w);
}

/// gProfiler's static metadata (get_static_metadata(), then
/// get_current_metadata()'s "current_time"), in its order. Not written:
/// "python_version" (there is no Python).
void write_host_metadata(json_writer& w, const col_header& h) {
  kv(w, "cloud_provider", h.cloud.provider);
  kv(w, "agent_version", h.agent_version);
  kv(w, "spawn_time", iso8601(h.spawn_ms, time_precision::seconds));
  kv(w, "run_mode", h.host.run_mode);
  kv(w, "deployment_type", h.host.deployment_type);
  kv(w, "kernel_release", h.host.kernel_release);
  kv(w, "kernel_version", h.host.kernel_version);
  kv(w, "system_name", h.host.system_name);
  kv(w, "hypervisor", h.host.hypervisor);
  kv(w, "processors", h.host.processors);
  kv(w, "cpu_model_name", h.host.cpu_model_name);
  kv(w, "cpu_arch_codename", h.host.cpu_arch_codename);
  kv(w, "cpu_flags", h.host.cpu_flags);
  kv(w, "memory_capacity_mb", h.host.memory_capacity_mb);
  kv(w, "hostname", h.host.hostname);
  kv(w, "system", h.host.system_name);
  kv(w, "os_name", h.host.os_name);
  kv(w, "os_release", h.host.os_release);
  kv(w, "os_codename", h.host.os_codename);
  kv(w, "libc_type", h.host.libc_type);
  kv(w, "libc_version", h.host.libc_version);
  kv(w, "hardware_type", h.host.hardware_type);
  kv(w, "pid", h.pid);
  kv(w, "mac_address", h.host.mac_address);
  kv(w, "private_ip", h.host.private_ip);
  w.Key("spawn_uptime_ms");
  w.Double(h.host.spawn_uptime_s);
  // Only a known cloud has "cloud_info" (gProfiler pops "provider" out of
  // it into "cloud_provider").
  if (!h.cloud.info_json.empty()) {
    w.Key("cloud_info");
    raw_object(w, h.cloud.info_json);
  }
  w.Key("run_arguments");
  raw_object(w, h.run_arguments_json);
  // gProfiler's big-data platform facts (EMR, Databricks, Dataproc,
  // Cloudera): not detected, so empty, as gProfiler writes it where it
  // finds none.
  w.Key("big_data");
  w.StartObject();
  w.EndObject();
  w.Key("external_metadata");
  raw_object(w, h.external_metadata_json);
  kv(w, "current_time", iso8601(h.end_ms, time_precision::seconds));
}

/// The profiling mode and gProfiler's sampling keys of perf's default CPU
/// time sampling, in the metadata and (without the mode) at the top level.
void write_sampling(json_writer& w, const col_header& h, bool mode = true) {
  if (mode)
    kv(w, "profiling_mode", "cpu");
  kv(w, "sampling_event", "cpu-time");
  kv(w, "sampling_mode", "frequency");
  kv(w, "sampling_frequency", h.sampling_frequency);
}

} // namespace

std::string render_header(const col_header& h) {
  rapidjson::StringBuffer buf;
  json_writer w(buf);
  w.StartObject();
  w.Key("containers");
  w.StartArray();
  for (auto& name : h.containers)
    w.String(name.c_str(), static_cast<rapidjson::SizeType>(name.size()));
  w.EndArray();
  w.Key("container_names_enabled");
  w.Bool(h.container_names_enabled);
  w.Key("metadata");
  w.StartObject();
  if (h.metadata_enabled)
    write_host_metadata(w, h);
  else
    kv(w, "hostname", h.host.hostname);
  write_sampling(w, h);
  w.EndObject();
  w.Key("metrics");
  w.StartObject();
  // Unknown (negative) averages are null, as gProfiler sends them when it
  // has no reading.
  w.Key("cpu_avg");
  if (h.cpu_avg < 0)
    w.Null();
  else
    w.Double(h.cpu_avg);
  w.Key("mem_avg");
  if (h.mem_avg < 0)
    w.Null();
  else
    w.Double(h.mem_avg);
  w.EndObject();
  w.Key("application_metadata");
  w.StartArray();
  w.Null();
  for (auto& md : h.application_metadata) {
    rapidjson::Document object;
    if (parse_json(object, md).empty() && object.IsObject())
      object.Accept(w);
    else
      w.Null();
  }
  w.EndArray();
  w.Key("application_metadata_enabled");
  w.Bool(h.application_metadata_enabled);
  kv(w, "profiling_mode", "cpu");
  // gProfiler's hardware metrics (--enable-hw-metrics-collection, not
  // built) and its flame graph page inlined in the header (the page is in
  // the .html file instead): null, as gProfiler writes them without either.
  w.Key("hwmetrics");
  w.Null();
  w.Key("htmlblob");
  w.Null();
  w.Key("flamegraph_html");
  w.Null();
  write_sampling(w, h, false);
  kv(w, "start_time", iso8601(h.start_ms, time_precision::milliseconds));
  kv(w, "end_time", iso8601(h.end_ms, time_precision::milliseconds));
  w.EndObject();
  std::string line = "# ";
  line.append(buf.GetString(), buf.GetSize());
  line += '\n';
  return line;
}

std::string render_col(const col_header& header,
                       const std::vector<merged_stack>& stacks) {
  auto out = render_header(header);
  size_t size = out.size();
  for (auto& s : stacks)
    size += s.container.size() + s.stack.size() + 24;
  out.reserve(size);
  for (auto& s : stacks) {
    if (header.application_metadata_enabled) {
      out += std::to_string(s.app_metadata);
      out += ';';
    }
    out += s.container;
    out += ';';
    out += s.stack;
    out += ' ';
    out += std::to_string(s.count);
    out += '\n';
  }
  return out;
}

} // namespace gpa::format

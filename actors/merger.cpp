#include "actors/merger.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "config/intervals.hpp"
#include "runtime/error.hpp"
#include "runtime/log.hpp"
#include "runtime/process_enricher.hpp"

namespace gpa {

merge_summary merger_state::merge(merge_job& job, double cpu_avg,
                                  double mem_avg) {
  auto header = cfg.header;
  format::enrich_function enrich;
  if (cfg.enricher) {
    header.container_names_enabled = cfg.enricher->container_names_enabled();
    header.application_metadata_enabled
        = cfg.enricher->application_metadata_enabled();
    // gProfiler's list: [null, then each distinct metadata object in the
    // order first met]; a line's first field indexes it.
    enrich = [this, &header](int32_t pid, const std::string&) {
      auto d = cfg.enricher->details(pid);
      format::process_enrichment e;
      e.container = std::move(d.container);
      e.appid = std::move(d.appid);
      if (!d.app_metadata_json.empty()) {
        auto& list = header.application_metadata;
        auto at = std::find(list.begin(), list.end(), d.app_metadata_json);
        if (at == list.end())
          at = list.insert(list.end(), std::move(d.app_metadata_json));
        e.app_metadata = static_cast<uint32_t>(at - list.begin()) + 1;
      }
      return e;
    };
  }
  auto stacks = format::merge_parts(job.parts, "perf", enrich);
  if (cfg.enricher)
    header.containers = cfg.enricher->end_snapshot();
  // The parts are no longer needed: free them before rendering.
  job.parts.clear();
  job.parts.shrink_to_fit();
  header.start_ms = job.start_ms;
  header.end_ms = job.end_ms;
  header.cpu_avg = cpu_avg;
  header.mem_avg = mem_avg;
  if (cfg.cloud)
    header.cloud = cfg.cloud();
  profile p;
  p.snapshot_id = job.snapshot_id;
  p.start_ms = job.start_ms;
  p.end_ms = job.end_ms;
  p.cpu_avg = cpu_avg;
  p.mem_avg = mem_avg;
  for (auto& s : stacks)
    p.total_samples += s.count;
  p.col = format::render_col(header, stacks);
  merge_summary summary;
  summary.snapshot_id = p.snapshot_id;
  summary.total_samples = p.total_samples;
  summary.stacks = stacks.size();
  summary.bytes = p.col.size();
  log->info("snapshot {}: {} samples in {} stacks ({} bytes)", p.snapshot_id,
            p.total_samples, summary.stacks, summary.bytes);
  if (cfg.uploader) {
    auto lg = log;
    auto id = p.snapshot_id;
    self->request(cfg.uploader, caf::infinite, write_atom_v, std::move(p))
        .then([](bool) {},
              [lg, id](caf::error& err) {
                lg->error("the uploader did not take profile {}: {}", id,
                          describe(err));
              });
  } else if (cfg.writer) {
    self->send(cfg.writer, write_atom_v, std::move(p));
  }
  // Each window's log lines reach the disk (a crash loses none of them).
  spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& lg) {
    lg->flush();
  });
  return summary;
}

merger_actor::behavior_type
merger(merger_actor::stateful_pointer<merger_state> self, merger_config cfg) {
  self->state.self = self;
  self->state.cfg = std::move(cfg);
  self->state.log = log::get("merger");
  return {
      [self](merge_atom, merge_job& job) -> caf::result<merge_summary> {
        auto& st = self->state;
        if (!st.cfg.monitor || !st.cfg.collect_metrics)
          return st.merge(job, -1, -1);
        // cpu_avg and mem_avg of the window come from the monitor; awaiting
        // its answer keeps the snapshots in order.
        auto rp = self->make_response_promise<merge_summary>();
        auto held = std::make_shared<merge_job>(std::move(job));
        self->request(st.cfg.monitor, intervals::merger_metrics_wait,
                      window_atom_v)
            .await(
                [self, rp, held](const window_stats& w) mutable {
                  rp.deliver(self->state.merge(*held, w.cpu_avg, w.mem_avg));
                },
                [self, rp, held](caf::error&) mutable {
                  rp.deliver(self->state.merge(*held, -1, -1));
                });
        return rp;
      },
      [self](pressure_atom, const pressure_event& ev) {
        // The merger keeps nothing between snapshots; what the heap still
        // holds from earlier snapshots goes back to the OS.
        if (ev.action_due(pressure_level::warning)
            && self->state.cfg.release_memory) {
          self->state.cfg.release_memory();
          self->state.log->info("memory pressure {}: released free heap memory",
                                to_string(ev.level));
        }
      },
  };
}

} // namespace gpa

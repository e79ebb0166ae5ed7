#include "actors/merger.hpp"

#include <spdlog/spdlog.h>

#include "runtime/log.hpp"

namespace gpa {

profile merger_state::build(merge_job& job, uint64_t& count) {
  auto stacks = format::merge_parts(job.parts);
  count = stacks.size();
  // The parts are no longer needed: free them before rendering.
  job.parts.clear();
  job.parts.shrink_to_fit();
  auto header = cfg.header;
  header.start_ms = job.start_ms;
  header.end_ms = job.end_ms;
  if (cfg.load)
    std::tie(header.cpu_avg, header.mem_avg)
        = cfg.load(job.start_ms, job.end_ms);
  profile result;
  result.snapshot_id = job.snapshot_id;
  result.start_ms = job.start_ms;
  result.end_ms = job.end_ms;
  result.cpu_avg = header.cpu_avg;
  result.mem_avg = header.mem_avg;
  for (auto& s : stacks)
    result.total_samples += s.count;
  result.col = format::render_col(header, stacks);
  return result;
}

merger_actor::behavior_type
merger(merger_actor::stateful_pointer<merger_state> self, merger_config cfg,
       std::vector<profile_sink_actor> sinks) {
  self->state.cfg = std::move(cfg);
  self->state.sinks = std::move(sinks);
  self->state.log = log::get("merger");
  return {
      [self](merge_atom, merge_job& job) {
        auto& st = self->state;
        merge_summary summary;
        auto p = st.build(job, summary.stacks);
        summary.snapshot_id = p.snapshot_id;
        summary.total_samples = p.total_samples;
        summary.bytes = p.col.size();
        st.log->info("snapshot {}: {} samples in {} stacks ({} bytes)",
                     p.snapshot_id, p.total_samples, summary.stacks,
                     summary.bytes);
        // The profile goes to every sink; the last one gets the original.
        for (size_t i = 0; i < st.sinks.size(); ++i) {
          if (i + 1 == st.sinks.size())
            self->send(st.sinks[i], write_atom_v, std::move(p));
          else
            self->send(st.sinks[i], write_atom_v, p);
        }
        return summary;
      },
      [self](pressure_atom, const pressure_event& ev) {
        // The merger keeps no cache between snapshots; nothing to drop.
        self->state.log->debug("pressure {}: nothing cached",
                               to_string(ev.level));
      },
  };
}

} // namespace gpa

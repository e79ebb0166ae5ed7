#include "actors/python_profiler.hpp"

#include <algorithm>
#include <chrono>

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>
#include <caf/weak_intrusive_ptr.hpp>

#include <spdlog/spdlog.h>

#include "runtime/log.hpp"

namespace gpa {

python_profiler_impl::behavior_type
python_profiler(python_profiler_impl::stateful_pointer<python_actor_state> self,
                python_profiler_config cfg) {
  auto lg = log::get("python");
  lg->info(
      "python: the built-in CPython reader samples the thread holding "
      "the GIL of each Python process (CPython 3.7 to 3.13) at {} Hz{}{}",
      std::clamp<int64_t>(cfg.collector.frequency, 1, rt::python_max_frequency),
      cfg.collector.add_versions ? ", frames with package versions" : "",
      cfg.note.empty() ? "" : "; " + cfg.note);
  self->state.collector = std::make_unique<rt::python_collector>(
      cfg.collector, std::move(cfg.find), std::move(cfg.extras), lg);
  return {
      [](prepare_atom) {
        // The reader needs no tool: always ready.
        return std::string{};
      },
      [self](start_atom, const window_info& info) {
        // Under memory pressure the runtime profilers sit the window out:
        // it is never begun and its snapshot is empty.
        if (!info.skip_runtime)
          self->state.collector->begin(info.snapshot_id, info.duration);
      },
      [self](snapshot_atom, const snapshot_request& req) {
        auto promise = self->make_response_promise<profile_part>();
        self->state.waiting.emplace(req.snapshot_id, promise);
        caf::weak_actor_ptr weak{self->ctrl()};
        self->state.collector->finish(
            req.snapshot_id, [weak](rt::python_window w) {
              // On the collector's thread: back to the actor as a message.
              auto strong = weak.lock();
              if (!strong)
                return;
              profile_part part;
              part.snapshot_id = w.id;
              part.profiler = "python";
              part.processes = std::move(w.processes);
              part.errors = std::move(w.errors);
              caf::anon_send(caf::actor_cast<python_profiler_impl>(strong),
                             done_atom_v, std::move(part));
            });
        auto margin
            = std::min<caf::timespan>(req.budget / 10, std::chrono::seconds(1));
        self->delayed_send(self, req.budget - margin, deadline_atom_v,
                           req.snapshot_id);
        return promise;
      },
      [self](done_atom, profile_part& part) {
        auto i = self->state.waiting.find(part.snapshot_id);
        if (i == self->state.waiting.end())
          return; // answered at its deadline already
        i->second.deliver(std::move(part));
        self->state.waiting.erase(i);
      },
      [self](deadline_atom, uint64_t id) {
        auto i = self->state.waiting.find(id);
        if (i == self->state.waiting.end())
          return;
        log::get("python")->warn("window {}: the Python stacks were not ready "
                                 "in time; the window has none",
                                 id);
        profile_part part;
        part.snapshot_id = id;
        part.profiler = "python";
        part.errors.push_back({0, "python", "error", "timed out"});
        i->second.deliver(std::move(part));
        self->state.waiting.erase(i);
      },
  };
}

} // namespace gpa

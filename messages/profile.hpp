#pragma once

// Profiles and their parts: what profilers produce, what the merger builds,
// and what the output writer and the uploader consume.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "format/profile.hpp"
#include "messages/fwd.hpp"

namespace gpa {

/// @relates stack_count
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stack_count& x) {
  return f(caf::meta::type_name("stack_count"), x.stack, x.count);
}

/// @relates process_stacks
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, process_stacks& x) {
  return f(caf::meta::type_name("process_stacks"), x.pid, x.comm, x.container,
           x.stacks);
}

/// @relates profiler_error
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, profiler_error& x) {
  return f(caf::meta::type_name("profiler_error"), x.pid, x.comm, x.what,
           x.reason);
}

/// @relates profile_part
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, profile_part& x) {
  return f(caf::meta::type_name("profile_part"), x.snapshot_id, x.profiler,
           x.processes, x.errors);
}

/// @relates profile
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, profile& x) {
  return f(caf::meta::type_name("profile"), x.snapshot_id, x.start_ms, x.end_ms,
           x.col, x.total_samples, x.cpu_avg, x.mem_avg);
}

/// Anything that takes finished profiles: the output writer, the uploader.
using profile_sink_actor
    = caf::typed_actor<caf::reacts_to<write_atom, profile>>;

} // namespace gpa

#pragma once

// Exponential back-off without jitter, shared by the actors that retry: the
// uploader (failed uploads) and the perf profiler (perf exiting at start).

#include <algorithm>
#include <cstdint>

#include <caf/timespan.hpp>

namespace gpa::rt {

/// `first` doubled `doublings` times, capped at `max` (never overflows,
/// however large `doublings` is).
inline caf::timespan doubled_delay(caf::timespan first, caf::timespan max,
                                   uint32_t doublings) {
  auto delay = first;
  for (uint32_t i = 0; i < doublings && delay < max; ++i)
    delay *= 2;
  return std::min(delay, max);
}

} // namespace gpa::rt

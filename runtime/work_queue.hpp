#pragma once

// Where actors send blocking or CPU-heavy work (parsing a large tool output
// file, rendering a page) so that no event-based handler blocks. A job
// reports its result back to its actor with a message.

#include <functional>
#include <memory>

namespace gpa::rt {

class work_queue {
public:
  virtual ~work_queue() = default;

  /// Runs `job` later, in order, on the queue's own thread.
  virtual void post(std::function<void()> job) = 0;

  /// Jobs posted and not finished yet.
  virtual size_t pending() const = 0;
};

/// One worker thread; destroying the queue finishes the running job, drops
/// the others and joins the thread.
std::shared_ptr<work_queue> make_thread_work_queue();

} // namespace gpa::rt

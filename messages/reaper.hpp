#pragma once

// The process reaper's protocol: the only way anything in the agent runs a
// child process. See actors/process_reaper.hpp for the behaviour.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/timespan.hpp>
#include <caf/typed_actor.hpp>

#include "messages/fwd.hpp"
#include "runtime/process_launcher.hpp"

namespace gpa {

/// Asks the reaper to run one child process.
struct run_request {
  /// Program and arguments; argv[0] is looked up in PATH if it has no '/'.
  std::vector<std::string> argv;
  /// Extra environment entries ("NAME=value") on top of the agent's own
  /// environment, or the whole environment if `replace_env` is set.
  std::vector<std::string> env;
  /// Whether `env` replaces the agent's environment instead of extending it.
  bool replace_env = false;
  /// Working directory of the child; empty means the agent's.
  std::string cwd;
  /// Run time after which the child's process group gets SIGTERM; zero means
  /// no limit (long-running tools that the requester stops itself).
  caf::timespan timeout{0};
  /// Time between SIGTERM and SIGKILL when the reaper stops a child.
  caf::timespan kill_grace{std::chrono::seconds(2)};
  /// What happens to standard output.
  stdout_mode out_mode = stdout_mode::capture;
  /// Bytes of standard output kept in `run_result::out` (capture mode).
  uint64_t out_cap = 1 << 20;
  /// File name (no '/') inside the private temp directory (file mode).
  std::string out_file;
  /// Bytes of standard error kept in `run_result::err`.
  uint64_t err_cap = 64 << 10;
  /// Groups children for `signal_atom` and `cancel_atom`, e.g. "snap-12/perf".
  std::string tag;
};

/// @relates run_request
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, run_request& x) {
  return f(caf::meta::type_name("run_request"), x.argv, x.env, x.replace_env,
           x.cwd, x.timeout, x.kill_grace, x.out_mode, x.out_cap, x.out_file,
           x.err_cap, x.tag);
}

/// What became of a child process. Every child that started gets one.
struct run_result {
  /// The child's process ID (for logs; it is reaped and may be reused).
  int32_t pid = 0;
  /// True if the child called exit(); `exit_code` is then valid.
  bool exited = false;
  /// The exit status given to exit().
  int32_t exit_code = 0;
  /// The signal that ended the child, or 0 if it exited.
  int32_t term_signal = 0;
  /// The reaper stopped the child because it ran past `timeout`.
  bool timed_out = false;
  /// The reaper stopped the child because of a cancel or a dead requester.
  bool cancelled = false;
  /// The reaper had to send SIGKILL (SIGTERM and the grace were not enough).
  bool killed = false;
  /// Captured standard output (capture mode).
  std::string out;
  /// True if the child wrote more than `out_cap` bytes.
  bool out_truncated = false;
  /// Bytes the child wrote to standard output in total (capture mode).
  uint64_t out_bytes = 0;
  /// Full path of the output file (file mode).
  std::string out_path;
  /// Captured standard error, up to `err_cap` bytes.
  std::string err;
  /// True if the child wrote more than `err_cap` bytes to standard error.
  bool err_truncated = false;
  /// Wall time from start to reaping.
  caf::timespan run_time{0};

  /// Returns whether the child exited with status 0 by itself.
  bool success() const {
    return exited && exit_code == 0 && !timed_out && !cancelled;
  }
};

/// @relates run_result
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, run_result& x) {
  return f(caf::meta::type_name("run_result"), x.pid, x.exited, x.exit_code,
           x.term_signal, x.timed_out, x.cancelled, x.killed, x.out,
           x.out_truncated, x.out_bytes, x.out_path, x.err, x.err_truncated,
           x.run_time);
}

/// @relates child_exit
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, child_exit& x) {
  return f(caf::meta::type_name("child_exit"), x.id, x.wait_status, x.out,
           x.out_truncated, x.out_bytes, x.err, x.err_truncated);
}

/// What the reaper owns right now, and what it did so far.
struct reaper_stats {
  /// Children started and not yet reaped.
  uint32_t live = 0;
  /// Requests waiting for a free slot.
  uint32_t queued = 0;
  /// Descriptors the launcher holds for live children (pipes, pidfds).
  uint32_t fds = 0;
  /// Requesters currently monitored.
  uint32_t monitored = 0;
  uint64_t started_total = 0;
  uint64_t reaped_total = 0;
  uint64_t timed_out_total = 0;
  uint64_t killed_total = 0;
  uint64_t rejected_total = 0;
};

/// @relates reaper_stats
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, reaper_stats& x) {
  return f(caf::meta::type_name("reaper_stats"), x.live, x.queued, x.fds,
           x.monitored, x.started_total, x.reaped_total, x.timed_out_total,
           x.killed_total, x.rejected_total);
}

/// One live child, for introspection.
struct child_info {
  int32_t pid = 0;
  std::string tag;
  /// argv[0].
  std::string program;
  caf::timespan running_for{0};
};

/// @relates child_info
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, child_info& x) {
  return f(caf::meta::type_name("child_info"), x.pid, x.tag, x.program,
           x.running_for);
}

/// The live children with a tag (or all of them).
struct child_list {
  std::vector<child_info> children;
};

/// @relates child_list
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, child_list& x) {
  return f(caf::meta::type_name("child_list"), x.children);
}

/// The reaper's public interface.
using reaper_actor = caf::typed_actor<
    // Runs a child; the reply comes when it is reaped (or an error if it could
    // not start, was cancelled while queued, or the queue was full).
    caf::replies_to<run_atom, run_request>::with<run_result>,
    // Sends a signal to the process group of every live child with this tag.
    caf::replies_to<signal_atom, std::string, int32_t>::with<uint32_t>,
    // Stops every child with this tag (SIGTERM, grace, SIGKILL) and drops
    // queued requests with it. Replies with the number of children affected.
    caf::replies_to<cancel_atom, std::string>::with<uint32_t>,
    // Introspection: counts, and the live children with a tag ("" for all).
    caf::replies_to<stats_atom>::with<reaper_stats>,
    caf::replies_to<list_atom, std::string>::with<child_list>>;

} // namespace gpa

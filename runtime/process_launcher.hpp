#pragma once

// The process-launcher interface: the only OS effect that creates children.
// The process reaper (actors/process_reaper) is its only user; the real
// implementation is on Boost.Process, the simulation's is scripted.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/expected.hpp>

namespace gpa {

/// Where a child's standard output goes.
enum class stdout_mode : uint8_t {
  /// Captured in memory up to `run_request::out_cap` bytes; the rest is read
  /// and dropped, so the child never blocks on a full pipe.
  capture = 0,
  /// Written to `run_request::out_file` inside the agent's private temporary
  /// directory (created 0600, never through a symlink).
  file = 1,
  /// Sent to /dev/null.
  discard = 2,
};

/// Returns "capture", "file" or "discard".
std::string to_string(stdout_mode x);

/// Reported by a process launcher when one of its children is gone: reaped,
/// with every descriptor closed. Internal to the reaper.
struct child_exit {
  /// The reaper's ID for the child.
  uint64_t id = 0;
  /// Raw wait status (as from waitpid).
  int32_t wait_status = 0;
  std::string out;
  bool out_truncated = false;
  uint64_t out_bytes = 0;
  std::string err;
  bool err_truncated = false;
};

} // namespace gpa

namespace gpa::rt {

/// What to start. Mirrors run_request, with the output file already resolved
/// to a full path.
struct launch_spec {
  std::vector<std::string> argv;
  std::vector<std::string> env;
  bool replace_env = false;
  std::string cwd;
  stdout_mode out_mode = stdout_mode::capture;
  uint64_t out_cap = 0;
  /// Full path of the output file in file mode; created 0600 with O_EXCL and
  /// O_NOFOLLOW, so a planted file or symlink makes the start fail.
  std::string out_path;
  uint64_t err_cap = 0;
};

/// What a launcher owns right now.
struct launcher_counts {
  /// Children started and not yet reaped.
  uint32_t live = 0;
  /// Open descriptors held for children (pipe ends and pidfds).
  uint32_t fds = 0;
};

/// Starts children in their own process group, drains their output, reaps
/// them and reports each exit exactly once through the exit handler.
class process_launcher {
public:
  /// Receives one report per started child, after it was reaped and every
  /// descriptor for it closed. May be called from any thread.
  using exit_handler = std::function<void(child_exit)>;

  virtual ~process_launcher() = default;

  /// Sets where exit reports go; called once, before the first start().
  virtual void set_exit_handler(exit_handler f) = 0;

  /// Starts a child for the reaper's ID `id`. Returns its process ID, or an
  /// error that says why it could not start (tool not found, exec failed,
  /// output file exists). A child that started is always reported exactly
  /// once through the exit handler.
  virtual caf::expected<int32_t> start(uint64_t id, const launch_spec& spec)
      = 0;

  /// Sends `sig` to the whole process group of child `id`. Returns false if
  /// the child is already reaped (the signal is then never sent, so a reused
  /// process ID is never hit).
  virtual bool signal(uint64_t id, int sig) = 0;

  /// Returns what the launcher owns right now.
  virtual launcher_counts counts() const = 0;

  /// Kills every live child's process group with SIGKILL and waits (at most
  /// a few seconds) until all are reaped and reported.
  virtual void kill_all() = 0;
};

/// Makes the real launcher: Boost.Process for fork and exec, and one I/O
/// thread that waits on pidfds and pipes with epoll.
std::unique_ptr<process_launcher> make_posix_launcher();

} // namespace gpa::rt

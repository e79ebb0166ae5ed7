#pragma once

// Process-wide OS effects that main and the agent's wiring need: signal
// handling, the private temporary directory and the PID file.

#include <chrono>
#include <stdexcept>
#include <string>

#include "runtime/written_file.hpp"

namespace gpa::rt {

// -- signals
// ---------------------------------------------------------------------

/// Blocks SIGINT, SIGTERM, SIGHUP, SIGUSR1 and SIGUSR2 in the calling thread
/// (and so in every thread it creates later), so that only wait_agent_signal()
/// sees them and none of them kills the agent by its default action; ignores
/// SIGPIPE (write errors are handled where they happen). Call first thing in
/// main. Children get a clean signal state at exec.
void block_agent_signals();

/// Waits up to `timeout` for one of the signals block_agent_signals()
/// blocked. Returns the signal number, or 0 on timeout.
int wait_agent_signal(std::chrono::milliseconds timeout);

/// Whether `sig` asks the agent to stop (SIGINT, SIGTERM). SIGHUP is kept for
/// reloading the configuration, SIGUSR1 and SIGUSR2 have no meaning yet: the
/// agent logs and ignores them.
bool is_stop_signal(int sig);

// -- private temporary directory
// -----------------------------------------------

/// Whether the agent runs in the host's (init) PID namespace, by
/// gProfiler's test: PID 2 exists and is the kernel's "kthreadd" (in any
/// other PID namespace, PID 2 is a user process or nothing). `proc_root`
/// is for tests.
bool in_init_pid_namespace(const std::string& proc_root = "/proc");

/// gProfiler's message when in_init_pid_namespace() is false.
extern const char* const pid_namespace_message;

/// Sets RLIMIT_CORE to 0 (soft and hard) for the agent and so for every
/// tool it starts: a crashing perf or runtime tool leaves no core file on
/// the host (gProfiler's default; --dont-disable-core-files keeps the
/// limit). Returns "" or why it failed.
std::string disable_core_files();

/// A directory only the agent can use (mode 0700, random name), for tool
/// output files. Holds an exclusive flock on its lock file (temp_lock_name)
/// for its whole life, so that remove_stale_temp_dirs() knows it is alive.
/// Removed with its contents, without following symlinks, when the object is
/// destroyed; left behind only by a kill -9 or a crash, and then removed by
/// the next agent's remove_stale_temp_dirs().
class private_temp_dir {
public:
  /// Creates "<root>/gprofiler-agent.XXXXXX" and its locked lock file.
  /// Throws std::runtime_error with a message naming the root if it cannot.
  explicit private_temp_dir(const std::string& root);
  ~private_temp_dir();
  private_temp_dir(const private_temp_dir&) = delete;
  private_temp_dir& operator=(const private_temp_dir&) = delete;

  const std::string& path() const {
    return path_;
  }

private:
  std::string path_;
  /// The lock file, locked.
  int lock_fd_ = -1;
};

/// Removes `path` and everything below it without following symlinks at any
/// depth (remove_tree_at on its parent directory).
void remove_tree(const std::string& path);

// -- PID file
// ----------------------------------------------------------------------

/// A start-up failure and the exit status it calls for: 2 when what the user
/// gave cannot be used (a FIFO as the PID file), 1 when the host's state is
/// in the way (another agent runs).
class start_error : public std::runtime_error {
public:
  start_error(const std::string& what, int status)
      : std::runtime_error(what), status_(status) {}

  /// The exit status.
  int status() const {
    return status_;
  }

private:
  int status_;
};

/// Holds the PID file and its lock: one agent per host. Opened the one safe
/// way (open_written_file): a symbolic link, FIFO, device, directory or
/// hard-linked file is refused and left as it is. An existing regular file is
/// reused only if it is empty or holds just a PID whose process is gone (or
/// is not a gProfiler); it is never emptied otherwise.
class pid_file {
public:
  /// Takes the lock and writes our PID. Throws start_error naming the file:
  /// status 2 if it is not a file the agent may use (not a regular file,
  /// holds something other than a PID), status 1 if another agent holds the
  /// lock or a running gProfiler's PID is in it (naming that PID), or it
  /// cannot be written.
  explicit pid_file(const std::string& path);
  ~pid_file();
  pid_file(const pid_file&) = delete;
  pid_file& operator=(const pid_file&) = delete;

private:
  /// The path, once the PID is written (removed at destruction only if it
  /// still names `file_` and that still holds `text_`).
  std::string path_;
  written_file file_;
  /// What we wrote: our PID and a newline.
  std::string text_;
};

} // namespace gpa::rt

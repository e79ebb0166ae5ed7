#pragma once

// Process-wide OS effects that main and the agent's wiring need: signal
// handling, the private temporary directory and the PID file.

#include <chrono>
#include <string>

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

/// A directory only the agent can use (mode 0700, random name), for tool
/// output files. Removed with its contents, without following symlinks, when
/// the object is destroyed.
class private_temp_dir {
public:
  /// Creates "<root>/gprofiler-agent.XXXXXX". Throws std::runtime_error with
  /// a message naming the root if it cannot.
  explicit private_temp_dir(const std::string& root);
  ~private_temp_dir();
  private_temp_dir(const private_temp_dir&) = delete;
  private_temp_dir& operator=(const private_temp_dir&) = delete;

  const std::string& path() const {
    return path_;
  }

private:
  std::string path_;
};

/// Removes `path` and everything below it without following symlinks.
void remove_tree(const std::string& path);

// -- PID file
// ----------------------------------------------------------------------

/// Holds the PID file and its lock: one agent per host. The file is created
/// without following symlinks and removed on destruction.
class pid_file {
public:
  /// Takes the lock and writes our PID. Throws std::runtime_error naming the
  /// file, and the PID of the other agent if one holds the lock.
  explicit pid_file(const std::string& path);
  ~pid_file();
  pid_file(const pid_file&) = delete;
  pid_file& operator=(const pid_file&) = delete;

private:
  std::string path_;
  int fd_ = -1;
};

} // namespace gpa::rt

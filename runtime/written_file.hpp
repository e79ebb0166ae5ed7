#pragma once

// The one way to open a file the agent writes as root (the PID file, the log
// file, probes of the output directory, the lock of its temporary directory):
// never through a symbolic link, never a FIFO, device, socket or directory
// (opened without blocking, then checked), never a file with other hard
// links, and never truncated by the open itself. Also the one way to remove
// a directory tree the agent made, and to find the temporary directories that
// agents killed with SIGKILL left behind.

#include <cstdint>
#include <string>
#include <vector>

#include <sys/types.h>

#include <caf/expected.hpp>

namespace gpa::rt {

// -- opening files the agent writes
// --------------------------------------------

/// What open_written_file() does when the file exists already.
enum class if_exists {
  /// Fail (EEXIST): the agent creates the file itself (O_EXCL).
  fail,
  /// Open the existing regular file as it is (no truncation).
  reuse,
};

/// An open descriptor of a file the agent writes; closed on destruction.
/// Move-only.
class written_file {
public:
  written_file() = default;
  written_file(written_file&& other) noexcept;
  written_file& operator=(written_file&& other) noexcept;
  written_file(const written_file&) = delete;
  written_file& operator=(const written_file&) = delete;
  ~written_file();

  /// The descriptor (-1 if none).
  int fd() const {
    return fd_;
  }

  /// Whether this open created the file (it did not exist before).
  bool created() const {
    return created_;
  }

  /// The file's identity when it was opened.
  dev_t device() const {
    return dev_;
  }
  ino_t inode() const {
    return ino_;
  }

  /// Whether `path` still names this very file (same device and inode, not
  /// following a link).
  bool still_at(const std::string& path) const;

  /// Gives up ownership of the descriptor and returns it.
  int release();

  /// Closes the descriptor now.
  void close();

private:
  friend caf::expected<written_file>
  open_written_file(const std::string&, if_exists, unsigned, bool);

  int fd_ = -1;
  bool created_ = false;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

/// Opens `path` for writing (and reading, if `read`), close-on-exec, with
/// `mode` if it creates the file. Refuses, without blocking and without
/// changing anything: a symbolic link as the last component (O_NOFOLLOW), a
/// FIFO, device, socket or directory (opened O_NONBLOCK, then checked with
/// fstat), and a regular file with more than one hard link. Never truncates.
/// The error (ec::write_failed) names the path and what it is, e.g. "cannot
/// write /x/agent.log: it is a FIFO, not a regular file; refusing to use it".
caf::expected<written_file> open_written_file(const std::string& path,
                                              if_exists how, unsigned mode,
                                              bool read = false);

/// What kind of file `mode` (st_mode) is, for error messages: "a FIFO", "a
/// character device", "a directory", "a symbolic link", ...
const char* file_kind_name(unsigned mode);

// -- directory trees
// ------------------------------------------------------------

/// Removes the entry `name` of the directory open at `dir_fd`, and
/// everything below it if it is a directory, without following symbolic
/// links at any depth (openat with O_NOFOLLOW, unlinkat). Returns false if
/// something could not be removed.
bool remove_tree_at(int dir_fd, const std::string& name);

// -- temporary directories of dead agents
// ---------------------------------------

/// The name of the lock file in an agent's private temporary directory: an
/// agent holds an exclusive flock on it for its whole life.
inline constexpr const char* temp_lock_name = ".lock";

/// The prefix of the agents' private temporary directories in a root.
inline constexpr const char* temp_dir_prefix = "gprofiler-agent.";

/// Removes the private temporary directories in `root` that agents killed
/// without cleaning up left behind: "gprofiler-agent.XXXXXX" directories
/// owned by the effective user, mode 0700, whose lock file exists and is
/// not locked by a live agent. Never touches a directory whose lock is held,
/// one without a lock file, one owned by another user, or anything reached
/// through a symbolic link. Returns the names removed.
std::vector<std::string> remove_stale_temp_dirs(const std::string& root);

// -- output directory
// ----------------------------------------------------------

/// Checks at start-up that `dir` can take the agent's output: it exists or
/// can be created (0755), is a directory (not a symbolic link), and a file
/// can be created in it (a probe file, created O_EXCL and removed again).
/// Returns "" or the reason, naming the directory.
std::string check_output_dir(const std::string& dir);

} // namespace gpa::rt

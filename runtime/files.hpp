#pragma once

// File-system effects of the actors: reading tool output, listing a
// directory, writing output files safely. The real implementation never
// follows a symlink into a file it writes; the simulation keeps files in
// memory.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>

namespace gpa::rt {

/// Opens `path` (as a process sees it) inside the directory `root` as if it
/// were "/": no symlink or ".." leaves it (openat2 RESOLVE_IN_ROOT; before
/// Linux 5.6 no symlink is followed at all). O_CLOEXEC is added (and
/// O_NOCTTY unless O_PATH). -1 on failure, errno set.
int open_in_root(const std::string& root, const std::string& path, int flags);

/// Closes a file descriptor on scope exit (-1: none).
struct fd_guard {
  int fd = -1;
  explicit fd_guard(int f) : fd(f) {}
  ~fd_guard();
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
};

/// One directory entry.
struct dir_entry {
  std::string name;
  uint64_t size = 0;
  /// Modification time, milliseconds since the Unix epoch.
  int64_t mtime_ms = 0;
  bool regular = false;
};

/// Feeds all of the open descriptor `fd` to `f` in chunks of at most
/// `chunk` bytes: a regular file is mapped (no copy from the page cache), and
/// anything else (a pipe, a terminal) is read. Returns 0, or the errno of the
/// failure (EISDIR for a directory). Does not close `fd`. A mapped file that
/// shrinks meanwhile raises SIGBUS; the caller decides what that does.
int read_fd_chunks(int fd, const std::function<void(std::string_view)>& f,
                   size_t chunk = size_t{4} << 20);

/// Appends all of `fd` to `out` (read_fd_chunks); returns 0 or the errno.
int read_fd(int fd, std::string& out);

/// A whole input file that the user named (a config file, a .col to render
/// or upload), read the one bounded way: `path` must name a regular file, or
/// be "-" for standard input; a FIFO, device, socket or directory is refused
/// without blocking on it, and so is anything longer than the limit. A
/// regular file is mapped (no copy, no RSS beyond the page cache), standard
/// input is read into memory up to the limit. Move-only.
class input_file {
public:
  /// Opens and maps (or reads) `path`. The error names the path and says
  /// what is wrong: missing, not a regular file (and what it is), larger
  /// than `max_bytes` (and both sizes), or the read failure.
  static caf::expected<input_file> open(const std::string& path,
                                        uint64_t max_bytes);

  input_file(input_file&& other) noexcept;
  input_file& operator=(input_file&& other) noexcept;
  input_file(const input_file&) = delete;
  input_file& operator=(const input_file&) = delete;
  ~input_file();

  /// The file's contents.
  std::string_view text() const {
    return view_;
  }

private:
  input_file() = default;
  void release();

  /// The mapping of a regular file (null for stdin and empty files).
  void* map_ = nullptr;
  size_t map_size_ = 0;
  /// What was read from standard input.
  std::string buffer_;
  std::string_view view_;
};

/// Feeds the input file `path` to `f` in chunks of at most `chunk` bytes,
/// read into one buffer, so that memory stays at `chunk` whatever the file's
/// size. `path` is accepted as input_file::open() accepts it (a regular file
/// or "-" for standard input; a FIFO, device, socket or directory refused
/// without blocking; at most `max_bytes`, checked again as the file is read,
/// so a file that grows meanwhile is refused too). `f` returns false to
/// stop early. Errors name the path and say what is wrong.
caf::error read_input_chunks(const std::string& path, uint64_t max_bytes,
                             const std::function<bool(std::string_view)>& f,
                             size_t chunk = size_t{4} << 20);

/// Opens `path` for reading as input_file::open() accepts it and returns the
/// descriptor (STDIN_FILENO for "-", which the caller must not close).
caf::expected<int> open_input_fd(const std::string& path, uint64_t max_bytes);

/// Reads `path`, accepted as input_file::open() accepts it, into a string
/// (read, not mapped, so that /proc and /sys files, which say they are
/// empty, are read whole).
caf::expected<std::string> read_input_file(const std::string& path,
                                           uint64_t max_bytes);

/// The first `max_bytes` of the regular file `path` (sysfs and procfs
/// attributes included, which cannot be mapped), read without blocking on a
/// FIFO or device; "" if it is missing, not a regular file or unreadable.
/// For small facts of the host (DMI strings, /usr/bin/ldd).
std::string read_small_file(const std::string& path, size_t max_bytes);

/// Touches the heartbeat file `path` (gProfiler's --heartbeat-file): creates
/// it (0644) if absent, else sets its modification time to now. Never
/// follows a symbolic link and touches only a regular file. "" on success,
/// else why not.
std::string touch_file(const std::string& path);

/// Whether nothing is at `path` (lstat fails with ENOENT or ENOTDIR): a
/// dangling link, a directory or an unreadable file is not absent.
bool path_absent(const std::string& path);

class file_system {
public:
  virtual ~file_system() = default;

  /// Feeds the file at `path` to `f` in chunks of about `chunk` bytes.
  /// Refuses symlinks. Errors name the path and the reason.
  virtual caf::error read_chunks(const std::string& path,
                                 const std::function<void(std::string_view)>& f,
                                 size_t chunk = size_t{4} << 20)
      = 0;

  /// Lists the entries of `dir` whose names start with `prefix`, sorted by
  /// name.
  virtual caf::expected<std::vector<dir_entry>> list(const std::string& dir,
                                                     const std::string& prefix)
      = 0;

  /// Removes a file (not a directory); missing files are not an error.
  virtual void remove(const std::string& path) = 0;

  /// Creates `dir` (and parents) with `mode` if missing; refuses a path whose
  /// last component is a symlink.
  virtual caf::error make_dirs(const std::string& dir, unsigned mode) = 0;

  /// Writes `content` to `dir/name` atomically: a fresh temporary file in
  /// `dir` (O_EXCL, O_NOFOLLOW, `mode`), fsync'd, then renamed over `name`.
  /// A symlink planted at `dir/name` is replaced, never followed.
  virtual caf::error write_atomic(const std::string& dir,
                                  const std::string& name,
                                  std::string_view content, unsigned mode)
      = 0;

  /// Points the symlink `dir/link` at `target` (a name in `dir`), replacing
  /// whatever `dir/link` was, atomically.
  virtual caf::error link_atomic(const std::string& dir,
                                 const std::string& target,
                                 const std::string& link)
      = 0;
};

/// The real file system.
std::shared_ptr<file_system> make_posix_file_system();

} // namespace gpa::rt

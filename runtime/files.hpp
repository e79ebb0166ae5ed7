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

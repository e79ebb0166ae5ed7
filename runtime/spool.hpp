#pragma once

// The uploader's durable spool: a private directory of pending uploads, one
// file each, that survives backend outages and agent restarts.
//
// - The directory is created 0700 if missing; an existing one must be a real
//   directory (not a symlink) owned by us, and is tightened to 0700.
// - Every file is written 0600 under an O_EXCL temporary name, synced, then
//   renamed into place, so a reader never sees half a file and a crash leaves
//   at most a temporary that the next open() removes. Every access is
//   relative to the directory's descriptor with O_NOFOLLOW: no symlink is
//   ever followed into a file we write or read.
// - File names are "<20-digit sequence number>.prof", the sequence continuing
//   from the highest name present, so "oldest first" is exact across
//   restarts (no clock involved).
// - The spool is bounded in bytes and in files; when a new entry does not
//   fit, the oldest are dropped and push() says how many.
//
// Not thread-safe: one owner (the uploader) at a time, and one agent per host
// (the PID file).

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>

namespace gpa::rt {

/// Bounds of a spool.
struct spool_limits {
  /// Total bytes of all entries. An entry larger than this is refused.
  uint64_t max_bytes = 256ull << 20;
  /// Entries; 0 disables spooling (push() then always fails).
  uint64_t max_files = 1000;
};

/// One pending entry.
struct spool_entry {
  /// Position in creation order; larger is newer.
  uint64_t seq = 0;
  /// Size of the file.
  uint64_t bytes = 0;

  /// The file name inside the spool directory.
  std::string name() const;
};

/// What push() did.
struct spool_push_result {
  /// The new entry.
  spool_entry entry;
  /// Oldest entries dropped to keep the bounds.
  uint32_t dropped = 0;
};

/// A durable, bounded spool directory (see the top of this file).
class spool {
public:
  /// Opens the spool at `dir`, creating it (and missing parents) if needed,
  /// removes temporaries left by a crash and indexes the entries present.
  /// Returns an error that names the directory and what to do if it cannot.
  static caf::expected<std::shared_ptr<spool>> open(const std::string& dir,
                                                    spool_limits limits);

  /// Closes the directory; the entries stay on disk.
  ~spool();
  spool(const spool&) = delete;
  spool& operator=(const spool&) = delete;

  /// Stores `data` as the newest entry, then drops the oldest entries until
  /// the bounds hold again. Fails (and stores nothing) if spooling is
  /// disabled, `data` alone exceeds max_bytes, or the write fails (disk
  /// full, read-only file system); the error names the file and the cause.
  caf::expected<spool_push_result> push(std::string_view data);

  /// The oldest entry, if any.
  std::optional<spool_entry> oldest() const;

  /// Every entry, oldest first.
  std::vector<spool_entry> list() const;

  /// Reads an entry's contents.
  caf::expected<std::string> read(const spool_entry& entry) const;

  /// Removes an entry (already gone counts as removed).
  caf::error remove(const spool_entry& entry);

  /// Entries held.
  size_t count() const {
    return entries_.size();
  }

  /// Bytes held.
  uint64_t bytes() const {
    return bytes_;
  }

  /// The directory.
  const std::string& path() const {
    return path_;
  }

  /// The bounds.
  const spool_limits& limits() const {
    return limits_;
  }

private:
  /// Takes ownership of `dir_fd`, the open directory.
  spool(std::string path, int dir_fd, spool_limits limits);

  /// Indexes the entries on disk and removes crash leftovers.
  caf::error scan();

  /// The directory's path (for messages) and descriptor (for every access).
  std::string path_;
  int dir_fd_ = -1;
  spool_limits limits_;
  /// seq -> bytes.
  std::map<uint64_t, uint64_t> entries_;
  /// Sum of the entries' sizes.
  uint64_t bytes_ = 0;
  /// Sequence number of the next entry.
  uint64_t next_seq_ = 1;
};

} // namespace gpa::rt

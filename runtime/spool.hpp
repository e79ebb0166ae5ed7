#pragma once

// The uploader's write-ahead spool: every profile is stored here before its
// first send and removed only once the backend accepted it, so that a
// backend outage, an agent restart or a kill -9 at any instant loses nothing
// that was stored. One entry per profile, oldest first.
//
// A directory spool (open()):
// - The directory is created 0700 if missing; an existing one must be a real
//   directory (not a symlink) owned by us, and is tightened to 0700.
// - Every file is written 0600 under an O_EXCL temporary name, synced, then
//   renamed into place (and the directory synced), so a reader never sees
//   half a file and a crash leaves at most a temporary that the next open()
//   removes. Every access is relative to the directory's descriptor with
//   O_NOFOLLOW: no symlink is ever followed into a file we write or read.
// - File names are "<20-digit sequence number>.prof", the sequence
//   continuing from the highest name present, so "oldest first" is exact
//   across restarts (no clock involved). Numbers stay below 10^19 (the
//   first digit is always 0): a name beyond that is not a valid entry and is
//   removed at open; should the sequence ever reach the end, the entries are
//   renumbered from 1 in order.
// - A write that fails (disk full, read-only file system) keeps the entry in
//   memory instead, within `max_memory_bytes`, so that the profile is still
//   sent; push() says it is not durable and why.
//
// A memory spool (in_memory()) keeps every entry in memory: for a spool
// directory that cannot be used, and for the deterministic simulation,
// which never touches a real directory.
//
// Both are bounded in bytes and in entries; when a new entry does not fit,
// the oldest are dropped and push() says how many. Not thread-safe: one
// owner (the uploader) at a time, and one agent per host (the PID file).

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
  /// Entries (at least 1).
  uint64_t max_files = 1000;
  /// Bytes of entries kept in memory because their write failed (or in a
  /// memory spool).
  uint64_t max_memory_bytes = 64ull << 20;
};

/// One pending entry.
struct spool_entry {
  /// Position in creation order; larger is newer.
  uint64_t seq = 0;
  /// Size of the entry.
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
  /// Whether the entry is on disk (survives a crash); if not, why.
  bool durable = true;
  std::string not_durable_because;
};

/// A bounded spool (see the top of this file).
class spool {
public:
  /// Opens the directory spool at `dir`, creating it (and missing parents)
  /// if needed, removes temporaries left by a crash and invalid names, and
  /// indexes the entries present. Returns an error that names the directory
  /// and what to do if it cannot.
  static caf::expected<std::shared_ptr<spool>> open(const std::string& dir,
                                                    spool_limits limits);

  /// A spool that keeps its entries in memory only; `name` stands for it in
  /// messages.
  static std::shared_ptr<spool> in_memory(spool_limits limits,
                                          std::string name = "(memory)");

  /// Closes the directory; the entries stay on disk.
  ~spool();
  spool(const spool&) = delete;
  spool& operator=(const spool&) = delete;

  /// Stores `data` as the newest entry, then drops the oldest entries until
  /// the bounds hold again. Fails (and stores nothing) only if `data` alone
  /// exceeds max_bytes, or it can be kept neither on disk nor in memory; the
  /// error names the file and the cause.
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

  /// Entries held in memory only (lost if the agent dies).
  size_t in_memory_count() const;

  /// The directory, or the memory spool's name.
  const std::string& path() const {
    return path_;
  }

  /// Whether entries are written to a directory.
  bool on_disk() const {
    return dir_fd_ >= 0;
  }

  /// The bounds.
  const spool_limits& limits() const {
    return limits_;
  }

  /// The largest sequence number a file name can hold (19 digits).
  static constexpr uint64_t max_seq = 9'999'999'999'999'999'999ull;

private:
  /// Takes ownership of `dir_fd`, the open directory (-1: memory only).
  spool(std::string path, int dir_fd, spool_limits limits);

  /// Indexes the entries on disk and removes crash leftovers.
  caf::error scan();

  /// Gives the entries on disk the numbers 1..n, in order (when the
  /// sequence reached max_seq).
  caf::error renumber();

  /// Writes one entry file durably.
  caf::error write_file(uint64_t seq, std::string_view data);

  struct held {
    uint64_t bytes = 0;
    /// The contents, when kept in memory (not on disk).
    std::optional<std::string> memory;
  };

  /// The directory's path (for messages) and descriptor (for every access).
  std::string path_;
  int dir_fd_ = -1;
  spool_limits limits_;
  std::map<uint64_t, held> entries_;
  /// Sum of the entries' sizes, and of those in memory.
  uint64_t bytes_ = 0;
  uint64_t memory_bytes_ = 0;
  /// Sequence number of the next entry.
  uint64_t next_seq_ = 1;
};

} // namespace gpa::rt

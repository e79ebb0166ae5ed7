#pragma once

// What the merger adds to the stacks of each process, as gProfiler's merge
// "enriches" them: the name of the container the process runs in, its
// application id (the "appid: ..." frame) and its application metadata
// (the header's "application_metadata" list). The lookups themselves are
// parts handed in (containers.hpp, app_id.hpp, ...); the enricher caches
// their answers per process, so that a process is looked up once, not once
// per window, and forgets processes that are gone.

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace gpa::rt {

class proc_source;

/// A process's enrichment as the lookups give it. Empty strings: none.
struct process_details {
  std::string container;
  std::string appid;
  /// A JSON object; empty: none (the header's null entry).
  std::string app_metadata_json;
};

/// Application metadata members that a runtime profiler found for a process
/// (a JVM's version and flags: the runtime-specific part of gProfiler's
/// application metadata), put in front of the common members of its
/// metadata object. Thread-safe: profilers put, the merger's enricher reads.
class app_metadata_extras {
public:
  /// Sets the members (JSON object members without braces, e.g.
  /// `"java_version":"..."`) of the process `pid` started at `start_time`
  /// (clock ticks after boot); each put gets a new revision.
  void put(int32_t pid, uint64_t start_time, std::string members);

  /// The members of that process and their revision; {0, ""} if none.
  std::pair<uint64_t, std::string> get(int32_t pid, uint64_t start_time) const;

  /// Forgets the processes for which `gone(pid, start_time)` is true.
  void forget_if(const std::function<bool(int32_t, uint64_t)>& gone);

  /// Processes held.
  size_t size() const;

private:
  struct entry {
    uint64_t start_time = 0;
    uint64_t revision = 0;
    std::string members;
  };
  mutable std::mutex mutex_;
  std::unordered_map<int32_t, entry> entries_;
  uint64_t next_revision_ = 1;
};

/// `base` (a JSON object) with `members` in front of its own; `base` when
/// either is empty.
std::string with_members(const std::string& base, const std::string& members);

/// The lookups, each by pid; an empty function is a feature turned off.
/// Each returns "" when it has nothing for that process.
struct enricher_parts {
  std::function<std::string(int32_t pid)> container_name;
  std::function<std::string(int32_t pid)> app_id;
  std::function<std::string(int32_t pid)> app_metadata_json;
  /// Runtime-specific members added to a process's application metadata
  /// (with app_metadata_json only); null: none. A process whose members
  /// change after it was looked up gets its metadata again.
  std::shared_ptr<app_metadata_extras> extras;
};

/// Used by the merger, from its own thread only.
class process_enricher {
public:
  virtual ~process_enricher() = default;

  /// The details of process `pid`, from the cache when the same process
  /// (pid and start time) was looked up before.
  virtual process_details details(int32_t pid) = 0;

  /// The container names of the processes looked up since the last call,
  /// sorted (the header's "containers"); ends a snapshot: processes not
  /// looked up in the last two snapshots leave the cache.
  virtual std::vector<std::string> end_snapshot() = 0;

  /// Whether container names are looked up (the header's
  /// "container_names_enabled").
  virtual bool container_names_enabled() const = 0;

  /// Whether application metadata is collected (the header's
  /// "application_metadata_enabled": without it, lines have no index).
  virtual bool application_metadata_enabled() const = 0;
};

/// The enricher over `parts`; `proc` (from make_proc_source()) tells
/// processes apart by start time.
std::unique_ptr<process_enricher>
make_process_enricher(enricher_parts parts, std::unique_ptr<proc_source> proc);

} // namespace gpa::rt

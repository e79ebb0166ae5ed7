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
#include <string>
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

/// The lookups, each by pid; an empty function is a feature turned off.
/// Each returns "" when it has nothing for that process.
struct enricher_parts {
  std::function<std::string(int32_t pid)> container_name;
  std::function<std::string(int32_t pid)> app_id;
  std::function<std::string(int32_t pid)> app_metadata_json;
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

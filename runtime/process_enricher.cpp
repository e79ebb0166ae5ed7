#include "runtime/process_enricher.hpp"

#include <algorithm>
#include <set>
#include <unordered_map>

#include "runtime/proc.hpp"

namespace gpa::rt {

void app_metadata_extras::put(int32_t pid, uint64_t start_time,
                              std::string members) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& e = entries_[pid];
  e.start_time = start_time;
  e.revision = next_revision_++;
  e.members = std::move(members);
}

std::pair<uint64_t, std::string>
app_metadata_extras::get(int32_t pid, uint64_t start_time) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto i = entries_.find(pid);
  if (i == entries_.end() || i->second.start_time != start_time)
    return {0, {}};
  return {i->second.revision, i->second.members};
}

void app_metadata_extras::forget_if(
    const std::function<bool(int32_t, uint64_t)>& gone) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto i = entries_.begin(); i != entries_.end();)
    if (gone(i->first, i->second.start_time))
      i = entries_.erase(i);
    else
      ++i;
}

size_t app_metadata_extras::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.size();
}

std::string with_members(const std::string& base, const std::string& members) {
  if (base.size() < 2 || base.front() != '{' || members.empty())
    return base;
  bool empty_object = base.find_first_not_of(" \t\r\n", 1) == base.size() - 1;
  return "{" + members + (empty_object ? "" : ",") + base.substr(1);
}

namespace {

class cached_enricher : public process_enricher {
public:
  cached_enricher(enricher_parts parts, std::unique_ptr<proc_source> proc)
      : parts_(std::move(parts)), proc_(std::move(proc)) {}

  process_details details(int32_t pid) override {
    // A pid the kernel gave to another process since is another process:
    // the start time tells them apart. A process that is gone keeps what
    // was found while it ran.
    proc_stat stat;
    uint64_t start = 0;
    bool alive = proc_ && proc_->read_stat(pid, stat);
    if (alive)
      start = stat.start_time;
    auto i = cache_.find(pid);
    if (i != cache_.end() && (!alive || i->second.start_time == start)) {
      auto& hit = i->second;
      hit.generation = generation_;
      // No container name yet (its runtime did not list it yet, did not
      // answer, or the names were refreshed too recently): asked again
      // once per snapshot while the process runs, as gProfiler asks again
      // at each profile. A process outside containers costs a read of its
      // cgroup file.
      // Members a runtime profiler added since (a JVM's version and flags,
      // found after the process was first seen).
      if (alive && parts_.extras && !hit.base_metadata.empty()) {
        auto [revision, members] = parts_.extras->get(pid, start);
        if (revision != hit.extras_revision) {
          hit.extras_revision = revision;
          hit.details.app_metadata_json
              = with_members(hit.base_metadata, members);
        }
      }
      if (alive && hit.details.container.empty() && parts_.container_name
          && hit.container_generation != generation_) {
        hit.container_generation = generation_;
        hit.details.container = parts_.container_name(pid);
      }
      note(hit.details);
      return hit.details;
    }
    entry e;
    e.start_time = start;
    e.generation = generation_;
    e.container_generation = generation_;
    if (parts_.container_name)
      e.details.container = parts_.container_name(pid);
    if (parts_.app_id)
      e.details.appid = parts_.app_id(pid);
    if (parts_.app_metadata_json) {
      e.base_metadata = parts_.app_metadata_json(pid);
      e.details.app_metadata_json = e.base_metadata;
      if (alive && parts_.extras && !e.base_metadata.empty()) {
        auto [revision, members] = parts_.extras->get(pid, start);
        e.extras_revision = revision;
        e.details.app_metadata_json = with_members(e.base_metadata, members);
      }
    }
    note(e.details);
    auto details = e.details;
    cache_[pid] = std::move(e);
    return details;
  }

  std::vector<std::string> end_snapshot() override {
    std::vector<std::string> names(seen_.begin(), seen_.end());
    seen_.clear();
    for (auto i = cache_.begin(); i != cache_.end();)
      if (generation_ - i->second.generation >= 2)
        i = cache_.erase(i);
      else
        ++i;
    ++generation_;
    return names;
  }

  bool container_names_enabled() const override {
    return static_cast<bool>(parts_.container_name);
  }

  bool application_metadata_enabled() const override {
    return static_cast<bool>(parts_.app_metadata_json);
  }

private:
  struct entry {
    uint64_t start_time = 0;
    uint64_t generation = 0;
    /// The snapshot in which the container name was last asked for.
    uint64_t container_generation = 0;
    /// The common metadata members, before a runtime profiler's.
    std::string base_metadata;
    /// The revision of the runtime profiler's members in `details`.
    uint64_t extras_revision = 0;
    process_details details;
  };

  void note(const process_details& d) {
    if (!d.container.empty())
      seen_.insert(d.container);
  }

  enricher_parts parts_;
  std::unique_ptr<proc_source> proc_;
  std::unordered_map<int32_t, entry> cache_;
  std::set<std::string> seen_;
  uint64_t generation_ = 0;
};

} // namespace

std::unique_ptr<process_enricher>
make_process_enricher(enricher_parts parts, std::unique_ptr<proc_source> proc) {
  return std::make_unique<cached_enricher>(std::move(parts), std::move(proc));
}

} // namespace gpa::rt

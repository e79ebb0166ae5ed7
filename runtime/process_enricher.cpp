#include "runtime/process_enricher.hpp"

#include <algorithm>
#include <set>
#include <unordered_map>

#include "runtime/proc.hpp"

namespace gpa::rt {

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
      i->second.generation = generation_;
      note(i->second.details);
      return i->second.details;
    }
    entry e;
    e.start_time = start;
    e.generation = generation_;
    if (parts_.container_name)
      e.details.container = parts_.container_name(pid);
    if (parts_.app_id)
      e.details.appid = parts_.app_id(pid);
    if (parts_.app_metadata_json)
      e.details.app_metadata_json = parts_.app_metadata_json(pid);
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

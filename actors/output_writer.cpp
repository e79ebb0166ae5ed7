#include "actors/output_writer.hpp"

#include <spdlog/spdlog.h>

#include "format/col.hpp"
#include "format/time.hpp"
#include "runtime/error.hpp"
#include "runtime/log.hpp"

namespace gpa {

caf::error writer_state::write_one(const std::string& name,
                                   std::string_view content,
                                   const std::string& link) {
  if (auto err = fs->write_atomic(cfg.opts.dir, name, content, 0644))
    return err;
  return fs->link_atomic(cfg.opts.dir, name, link);
}

void writer_state::rotate() {
  auto entries = fs->list(cfg.opts.dir, "profile_");
  if (!entries)
    return;
  // Names hold the end time in ISO 8601, so name order is time order.
  for (const char* ext : {".col", ".html"}) {
    std::vector<std::string> names;
    for (auto& e : *entries)
      if (e.regular && e.name.size() > std::strlen(ext)
          && e.name.compare(e.name.size() - std::strlen(ext), std::string::npos,
                            ext)
                 == 0)
        names.push_back(e.name);
    auto keep = static_cast<size_t>(cfg.opts.rotating_keep);
    for (size_t i = 0; i + keep < names.size(); ++i)
      fs->remove(cfg.opts.dir + "/" + names[i]);
  }
}

write_report writer_state::write(const profile& p) {
  write_report report;
  report.snapshot_id = p.snapshot_id;
  auto stem = "profile_"
              + format::iso8601(p.end_ms, format::time_precision::milliseconds);
  auto fail = [&](const caf::error& err) {
    report.error = describe(err);
    ++counts.failed;
    ++failed_in_episode;
    // One line per episode: the message names a different file every
    // window, so an episode is known by its cause (the text after the last
    // ": ", e.g. "No space left on device").
    auto colon = report.error.rfind(": ");
    auto cause = colon == std::string::npos ? report.error
                                            : report.error.substr(colon + 2);
    if (cause != last_error)
      log->error("cannot write profile {}: {}; going on (said once until it "
                 "changes or works again)",
                 p.snapshot_id, report.error);
    last_error = cause;
    return report;
  };
  if (auto err = fs->make_dirs(cfg.opts.dir, 0755))
    return fail(err);
  if (auto err = write_one(stem + ".col", p.col, "last_profile.col"))
    return fail(err);
  report.col_path = cfg.opts.dir + "/" + stem + ".col";
  if (cfg.render_page) {
    auto page = cfg.render_page(p.col);
    if (auto err = write_one(stem + ".html", page, "last_flamegraph.html"))
      return fail(err);
    report.html_path = cfg.opts.dir + "/" + stem + ".html";
  }
  if (cfg.opts.rotating)
    rotate();
  if (!last_error.empty())
    log->info("writing profiles works again ({} profile(s) could not be "
              "written)",
              failed_in_episode);
  last_error.clear();
  failed_in_episode = 0;
  ++counts.written;
  log->info("wrote {}", report.col_path);
  // The snapshot's burst (collapse, merge, page) is over: give its memory
  // back instead of keeping the peak.
  if (cfg.release_memory)
    cfg.release_memory();
  return report;
}

output_writer_actor::behavior_type
output_writer(output_writer_actor::stateful_pointer<writer_state> self,
              writer_config cfg, std::shared_ptr<rt::file_system> fs) {
  self->state.cfg = std::move(cfg);
  self->state.fs = std::move(fs);
  self->state.log = log::get("output");
  return {
      [self](write_atom, const profile& p) {
        self->state.write(p);
      },
      [self](stats_atom) {
        auto& c = self->state.counts;
        return caf::make_result(c.written, c.failed);
      },
  };
}

} // namespace gpa

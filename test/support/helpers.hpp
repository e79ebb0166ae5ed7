#pragma once

// Helpers shared by the tests: profiles with a recognisable marker per
// snapshot, and a log sink that captures what an actor logs.

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include <spdlog/sinks/base_sink.h>

#include "messages/profile.hpp"
#include "runtime/log.hpp"

namespace gpa::test {

/// The .col header line the tests use (no application metadata).
inline std::string col_header(bool app_metadata = false) {
  return std::string{"# {\"containers\": [], \"container_names_enabled\": "
                     "false, \"metadata\": {\"hostname\": \"h\"}, "
                     "\"metrics\": {\"cpu_avg\": 1.5, \"mem_avg\": 2.5}, "
                     "\"application_metadata\": [null], "
                     "\"application_metadata_enabled\": "}
         + (app_metadata ? "true" : "false")
         + ", \"profiling_mode\": \"cpu\"}\n";
}

/// A small profile whose stacks carry the marker "snap_<id>".
inline profile make_profile(uint64_t id) {
  profile p;
  p.snapshot_id = id;
  p.start_ms = 1714557600000 + static_cast<int64_t>(id) * 60000;
  p.end_ms = p.start_ms + 60000;
  p.col = col_header() + ";app;main;snap_" + std::to_string(id) + " 5\n"
          + "web;nginx;ngx_worker;epoll_wait_[k] 2\n";
  p.total_samples = 7;
  p.cpu_avg = 12.5;
  p.mem_avg = 40.25;
  return p;
}

/// Returns the snapshot id marked in a .col text, or 0.
inline uint64_t marker_of(const std::string& col) {
  auto pos = col.find("snap_");
  if (pos == std::string::npos)
    return 0;
  return std::stoull(col.substr(pos + 5));
}

/// An spdlog sink that keeps everything logged, for assertions.
class capture_sink : public spdlog::sinks::base_sink<std::mutex> {
public:
  /// Everything logged so far.
  std::string text() {
    std::lock_guard<std::mutex> guard{mutex_};
    return text_;
  }

protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    text_.append(msg.payload.data(), msg.payload.size());
    text_ += '\n';
  }
  void flush_() override {}

private:
  std::string text_;
};

/// Silences the console and attaches a capture sink at debug level to the
/// logger `name`. Call before spawning the actor that logs there.
inline std::shared_ptr<capture_sink> capture_log(const std::string& name) {
  log::silence();
  auto sink = std::make_shared<capture_sink>();
  auto lg = log::get(name);
  lg->sinks().push_back(sink);
  lg->set_level(spdlog::level::debug);
  return sink;
}

/// capture_log() of the uploader's logger.
inline std::shared_ptr<capture_sink> capture_uploader_log() {
  return capture_log("uploader");
}

/// How often `needle` occurs in `text`.
inline size_t occurrences(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (auto pos = text.find(needle); pos != std::string::npos;
       pos = text.find(needle, pos + needle.size()))
    ++n;
  return n;
}

} // namespace gpa::test

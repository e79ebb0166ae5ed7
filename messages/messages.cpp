#include "messages/error.hpp"
#include "messages/monitor.hpp"
#include "messages/profile.hpp"
#include "messages/reaper.hpp"
#include "messages/registry.hpp"
#include "messages/scheduler.hpp"
#include "messages/uploader.hpp"

#include <caf/message.hpp>

namespace gpa {

const char* to_string(ec x) {
  switch (x) {
    case ec::none: return "none";
    case ec::queue_full: return "queue_full";
    case ec::spawn_failed: return "spawn_failed";
    case ec::cancelled: return "cancelled";
    case ec::shutting_down: return "shutting_down";
    case ec::invalid_request: return "invalid_request";
    case ec::profiler_failed: return "profiler_failed";
    case ec::write_failed: return "write_failed";
    case ec::upload_failed: return "upload_failed";
  }
  return "unknown";
}

std::string to_string(stdout_mode x) {
  switch (x) {
    case stdout_mode::capture: return "capture";
    case stdout_mode::file: return "file";
    case stdout_mode::discard: return "discard";
  }
  return "unknown";
}

std::string to_string(pressure_level x) {
  switch (x) {
    case pressure_level::normal: return "normal";
    case pressure_level::warning: return "warning";
    case pressure_level::critical: return "critical";
    case pressure_level::emergency: return "emergency";
  }
  return "unknown";
}

std::string to_string(pressure_cause x) {
  switch (x) {
    case pressure_cause::none: return "none";
    case pressure_cause::agent: return "agent";
    case pressure_cause::tree: return "tree";
    case pressure_cause::both: return "both";
  }
  return "unknown";
}

caf::error make_gpa_error(ec code, std::string context) {
  return caf::make_error(code, std::move(context));
}

std::string describe(const caf::error& err) {
  if (!err)
    return "no error";
  if (err.category() == caf::atom("gpa")) {
    std::string result = to_string(static_cast<ec>(err.code()));
    auto& ctx = err.context();
    if (ctx.size() == 1 && ctx.match_element<std::string>(0)) {
      result += ": ";
      result += ctx.get_as<std::string>(0);
    }
    return result;
  }
  return caf::to_string(err);
}

} // namespace gpa

namespace gpa {

void add_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_types<caf::id_block::gpa>();
}

} // namespace gpa

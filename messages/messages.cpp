#include "messages/control.hpp"
#include "messages/monitor.hpp"
#include "messages/profile.hpp"
#include "messages/reaper.hpp"
#include "messages/registry.hpp"
#include "messages/scheduler.hpp"
#include "messages/uploader.hpp"

#include <caf/message.hpp>

namespace gpa {

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

} // namespace gpa

namespace gpa {

void add_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_types<caf::id_block::gpa>();
}

} // namespace gpa

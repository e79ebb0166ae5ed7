#pragma once

#include <caf/actor_system_config.hpp>

namespace gpa {

/// Registers every message type of the gpa type-id block with CAF. Call on
/// every actor_system_config the agent or a test creates.
void add_message_types(caf::actor_system_config& cfg);

} // namespace gpa

#pragma once

// The one place where the agent's actors are spawned, wired and shut down.

#include "config/options.hpp"

namespace gpa {

/// Runs the agent with `opts` until its work is done (one window without
/// --continuous) or SIGINT/SIGTERM arrives. Shuts the actors down in order,
/// killing and reaping every child. A second signal during shutdown forces
/// the exit. Returns the process exit status.
int run_agent(const agent_options& opts);

} // namespace gpa

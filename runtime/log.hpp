#pragma once

// Logging on spdlog: one named logger per actor ("reaper", "scheduler", ...),
// all writing to the same sinks (the console and, if configured, a rotating
// file). Loggers made before setup() write to the console.

#include <memory>
#include <string>

#include <spdlog/logger.h>

#include "config/options.hpp"

namespace gpa::log {

/// Configures the sinks and level of every logger, existing and future.
/// Returns an error text if the log file cannot be opened (the console keeps
/// working), or an empty string.
std::string setup(const log_options& opts);

/// Sends everything to a null sink (tests that do not want output).
void silence();

/// Returns the logger named `name`, creating it on first use.
std::shared_ptr<spdlog::logger> get(const std::string& name);

/// Flushes and drops every logger (at exit).
void shutdown();

} // namespace gpa::log

#pragma once

// Logging on spdlog: one named logger per actor ("reaper", "scheduler", ...),
// all writing to the same sinks (the console and, if configured, a rotating
// file, see setup()). Loggers made before setup() write to the console.

#include <memory>
#include <string>

#include <spdlog/logger.h>

#include "config/options.hpp"

namespace gpa::log {

/// Configures the sinks and level of every logger, existing and future.
/// The log file is opened the one safe way (rt::open_written_file: no
/// symbolic link, FIFO, device or directory, appended to, never truncated)
/// and rotated by renaming regular files only. Returns an error text naming
/// the file and what is wrong with it if it cannot be opened (the console
/// keeps working), or an empty string; sets `*unsafe` if the file exists but
/// is refused for what it is (the agent exits 2 then).
std::string setup(const log_options& opts, bool* unsafe = nullptr);

/// Sends everything to a null sink (tests that do not want output).
void silence();

/// Returns the logger named `name`, creating it on first use.
std::shared_ptr<spdlog::logger> get(const std::string& name);

/// Flushes and drops every logger (at exit).
void shutdown();

} // namespace gpa::log

#pragma once

// Logging on spdlog: one named logger per actor ("reaper", "scheduler", ...),
// all writing to the same sinks (the console and, if configured, a rotating
// file, see setup(); and the API server, see start_shipping()). Loggers made
// before setup() write to the console.
//
// The console is stderr. Under systemd with stderr connected to the journal
// (JOURNAL_STREAM names stderr, see stderr_is_journal()), each record is one
// line "<P>logger: message" (journal_line()): journald adds the time and
// takes the priority from the prefix. Elsewhere it is
// "[time] [logger] [level] message".

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include <spdlog/logger.h>

#include "config/options.hpp"
#include "runtime/log_shipper.hpp"

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

/// Starts sending every logger's records to the API server (gProfiler's
/// remote logs, see runtime/log_shipper.hpp) until shutdown(). The
/// shipper's own troubles are logged to the console and the log file only.
/// A second call replaces nothing (the first shipper goes on).
void start_shipping(rt::log_shipper_options opts);

/// Sends what is left and stops the shipper, within `deadline` (see
/// rt::log_shipper::stop); no-op without one. Records logged afterwards are
/// not shipped.
void stop_shipping(std::chrono::milliseconds deadline
                   = std::chrono::seconds{2});

/// stop_shipping(), then flushes and drops every logger (at exit).
void shutdown();

/// Whether stderr is connected to the systemd journal: JOURNAL_STREAM is
/// "<device>:<inode>" of stderr's fstat (the check systemd.exec(5)
/// documents: a child that inherits the variable with another stderr is not
/// connected).
bool stderr_is_journal();

/// The console line of a record for the journal: "<P>logger: message\n"
/// with P the syslog priority of sd-daemon(3) (trace and debug 7, info 6,
/// warn 4, error 3, critical 2), no time, and the message on one line: a
/// newline or NUL in it (either would start a record of its own) and a
/// carriage return are written as \n, \0, \r; a message longer than
/// journal_max_message bytes is cut with a note.
std::string journal_line(spdlog::level::level_enum level,
                         std::string_view logger, std::string_view message);

/// Message bytes of one journal line (journald's LineMax is 48K; a longer
/// line would be split into records without the priority).
inline constexpr size_t journal_max_message = 32 * 1024;

} // namespace gpa::log

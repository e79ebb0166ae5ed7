#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/make_message.hpp>
#include <caf/message.hpp>

namespace gpa {

/// Error codes of the agent's actors, carried in `caf::error` with the
/// category "gpa" and a context message that says what failed, on what.
enum class ec : uint8_t {
  /// Not an error (CAF reserves code 0).
  none = 0,
  /// The reaper's queue of waiting requests is full.
  queue_full,
  /// A child process could not be started (missing tool, exec failure).
  spawn_failed,
  /// The request was cancelled by tag before or while it ran.
  cancelled,
  /// A request was malformed (empty argv, bad file name, ...).
  invalid_request,
  /// Writing an output file failed.
  write_failed,
  /// An upload failed.
  upload_failed,
  /// A profiling tool ran but what it gave cannot be used (its own error,
  /// output that does not parse).
  tool_failed,
  /// A profiler left a target out on purpose (gProfiler's
  /// `[Profiling skipped: <why>]`).
  skipped,
};

/// Returns the name of `x`, e.g. "queue_full".
const char* to_string(ec x);

/// Renders `err` for logs and users: "gpa.queue_full: <context>" for our own
/// errors, CAF's rendering for others.
std::string describe(const caf::error& err);

/// The message of `err` for a user: the context of our own errors alone
/// ("cannot read x: ..."), describe() for others.
std::string message_of(const caf::error& err);

/// The first line of a tool's message (stderr or stdout) that holds none of
/// `noise`, trimmed and bounded to 200 bytes (it goes into an error frame
/// or a log line); "" if there is none.
std::string first_message_line(const std::string& text,
                               const std::vector<std::string>& noise = {});

/// Makes a `caf::error` of category "gpa" with a human-readable context.
caf::error make_gpa_error(ec code, std::string context);

} // namespace gpa

CAF_ERROR_CODE_ENUM(gpa::ec, "gpa")

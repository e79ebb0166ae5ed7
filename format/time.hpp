#pragma once

// The agent's one ISO 8601 formatter and parser (UTC only).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gpa::format {

/// How much of the time iso8601() writes.
enum class time_precision {
  /// "2024-05-01T10:00:00": as gProfiler sends times to Performance Studio
  /// (Python's `datetime.utcnow().replace(microsecond=0).isoformat()`).
  seconds,
  /// "2024-05-01T10:00:00.123Z": .col headers and output file names.
  milliseconds,
};

/// Formats `unix_ms` (ms since the epoch; before it rounds down) as ISO 8601
/// UTC.
std::string iso8601(int64_t unix_ms, time_precision precision);

/// Parses "YYYY-MM-DDTHH:MM:SS" with an optional fraction and an optional
/// "Z" or "+00:00" (read as UTC) into ms since the epoch; nullopt for
/// anything else.
std::optional<int64_t> parse_iso8601(std::string_view text);

} // namespace gpa::format

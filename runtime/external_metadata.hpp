#pragma once

// gProfiler's --external-metadata file: metadata that other tools hand the
// agent (gProfiler's external_metadata.py). Its format:
//
//   {"static": {"key": value, ...},
//    "application": {"<pid>": {"key": value, ...}, ...}}
//
// "static" goes into every profile's header ("external_metadata"), read
// once at start; "application" is each process's metadata, to be merged
// into that process's application metadata (the external one wins), and is
// re-read every window. A file not modified for 5 minutes is stale and not
// used.

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace gpa::rt {

/// gProfiler's EXTERNAL_METADATA_STALENESS_THRESHOLD_S: a file whose last
/// modification is longer ago is stale.
constexpr std::chrono::seconds external_metadata_max_age{5 * 60};

/// The file is read whole, up to this size.
constexpr uint64_t external_metadata_max_bytes = uint64_t{4} << 20;

/// The contents of an external metadata file.
struct external_metadata {
  /// The "static" object as JSON text ("{}" without one).
  std::string static_json = "{}";
  /// The "application" objects as JSON text, by PID.
  std::map<int64_t, std::string> application;
};

/// Parses the text of an external metadata file: a JSON object (depth
/// checked) whose "static", if present, is an object and whose
/// "application", if present, is an object of objects keyed by decimal
/// PIDs. Returns "" and fills `out`, or what is wrong and where.
std::string parse_external_metadata(std::string_view text,
                                    external_metadata& out);

/// What reading the file gave.
struct external_metadata_read {
  enum class outcome {
    /// Read and valid: `data` holds it.
    ok,
    /// Missing, not a regular file, too large or unreadable.
    unreadable,
    /// Not modified for longer than external_metadata_max_age.
    stale,
    /// Read, but not in the format above.
    invalid,
  };
  outcome result = outcome::ok;
  /// Unless ok: what is wrong, naming the file.
  std::string error;
  /// Empty unless ok.
  external_metadata data;
};

/// Reads the external metadata file `path` (a regular file, at most
/// external_metadata_max_bytes) as of `now_ms` (ms since the epoch; for the
/// staleness check). Never throws.
external_metadata_read read_external_metadata(const std::string& path,
                                              int64_t now_ms);

} // namespace gpa::rt

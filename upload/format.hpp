#pragma once

// Pure functions of the upload protocols (no I/O): the Performance Studio
// request (URL with query, JSON body), the 4 MB size rule that folds small
// stacks, the Pyroscope request, and the spool's record format.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <caf/expected.hpp>

#include "format/profile.hpp"

namespace gpa::upload {

// -- times and URLs
// ---------------------------------------------------------------

/// Percent-encodes everything but RFC 3986's unreserved characters.
std::string url_encode(std::string_view text);

/// Who uploads: what every Performance Studio request carries.
struct studio_identity {
  /// Base URL, e.g. "https://profiler.granulate.io" (a trailing '/' is ok).
  std::string server_host;
  /// API token (secret).
  std::string token;
  std::string service_name;
  std::string hostname;
  /// The agent's version (query parameter "version").
  std::string version;
  /// When the agent started, ms since the epoch (body field "spawn_time").
  int64_t spawn_time_ms = 0;
};

/// `<server>/api/v1/health_check?key&service&hostname&timestamp`.
std::string health_check_url(const studio_identity& id, int64_t now_ms);

/// `<server>/api/v2/profiles?key&service&hostname&timestamp&version`.
std::string profiles_url(const studio_identity& id, int64_t now_ms);

// -- the Performance Studio body
// ---------------------------------------------------

/// Writes the JSON body of POST /api/v2/profiles into `out`:
/// {start_time, end_time, hostname, profile, cpu_avg, mem_avg, spawn_time,
/// gpid}, times as format::iso8601 with seconds, `col` as the profile text
/// (invalid UTF-8 replaced by U+FFFD), gpid as a string ("" before the server
/// gave one).
void studio_body(const profile& p, std::string_view col,
                 const studio_identity& id, const std::string& gpid,
                 std::string& out);

/// Reads the gpid from a response body {"message": "ok", "gpid": N}: N as
/// text, or "" if absent or the body is not JSON.
std::string parse_gpid(std::string_view body);

/// The "message" of an error response, or the start of the body; at most
/// 300 characters, control characters removed.
std::string response_message(std::string_view body);

// -- the size rule
// ----------------------------------------------------------------

/// What fold_small_stacks() did.
struct fold_stats {
  /// Stack lines replaced by an "[other]" line.
  uint64_t folded_lines = 0;
  /// "[other]" lines written.
  uint64_t other_lines = 0;
};

/// The size rule. Returns `col` with its smallest stacks folded until the
/// text is at most `target_bytes` (or nothing is left to fold). Lines are read
/// by format::col_reader, so a process is "<prefix>;<comm>" as the header's
/// layout says (application_metadata_enabled). Stack lines
/// are taken in ascending order of count (ties: later lines first) and each
/// is replaced by its process's "<prefix>;<comm>;[other] <sum>" line, so
/// every process keeps its total count and the profile its total samples.
/// The header line and lines that are not "stack count" are kept as they
/// are; kept lines keep their order, [other] lines follow them.
std::string fold_small_stacks(std::string_view col, uint64_t target_bytes,
                              fold_stats* stats = nullptr);

// -- Pyroscope
// ---------------------------------------------------------------------

/// Turns a .col text into Pyroscope's folded format: no header, no
/// app-metadata index or container prefix, "comm;frame;...;frame count"
/// lines, identical stacks merged, first-appearance order.
std::string col_to_folded(std::string_view col);

/// `<base>/ingest?name=<app>{<tags>}&from&until&format=folded&sampleRate`.
std::string pyroscope_url(const std::string& base, const std::string& app,
                          const std::string& tags, int64_t from_s,
                          int64_t until_s, int64_t sample_rate_hz);

// -- the spool's record format
// ---------------------------------------------------

/// Serialises a profile for the spool: one line "gpa-spool 1 <snapshot>
/// <start_ms> <end_ms> <samples> <cpu_avg> <mem_avg>" then the .col text.
std::string to_spool_record(const profile& p);

/// Parses a spool record; an error names what is wrong with it.
caf::expected<profile> from_spool_record(std::string data);

} // namespace gpa::upload

#pragma once

// The protocol of Performance Studio's control plane, without actors: the
// heartbeat that an agent started with --enable-heartbeat-server sends every
// --heartbeat-interval seconds, the profiling command its answer may carry,
// the report of a command's completion, and the ledger of the commands
// already executed, kept across restarts. As gProfiler's
// dynamic_profiling_management/heartbeat.py speaks it (its
// docs/HEARTBEAT_SYSTEM_README.md describes it):
//
//   POST {api}/api/metrics/heartbeat, "Authorization: Bearer <token>",
//     {"ip_address", "hostname", "service_name", "last_command_id",
//      "status": "active", "timestamp", "received_command_ids",
//      "executed_command_ids"}
//   answer {"success": true, "message": ..., "profiling_command":
//     {"command_type": "start"|"stop", "combined_config": {...}},
//     "command_id": ...}, or without "profiling_command" when there is none
//   POST {api}/api/metrics/command_completion
//     {"command_id", "hostname", "status": "completed"|"failed",
//      "execution_time", "error_message", "results_path"}
//
// The answer is treated as hostile: the JSON's depth is limited before it
// is parsed, every field's type and size is checked, and an error names the
// field and what is wrong with it. Calls block.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <caf/expected.hpp>

#include "runtime/http_client.hpp"

namespace gpa::rt {

/// The longest command id accepted (Studio's are UUIDs, 36 characters).
inline constexpr size_t max_command_id_size = 128;

/// The most pids, and the most target host names, one command may carry.
inline constexpr size_t max_command_list_size = 10'000;

/// Returns "" if `id` can be a command id: 1 to 128 characters of
/// [A-Za-z0-9._:-]; else why not (without more than 40 characters of it).
std::string command_id_error(std::string_view id);

/// One command from a heartbeat answer.
struct studio_command {
  /// "command_id".
  std::string id;
  /// "start" or "stop" ("command_type"; gProfiler's default when absent is
  /// "start").
  std::string type;
  /// combined_config.continuous: a continuous profiling session rather than
  /// one of `duration_s`.
  bool continuous = false;
  /// combined_config.duration (seconds, > 0).
  std::optional<int64_t> duration_s;
  /// combined_config.frequency (Hz, > 0).
  std::optional<int64_t> frequency;
  /// combined_config.pids: a list of ints or a comma-separated string
  /// (Studio merges the pids of several requests into "1,2,3"); "", null or
  /// absent: none. Each is a positive 32-bit number.
  std::vector<int64_t> pids;
  /// combined_config.stop_level of stop commands: "host" (stop everything,
  /// the default) or "process" (stop profiling `pids`).
  std::string stop_level = "host";
  /// combined_config.target_hostnames (empty: any host).
  std::vector<std::string> target_hostnames;
  /// combined_config.profiling_mode ("" if absent): "cpu", "allocation",
  /// "none" as Studio offers them.
  std::string profiling_mode;
};

/// What a heartbeat says about this agent.
struct heartbeat_info {
  std::string hostname, ip_address, service_name;
  /// The id of the last command received ("" before the first: sent as
  /// null). Studio does not hand out this command again.
  std::string last_command_id;
  /// The ids received and executed, as gProfiler sends them.
  std::vector<std::string> received_ids, executed_ids;
  /// Wall clock, ms since the epoch: the "timestamp" (ISO 8601).
  int64_t now_ms = 0;
};

/// The JSON body of a heartbeat. The timestamp is UTC with milliseconds and
/// a "Z" (gProfiler sends its local time without a zone, which a server in
/// another time zone misreads); text that is not valid UTF-8 has U+FFFD in
/// place of its invalid bytes.
std::string heartbeat_body(const heartbeat_info& info);

/// The command in a heartbeat answer (a 200 body), none if it carries none
/// ("profiling_command" absent, null or {}), or an error (ec::invalid_request)
/// naming what is wrong: not JSON, nested too deep, "success" missing, not a
/// boolean or false (with the server's message), a field of the wrong type
/// or out of range, an unknown command type, a bad command id. Fields of
/// combined_config that are not studio_command's are ignored.
caf::expected<std::optional<studio_command>>
parse_heartbeat_answer(std::string_view body);

/// The JSON body of a command completion: {"command_id", "hostname",
/// "status", "execution_time", "error_message" ("" -> null),
/// "results_path": null}. `error_message` is cut to 1000 bytes.
std::string completion_body(const std::string& command_id,
                            const std::string& hostname,
                            const std::string& status, int64_t execution_time_s,
                            const std::string& error_message);

/// Sends heartbeats and completions over one http_client session. Blocking;
/// one caller thread (interrupt() excepted).
class studio_client {
public:
  /// Talks to `api_server` (base URL, e.g. "https://api.granulate.io"; a
  /// trailing '/' is fine) through `http`, with `token` as bearer token
  /// (none if empty). The token never appears in an error: put it in
  /// `http`'s secrets too, for its transport errors.
  studio_client(std::unique_ptr<http_client> http, std::string api_server,
                std::string token);

  /// POST {api}/api/metrics/heartbeat. The command of a 200 answer (see
  /// parse_heartbeat_answer), or an error (ec::upload_failed) for a
  /// transport failure or another status, naming the status and an excerpt
  /// of the body with the token redacted.
  caf::expected<std::optional<studio_command>>
  heartbeat(const heartbeat_info& info);

  /// POST {api}/api/metrics/command_completion (see completion_body). An
  /// error for a bad command id, a status other than "completed" or
  /// "failed" (ec::invalid_request, nothing sent), a transport failure or
  /// an answer other than 200 (ec::upload_failed).
  caf::expected<void> report_completion(const std::string& command_id,
                                        const std::string& hostname,
                                        const std::string& status,
                                        int64_t execution_time_s,
                                        const std::string& error_message);

  /// Makes the request in flight, and every later one, fail at once. From
  /// another thread, for shutdown.
  void interrupt();

  /// Longest time one request may take (gProfiler's: 30 s).
  void set_timeout(std::chrono::milliseconds timeout) {
    timeout_ = timeout;
  }

  /// The HTTP client's counters.
  http_stats stats() const {
    return http_->stats();
  }

private:
  /// POSTs `body` to `path` with the bearer token; the 200 answer's body,
  /// or an error that starts with `what`.
  caf::expected<std::string> post(const std::string& what,
                                  const std::string& path, std::string body);

  std::unique_ptr<http_client> http_;
  std::string api_;
  std::string token_;
  std::chrono::milliseconds timeout_{std::chrono::seconds{30}};
};

/// The command ids executed, kept across restarts (gProfiler's docs promise
/// it; its code keeps them in memory only): a small file in the agent's
/// state directory, a header line "gpa-command-ledger 1" and one id a line,
/// oldest first.
class command_ledger {
public:
  /// The most ids kept (gProfiler's max_command_history).
  static constexpr size_t max_ids = 1000;

  /// Reads the ledger at `path`. A missing file is an empty ledger. An error
  /// (naming the path and what is wrong) for a symbolic link (not followed),
  /// anything but a regular file, a file that cannot be read or is larger
  /// than a ledger can be, and one that is not a ledger (header, ids); the
  /// caller logs it and starts empty.
  static caf::expected<command_ledger> open(std::string path);

  /// Whether `id` was executed.
  bool contains(const std::string& id) const {
    return set_.count(id) > 0;
  }

  /// Remembers `id` (kept in memory even if writing fails; an id already
  /// known changes nothing) and writes the file atomically: a fresh
  /// temporary file in the same directory (O_EXCL, O_NOFOLLOW, mode 0600),
  /// fsync'd, renamed over `path`, so a symbolic link at `path` is replaced,
  /// never followed. Keeps the newest `max_ids` ids. An error for an invalid
  /// id (not remembered) or a failed write, naming the path.
  caf::expected<void> add(const std::string& id);

  /// The ids, oldest first.
  const std::vector<std::string>& ids() const {
    return ids_;
  }

  /// The ledger's file.
  const std::string& path() const {
    return path_;
  }

private:
  explicit command_ledger(std::string path) : path_(std::move(path)) {}

  std::string path_;
  std::vector<std::string> ids_;
  std::unordered_set<std::string> set_;
};

} // namespace gpa::rt

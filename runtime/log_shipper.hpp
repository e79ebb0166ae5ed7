#pragma once

// Log shipping to the API server, as gProfiler does it (its RemoteLogsHandler
// on granulate-utils' glogger): every record of every logger goes into a
// bounded buffer in memory, and a thread of its own sends the buffer as one
// batch now and then:
//
//   POST {scheme}://{host[:port]}/api/v1/logs
//   Content-Encoding: gzip, Content-Type: application/json,
//   X-Application-Name: gprofiler, X-Token: <token>
//   gzip({"batch_id": "<32 hex>", "metadata": {...}, "lost_logs_count": N,
//         "logs": [{"severity": S, "timestamp": ms, "text": {...}}, ...]})
//
// A batch leaves the buffer only once the server answered 2xx; records that
// did not fit (the buffer is full) are counted and the count goes with the
// next batch. Logging never waits for the network: the sink only copies the
// record into the buffer under a short lock.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <spdlog/sinks/sink.h>

#include "runtime/http_client.hpp"

namespace gpa::rt {

/// One log record as shipped.
struct log_record {
  /// Consecutive from 0 over the life of the buffer.
  uint64_t serial_no = 0;
  /// glogger's scale: 1 trace, 2 debug, 3 info, 4 warning, 5 error,
  /// 6 critical (see shipped_severity).
  int severity = 3;
  /// Wall-clock time of the record, milliseconds since the epoch.
  double timestamp_ms = 0;
  /// "gprofiler.<logger>", as gProfiler's loggers are named.
  std::string logger_name;
  /// The message, at most log_buffer_limits::max_message bytes.
  std::string message;
  /// Whether the message was cut to fit.
  bool truncated = false;
  /// The logging thread's id.
  uint64_t thread = 0;
};

/// glogger's severity of an spdlog level (its _levelno_to_severity on
/// Python's levels): trace 1, debug 2, info 3, warn 4, error 5, critical 6.
int shipped_severity(spdlog::level::level_enum level);

/// Bounds of the buffer (glogger's defaults: 5 MiB, 1 MiB, 25%).
struct log_buffer_limits {
  /// Bytes of all records held (messages, names and a fixed overhead per
  /// record, see log_buffer::footprint).
  size_t max_total = size_t{5} << 20;
  /// Bytes of one message; a longer one is cut (at a UTF-8 boundary).
  size_t max_message = size_t{1} << 20;
  /// Share of the records dropped, oldest first, when the buffer is full.
  double drop_fraction = 0.25;
};

/// The records waiting to be sent, bounded; thread-safe.
class log_buffer {
public:
  /// Records taken for one send; the buffer keeps them until confirm().
  struct batch {
    std::vector<std::shared_ptr<const log_record>> records;
    /// Records lost before this batch (the buffer was full), reported in it.
    uint64_t lost = 0;
  };

  explicit log_buffer(log_buffer_limits limits = {});

  /// Adds a record (its message cut to max_message), numbering it; drops
  /// the oldest drop_fraction of the records if the total is then over
  /// max_total, counting them as lost. Never blocks on anything but the
  /// buffer's own short lock.
  void append(int severity, double timestamp_ms, std::string_view logger_name,
              std::string_view message, uint64_t thread);

  /// Copies every record held (pointers: the records are shared) and the
  /// lost count, for one send.
  batch take() const;

  /// The server took `b`: drops its records still held, and takes the lost
  /// count it reported (and the records of it that overflow dropped in the
  /// meantime, which did arrive) off the lost count.
  void confirm(const batch& b);

  /// Records held.
  size_t count() const;
  /// Bytes held (as counted against max_total).
  size_t bytes() const;
  /// Records dropped and not reported yet.
  uint64_t lost() const;
  /// bytes() / max_total.
  double utilization() const;
  /// The serial number the next record gets.
  uint64_t next_serial() const;

  /// What a record counts against max_total.
  static size_t footprint(const log_record& r);

private:
  void drop_oldest_locked(size_t n);

  log_buffer_limits limits_;
  mutable std::mutex mtx_;
  std::deque<std::shared_ptr<const log_record>> records_;
  size_t bytes_ = 0;
  uint64_t next_serial_ = 0;
  uint64_t lost_ = 0;
};

/// The fixed metadata of every batch (gProfiler's get_metadata()).
struct log_metadata {
  std::string run_id;
  std::string gprofiler_version;
  std::string service_name;
  /// Left out when empty (gProfiler's get_hostname_or_none).
  std::string hostname;
};

/// The JSON body of one batch (compact, valid UTF-8: invalid bytes of a
/// message become U+FFFD).
std::string batch_json(const log_buffer::batch& b, const log_metadata& meta,
                       const std::string& batch_id);

/// Settings of a shipper.
struct log_shipper_options {
  /// The API server's base URL (--api-server); only its scheme and
  /// authority are used, as gProfiler's urlparse(...).netloc.
  std::string api_server = "https://api.granulate.io";
  /// X-Token. A secret: never in a log line or an error.
  std::string token;
  log_metadata metadata;
  /// TLS settings and the User-Agent; the token is added to its secrets.
  http_client_options http;
  log_buffer_limits limits;
  /// glogger's Sender: a batch every send_interval, or once the buffer is
  /// send_threshold full, but never more often than min_send_interval.
  std::chrono::milliseconds send_interval{30000};
  std::chrono::milliseconds min_send_interval{10000};
  double send_threshold = 0.8;
  /// Tries of one batch per send, send_retry_pause apart.
  int max_tries = 3;
  std::chrono::milliseconds send_retry_pause{1000};
  /// glogger's request timeouts: connect 1.5 s, read 10 s.
  std::chrono::milliseconds connect_timeout{1500};
  std::chrono::milliseconds request_timeout{10000};
  /// The shipper's own troubles (cannot send, works again): a line for the
  /// console and the log file, never for the shipped logs. Called from the
  /// sending thread, once per outage.
  std::function<void(spdlog::level::level_enum, const std::string&)> report;
  /// The HTTP client; empty: make_curl_http_client(http). Tests pass a
  /// scripted one.
  std::function<std::unique_ptr<http_client>(http_client_options)> make_client;
};

/// The URL batches go to: "{scheme}://{authority}/api/v1/logs" of
/// `api_server`; "" if it is not an http(s) URL with a host.
std::string logs_url(const std::string& api_server);

/// A new random run id, as gProfiler's (a UUID4 text).
std::string random_run_id();

/// The buffer, its sink and its sending thread.
class log_shipper {
public:
  /// Starts the sending thread.
  explicit log_shipper(log_shipper_options opts);
  /// stop() with its default deadline.
  ~log_shipper();
  log_shipper(const log_shipper&) = delete;
  log_shipper& operator=(const log_shipper&) = delete;

  /// The spdlog sink that feeds the buffer (add it to the loggers).
  spdlog::sink_ptr sink() const;

  /// Sends what is buffered once more and stops the thread, within
  /// `deadline`: a send still under way then is interrupted, and a thread
  /// that has not ended after another min(deadline, 1 s) is left behind
  /// (detached; it holds only its own state). Never hangs the exit.
  /// Idempotent.
  void stop(std::chrono::milliseconds deadline = std::chrono::seconds{2});

  /// The buffer (tests look at it).
  const log_buffer& buffer() const;

  /// Batches the server took, and sends that failed (every try of a batch).
  uint64_t batches_sent() const;
  uint64_t sends_failed() const;

  struct state;

private:
  std::shared_ptr<state> state_;
  spdlog::sink_ptr sink_;
  std::thread thread_;
};

} // namespace gpa::rt

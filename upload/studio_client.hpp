#pragma once

// The upload protocols over an rt::http_client, without actors: the
// Performance Studio health check and profile upload (with the size rule, the
// gpid carried from one upload to the next, and the session recycled on a
// schedule and after errors), and the Pyroscope ingest. The uploader actor and
// the upload-file command both send through this class. Calls block.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <caf/error.hpp>

#include "config/intervals.hpp"
#include "config/options.hpp"
#include "format/profile.hpp"
#include "runtime/http_client.hpp"
#include "upload/format.hpp"

namespace spdlog {
class logger;
} // namespace spdlog

namespace gpa {

/// The largest gzip body sent to Performance Studio by default: the backend
/// refuses bodies over 4 MB; 4,000,000 bytes is under both 4 MB and 4 MiB.
inline constexpr uint64_t default_body_limit = 4'000'000;

/// Settings of a studio_client.
struct studio_settings {
  /// Server, token, service, hostname, version, spawn time.
  upload::studio_identity identity;
  /// Longest time one request may take (--server-upload-timeout).
  std::chrono::milliseconds timeout{upload_options{}.timeout};
  /// Longest time connecting may take (never more than `timeout`).
  std::chrono::milliseconds connect_timeout{intervals::http_connect_timeout};
  /// Largest gzip body sent; larger profiles have small stacks folded.
  uint64_t body_limit = default_body_limit;
  /// A 413 lowers the limit to 3/4 of the refused body; below this floor the
  /// profile is dropped instead.
  uint64_t min_body_limit = 64 * 1024;
  /// Requests after which the HTTP session is recycled.
  uint64_t session_max_uploads = 100;
  /// Pyroscope's base URL; empty: no Pyroscope upload.
  std::string pyroscope_url;
  /// Pyroscope application name and "k=v,k=v" tags.
  std::string pyroscope_app = "gprofiler-agent";
  std::string pyroscope_tags;
  /// Sampling frequency of the profiles (Pyroscope's sampleRate).
  int64_t sample_rate_hz = 11;
  /// Wall clock, ms since the epoch, for the "timestamp" query parameter.
  /// Injected so that nothing here reads the OS clock by itself.
  std::function<int64_t()> now_ms;
};

/// How an upload ended.
enum class submit_status {
  /// Performance Studio accepted the profile.
  sent,
  /// It could not go now (no connection, timeout, reset, 5xx, 408, 429):
  /// keep it and try again later.
  retry,
  /// It will never be accepted (4xx other than 408/413/429, or too large
  /// even after folding): give it up.
  dropped,
};

/// What submit() did.
struct submit_outcome {
  submit_status status = submit_status::retry;
  /// Status of the last response; 0 if none arrived.
  int http_status = 0;
  /// Why it failed, for the log (no secrets).
  std::string reason;
  /// Requests that failed during this submit (a 413 followed by a smaller
  /// body that went through counts one).
  uint32_t failed_requests = 0;
  /// Whether the size rule folded stacks.
  bool folded = false;
  /// Bytes of the last gzip body sent.
  uint64_t body_bytes = 0;
};

/// One Performance Studio (and Pyroscope) session. Not thread-safe.
class studio_client {
public:
  /// Sends through `http` (shared, so that its owner can interrupt it) and
  /// logs to `log`.
  studio_client(std::shared_ptr<rt::http_client> http, studio_settings cfg,
                std::shared_ptr<spdlog::logger> log);

  /// GET /api/v1/health_check. Returns an error that says why the server is
  /// not reachable or not healthy.
  caf::error health_check();

  /// POST /api/v2/profiles with `p`, applying the size rule, carrying the
  /// gpid, and answering a 413 with a smaller body.
  submit_outcome submit(const profile& p);

  /// POST <pyroscope>/ingest with `p` in folded format. The outcome is
  /// `retry` for a transport error or a transient status (5xx, 408, 429),
  /// `dropped` for another 4xx.
  submit_outcome send_pyroscope(const profile& p);

  /// Whether a Pyroscope URL is configured.
  bool pyroscope_enabled() const {
    return !cfg_.pyroscope_url.empty();
  }

  /// Drops the HTTP session (its connection and caches); `why` is logged.
  void recycle(const char* why);

  /// Frees the reusable body buffers (memory pressure).
  void release_buffers();

  /// The gpid of the last accepted upload ("" before the first).
  const std::string& gpid() const {
    return gpid_;
  }

  /// Times the session was recycled.
  uint64_t recycles() const {
    return recycles_;
  }

  /// The HTTP client's counters.
  rt::http_stats http_stats() const {
    return http_->stats();
  }

private:
  /// Fills `out` from the answer to the POST `req`: sent; or a failed
  /// request with its reason (no secrets) and status `retry` (transport
  /// error, 5xx, 408, 429) or `dropped` (another 4xx).
  void judge(const rt::http_request& req,
             const caf::expected<rt::http_response>& resp,
             submit_outcome& out) const;

  /// Builds the gzip body of `p` within `limit_`, folding if needed.
  /// Returns false (with `reason`) if it cannot fit.
  bool build_body(const profile& p, bool& folded, std::string& reason);

  /// Sends `req`, then recycles the session after an error or when the
  /// schedule says so.
  caf::expected<rt::http_response> send(rt::http_request& req);

  /// The Performance Studio headers (API key, service name).
  void add_auth_headers(rt::http_request& req) const;

  std::shared_ptr<rt::http_client> http_;
  studio_settings cfg_;
  std::shared_ptr<spdlog::logger> log_;
  /// The gpid to send with the next upload.
  std::string gpid_;
  /// The body limit now (body_limit, lowered by 413 answers).
  uint64_t limit_;
  /// Requests on the current session.
  uint64_t uses_ = 0;
  /// Sessions recycled so far.
  uint64_t recycles_ = 0;
  /// Reused between uploads: the JSON text and its gzip.
  std::string json_;
  std::string body_;
};

} // namespace gpa

#pragma once

// The HTTP client interface: the only OS effect the uploader has besides its
// spool. One client is one session (one reused connection, kept alive between
// requests); the real implementation is on libcurl, the simulation's is
// scripted. Calls block: the uploader that owns a client runs detached.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <caf/expected.hpp>

#include "config/intervals.hpp"
#include "config/options.hpp"

namespace gpa::rt {

/// One HTTP request.
struct http_request {
  /// "GET", "POST" or "PUT" (with `body` as for POST, empty or not).
  std::string method = "GET";
  /// Absolute http:// or https:// URL, query included. May carry secrets
  /// (the `key` query value): clients never put it in errors or logs.
  std::string url;
  /// Extra headers, in order. Content-Length is set from `body` by the client.
  std::vector<std::pair<std::string, std::string>> headers;
  /// The body of a POST (sent as is; compress before).
  std::string body;
  /// Longest time the whole request may take, connect included.
  std::chrono::milliseconds timeout{upload_options{}.timeout};
  /// Longest time connecting (TCP and TLS handshake) may take.
  std::chrono::milliseconds connect_timeout{intervals::http_connect_timeout};
};

/// A response that arrived, whatever its status.
struct http_response {
  /// The HTTP status code (200, 413, 500, ...).
  int status = 0;
  /// The response body, at most `http_client_options::max_response_bytes`.
  std::string body;
};

/// What a client did so far.
struct http_stats {
  /// Requests attempted.
  uint64_t requests = 0;
  /// Requests that failed below HTTP (connect, timeout, reset, TLS).
  uint64_t transport_errors = 0;
  /// New connections opened (a reused connection does not count).
  uint64_t connections_opened = 0;
  /// Times the session was dropped with reset().
  uint64_t resets = 0;
};

/// Settings of a client, fixed for its lifetime.
struct http_client_options {
  /// Verify the server's TLS certificate and host name (--no-verify: off).
  bool verify = true;
  /// CA bundle file for verification; empty: the system's.
  std::string ca_bundle;
  /// Response bytes kept; the rest is read and dropped.
  size_t max_response_bytes = 64 * 1024;
  /// Texts that must never appear in an error message (the API token). They
  /// are replaced by "***" wherever they occur.
  std::vector<std::string> secrets;
  /// The User-Agent header.
  std::string user_agent = "gprofiler-agent";
  /// Whether the proxy of the environment (http_proxy, https_proxy, ...)
  /// is used, as libcurl does by default. Off for cloud metadata services,
  /// which are on the link and must not be asked through a proxy.
  bool use_proxy = true;
};

/// A blocking HTTP/1.1 client over one reusable session.
class http_client {
public:
  virtual ~http_client() = default;

  /// Sends `req` and waits for the whole response. Returns the response for
  /// any HTTP status, or an error (category gpa, ec::upload_failed) if no
  /// response arrived: cannot connect, timed out, connection reset, TLS
  /// failure. The error text never contains the URL's query values or a
  /// secret. Not thread-safe: one caller at a time.
  virtual caf::expected<http_response> send(const http_request& req) = 0;

  /// Drops the session: closes its connections and frees its caches. The
  /// next send() connects anew.
  virtual void reset() = 0;

  /// Makes the request in flight, and every later one, fail at once with an
  /// "interrupted" error. Thread-safe: meant for shutdown, from another
  /// thread, so that an owner blocked in send() gets its mailbox back.
  virtual void interrupt() = 0;

  /// What the client did so far.
  virtual http_stats stats() const = 0;
};

/// Makes the libcurl client: one CURL handle reused for keep-alive,
/// CURLOPT_NOSIGNAL, http and https only, no redirects, an empty "Expect:"
/// header. Calls curl_global_init once per process.
std::unique_ptr<http_client> make_curl_http_client(http_client_options opts);

/// Secrets shorter than this are redacted only where they stand as a whole
/// word: a 3-letter token must not turn every "get" of a log into "g***".
inline constexpr size_t min_substring_secret = 8;

/// Returns `text` with every `secrets` entry replaced by "***" (short ones,
/// see min_substring_secret, only as whole words) and the value of every
/// `key=` URL query parameter replaced by "***". URLs in logs go through
/// config::redact_url (password masked, query dropped).
std::string redact(std::string text, const std::vector<std::string>& secrets);

} // namespace gpa::rt

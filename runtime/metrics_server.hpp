#pragma once

// The metrics endpoint: serves rt::metrics::render() as Prometheus text on a
// loopback address. One small thread owns the listening socket and every
// connection and waits in poll() with short timeouts; requests are bounded in
// size and time; nothing here ever blocks an actor (the registry has its own
// mutex and render() holds it only while formatting).
//
// GET /metrics -> 200 "text/plain; version=0.0.4"; any other path or method
// -> 404; a malformed or oversized request -> 400. Every response closes the
// connection.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "runtime/metrics.hpp"

namespace gpa::rt {

/// A parsed loopback address.
struct loopback_endpoint {
  /// The numeric host, "127.0.0.1" or "::1" (never a name).
  std::string host;
  /// The TCP port; 0 picks a free one.
  uint16_t port = 0;
  /// Whether `host` is IPv6.
  bool ipv6 = false;
};

/// Parses "host:port" with host in 127.0.0.0/8, "localhost" or "[::1]".
/// Returns an empty string and fills `out`, or a message that says what is
/// wrong with `address` (e.g. a non-loopback host: the endpoint has no
/// authentication, so it is never served beyond this machine).
std::string parse_loopback_address(const std::string& address,
                                   loopback_endpoint& out);

/// Serves one metrics registry over HTTP until destroyed.
class metrics_server {
public:
  /// Largest request (request line and headers) read, in bytes.
  static constexpr size_t max_request_bytes = 8192;
  /// Connections served at once; more wait in the listen backlog.
  static constexpr size_t max_connections = 8;
  /// Time a connection may take from accept to the last byte sent, in ms.

  /// Binds `address` (see parse_loopback_address) and starts the thread.
  /// Throws std::runtime_error naming the address if it is not loopback or
  /// cannot be bound.
  metrics_server(const std::string& address,
                 std::shared_ptr<const metrics> reg);

  /// Stops the thread and closes every socket (within about 200 ms).
  ~metrics_server();

  metrics_server(const metrics_server&) = delete;
  metrics_server& operator=(const metrics_server&) = delete;

  /// The bound port (the chosen one if the address gave port 0).
  uint16_t port() const {
    return port_;
  }

  /// Responses sent so far, any status.
  uint64_t responses() const {
    return responses_.load();
  }

private:
  /// The server thread: poll, accept, read, answer, time out.
  void loop();

  /// What is served.
  std::shared_ptr<const metrics> reg_;
  /// The listening socket, and an eventfd that wakes the thread to stop.
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  /// The bound port.
  uint16_t port_ = 0;
  /// Set by the destructor.
  std::atomic<bool> stop_{false};
  /// Responses sent.
  std::atomic<uint64_t> responses_{0};
  /// The server thread.
  std::thread thread_;
};

} // namespace gpa::rt

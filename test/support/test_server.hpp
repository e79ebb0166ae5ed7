#pragma once

// Runs test/upload/server.py (the test backend) as a child process for the
// duration of a test: started on free ports of 127.0.0.1, killed and reaped
// in the destructor (and it exits by itself when our end of its stdin
// closes, should the test process die first).

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "runtime/http_client.hpp"

namespace gpa::test {

/// The test backend, running.
class test_server {
public:
  /// Starts the server that expects `token` and `service`. Throws
  /// std::runtime_error if it does not come up.
  test_server(std::string token, std::string service);

  /// Kills and reaps the server.
  ~test_server();
  test_server(const test_server&) = delete;
  test_server& operator=(const test_server&) = delete;

  /// "http://127.0.0.1:<data port>".
  std::string url() const;

  /// Every request the server recorded, as a JSON array.
  std::unique_ptr<rapidjson::Document> requests();

  /// The next profile uploads fail so, in order ("500", "400", "413",
  /// "slow", "reset").
  void faults(const std::vector<std::string>& names);

  /// Changes max_body (bytes) and slow_seconds.
  void configure(int64_t max_body, double slow_seconds);

  /// Queues a control-plane command (server.py's POST /commands): `json` is
  /// an object {"command_id"?, "command_type", "combined_config",
  /// "hostname"?, "deliver"?}. Returns the command's id.
  std::string queue_command(const std::string& json);

  /// The command completions and heartbeats received, as JSON arrays of
  /// their bodies.
  std::unique_ptr<rapidjson::Document> completions();
  std::unique_ptr<rapidjson::Document> heartbeats();

  /// The next heartbeats and completions fail so, in order ("500",
  /// "garbage", "deep", "reset", "slow").
  void control_faults(const std::vector<std::string>& names);
  /// The status /api/v1/logs answers sound batches with (200 at start).
  void logs_status(int status);

  /// Stops listening and cuts every open connection; up() listens again.
  void down();
  void up();

  /// The server's PID.
  int pid() const {
    return pid_;
  }

private:
  /// Kills and reaps the server.
  void stop();

  /// POSTs `body` to the control port's `path` and returns the answer's
  /// body; throws on failure.
  std::string control(const std::string& path, const std::string& body);

  /// GETs the control port's `path`, a JSON array; throws on failure.
  std::unique_ptr<rapidjson::Document> list(const std::string& path);

  int pid_ = -1;
  int stdin_fd_ = -1;
  int port_ = 0;
  int control_port_ = 0;
  std::unique_ptr<rt::http_client> http_;
};

/// Calls `pred` every 10 ms until it is true or `limit` passes. Returns
/// whether it became true. (Real processes and a real network: the tests
/// wait for states, never for fixed times.)
bool wait_until(const std::function<bool()>& pred,
                std::chrono::milliseconds limit = std::chrono::seconds{30});

/// Output and exit status of a finished child process.
struct run_output {
  int status = -1;
  std::string out;
  std::string err;
};

/// Runs `argv` (no shell) to completion, capturing stdout and stderr.
run_output run_process(const std::vector<std::string>& argv);

} // namespace gpa::test

#include "test/support/test_server.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

#ifndef GPA_TEST_SERVER_PY
#  error "GPA_TEST_SERVER_PY must name test/support/server.py"
#endif

namespace gpa::test {

namespace {

/// Spawns `argv` with the given descriptors as its stdin/stdout/stderr (-1:
/// inherit). Returns the PID or throws.
int spawn(const std::vector<std::string>& argv, int in, int out, int err) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (in >= 0)
    posix_spawn_file_actions_adddup2(&fa, in, 0);
  if (out >= 0)
    posix_spawn_file_actions_adddup2(&fa, out, 1);
  if (err >= 0)
    posix_spawn_file_actions_adddup2(&fa, err, 2);
  std::vector<char*> args;
  for (auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  auto rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    throw std::runtime_error("cannot start " + argv[0] + ": "
                             + std::strerror(rc));
  return pid;
}

} // namespace

test_server::test_server(std::string token, std::string service) {
  int in[2];
  int out[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0)
    throw std::runtime_error("pipe2 failed");
  pid_ = spawn(
      {"python3", GPA_TEST_SERVER_PY, "--token", token, "--service", service},
      in[0], out[1], -1);
  ::close(in[0]);
  ::close(out[1]);
  stdin_fd_ = in[1];
  // The first line is "READY <port> <control port>"; EOF means it died.
  std::string line;
  char c;
  while (::read(out[0], &c, 1) == 1 && c != '\n')
    line += c;
  ::close(out[0]);
  std::istringstream is{line};
  std::string ready;
  is >> ready >> port_ >> control_port_;
  if (ready != "READY" || port_ <= 0 || control_port_ <= 0) {
    stop();
    throw std::runtime_error("test server did not start: '" + line + "'");
  }
  rt::http_client_options opts;
  opts.max_response_bytes = size_t{256} << 20; // records carry whole bodies
  http_ = rt::make_curl_http_client(opts);
}

test_server::~test_server() {
  stop();
}

void test_server::stop() {
  if (stdin_fd_ >= 0) {
    ::close(stdin_fd_);
    stdin_fd_ = -1;
  }
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR)
      ;
    pid_ = -1;
  }
}

std::string test_server::url() const {
  return "http://127.0.0.1:" + std::to_string(port_);
}

std::string test_server::control(const std::string& path,
                                 const std::string& body) {
  rt::http_request req;
  req.method = "POST";
  req.url = "http://127.0.0.1:" + std::to_string(control_port_) + path;
  req.body = body;
  req.timeout = std::chrono::seconds{10};
  auto resp = http_->send(req);
  if (!resp || resp->status != 200)
    throw std::runtime_error("control request " + path + " failed");
  return std::move(resp->body);
}

std::unique_ptr<rapidjson::Document> test_server::requests() {
  rt::http_request req;
  req.url = "http://127.0.0.1:" + std::to_string(control_port_) + "/requests";
  req.timeout = std::chrono::seconds{10};
  auto resp = http_->send(req);
  if (!resp || resp->status != 200)
    throw std::runtime_error("cannot read the test server's records");
  auto doc = std::make_unique<rapidjson::Document>();
  doc->Parse(resp->body.data(), resp->body.size());
  if (doc->HasParseError() || !doc->IsArray())
    throw std::runtime_error("test server records are not a JSON array ("
                             + std::to_string(resp->body.size())
                             + " bytes, parse error at "
                             + std::to_string(doc->GetErrorOffset())
                             + "): " + resp->body.substr(0, 200));
  return doc;
}

std::unique_ptr<rapidjson::Document> test_server::completions() {
  return list("/completions");
}

std::unique_ptr<rapidjson::Document> test_server::heartbeats() {
  return list("/heartbeats");
}

std::string test_server::queue_command(const std::string& json) {
  auto answer = control("/commands", json);
  rapidjson::Document doc;
  doc.Parse(answer.data(), answer.size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("command_id")
      || !doc["command_id"].IsString())
    throw std::runtime_error("POST /commands answered " + answer);
  return doc["command_id"].GetString();
}

void test_server::control_faults(const std::vector<std::string>& names) {
  std::string body = "[";
  for (auto& n : names)
    body += (body.size() > 1 ? ",\"" : "\"") + n + "\"";
  body += "]";
  control("/control_faults", body);
}

std::unique_ptr<rapidjson::Document>
test_server::list(const std::string& path) {
  rt::http_request req;
  req.url = "http://127.0.0.1:" + std::to_string(control_port_) + path;
  req.timeout = std::chrono::seconds{10};
  auto resp = http_->send(req);
  if (!resp || resp->status != 200)
    throw std::runtime_error("cannot read the test server's " + path);
  auto doc = std::make_unique<rapidjson::Document>();
  doc->Parse(resp->body.data(), resp->body.size());
  if (doc->HasParseError() || !doc->IsArray())
    throw std::runtime_error("test server's " + path + " is not a JSON array: "
                             + resp->body.substr(0, 200));
  return doc;
}

void test_server::faults(const std::vector<std::string>& names) {
  std::string body = "[";
  for (auto& n : names)
    body += (body.size() > 1 ? ",\"" : "\"") + n + "\"";
  body += "]";
  control("/faults", body);
}

void test_server::configure(int64_t max_body, double slow_seconds) {
  control("/config", "{\"max_body\": " + std::to_string(max_body)
                         + ", \"slow_seconds\": " + std::to_string(slow_seconds)
                         + "}");
}

void test_server::logs_status(int status) {
  control("/config", "{\"logs_status\": " + std::to_string(status) + "}");
}

void test_server::down() {
  control("/down", "null");
}

void test_server::up() {
  control("/up", "null");
}

bool wait_until(const std::function<bool()>& pred,
                std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  return true;
}

run_output run_process(const std::vector<std::string>& argv) {
  int out[2];
  int err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0)
    throw std::runtime_error("pipe2 failed");
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  auto pid = spawn(argv, devnull, out[1], err[1]);
  ::close(devnull);
  ::close(out[1]);
  ::close(err[1]);
  run_output result;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  while (open_fds > 0) {
    if (::poll(fds, 2, -1) < 0 && errno != EINTR)
      break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0)
        continue;
      char buf[4096];
      auto n = ::read(fds[i].fd, buf, sizeof(buf));
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

} // namespace gpa::test

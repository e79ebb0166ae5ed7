#include "runtime/metrics_server.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/intervals.hpp"
#include "runtime/log.hpp"

namespace gpa::rt {

// -- address
// ---------------------------------------------------------------------

std::string parse_loopback_address(const std::string& address,
                                   loopback_endpoint& out) {
  auto bad = [&](const std::string& why) {
    return "metrics address '" + address + "': " + why;
  };
  std::string host;
  std::string port;
  if (!address.empty() && address[0] == '[') {
    auto close = address.find(']');
    if (close == std::string::npos || close + 1 >= address.size()
        || address[close + 1] != ':')
      return bad("expected [::1]:PORT");
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
  } else {
    auto colon = address.rfind(':');
    if (colon == std::string::npos)
      return bad("expected HOST:PORT, e.g. 127.0.0.1:9464");
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
    if (host.find(':') != std::string::npos)
      return bad("write an IPv6 host in brackets, e.g. [::1]:9464");
  }
  if (port.empty() || port.size() > 5
      || !std::all_of(port.begin(), port.end(),
                      [](char c) {
                        return c >= '0' && c <= '9';
                      })
      || std::stoul(port) > 65535)
    return bad("port '" + port + "' is not a number from 0 to 65535");
  loopback_endpoint result;
  result.port = static_cast<uint16_t>(std::stoul(port));
  if (host == "localhost")
    host = "127.0.0.1";
  in_addr v4{};
  in6_addr v6{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    if ((ntohl(v4.s_addr) >> 24) != 127)
      return bad("host " + host
                 + " is not a loopback address; the endpoint has no "
                   "authentication and is served on 127.0.0.0/8 or [::1] "
                   "only (scrape it locally or through a tunnel)");
    result.host = host;
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    if (!IN6_IS_ADDR_LOOPBACK(&v6))
      return bad("host " + host
                 + " is not a loopback address; the endpoint has no "
                   "authentication and is served on 127.0.0.0/8 or [::1] "
                   "only (scrape it locally or through a tunnel)");
    result.host = host;
    result.ipv6 = true;
  } else {
    return bad("host '" + host
               + "' must be a numeric loopback address (127.0.0.1, [::1]) "
                 "or localhost");
  }
  out = result;
  return {};
}

// -- server
// ----------------------------------------------------------------------

namespace {

using steady = std::chrono::steady_clock;

/// One accepted connection: reads a request, then writes one response.
struct connection {
  int fd = -1;
  std::string in;
  std::string out;
  size_t sent = 0;
  bool writing = false;
  steady::time_point deadline;
};

std::string response(int status, const char* reason, const char* type,
                     const std::string& body) {
  std::string r = "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\n";
  r += "Content-Type: ";
  r += type;
  r += "\r\nContent-Length: " + std::to_string(body.size())
       + "\r\nConnection: close\r\n\r\n";
  r += body;
  return r;
}

/// Builds the response to the request head in `head` (up to the blank line).
std::string answer(const std::string& head, const metrics& reg) {
  auto eol = head.find("\r\n");
  auto line = head.substr(0, eol == std::string::npos ? head.find('\n') : eol);
  auto sp1 = line.find(' ');
  auto sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == std::string::npos || sp2 == std::string::npos
      || line.compare(sp2 + 1, 5, "HTTP/") != 0)
    return response(400, "Bad Request", "text/plain; charset=utf-8",
                    "malformed request\n");
  auto method = line.substr(0, sp1);
  auto target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  auto path = target.substr(0, target.find('?'));
  if (method == "GET" && path == "/metrics")
    return response(200, "OK", "text/plain; version=0.0.4; charset=utf-8",
                    reg.render());
  return response(404, "Not Found", "text/plain; charset=utf-8",
                  "not found; metrics are at GET /metrics\n");
}

void close_fd(int& fd) {
  if (fd >= 0)
    ::close(fd);
  fd = -1;
}

} // namespace

metrics_server::metrics_server(const std::string& address,
                               std::shared_ptr<const metrics> reg)
    : reg_(std::move(reg)) {
  loopback_endpoint ep;
  if (auto err = parse_loopback_address(address, ep); !err.empty())
    throw std::runtime_error(err);
  auto fail = [&](const char* what) {
    auto msg = "metrics endpoint on " + address + ": " + what + ": "
               + std::strerror(errno);
    close_fd(listen_fd_);
    close_fd(wake_fd_);
    throw std::runtime_error(msg);
  };
  int family = ep.ipv6 ? AF_INET6 : AF_INET;
  listen_fd_ = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0)
    fail("socket");
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  int rc;
  if (ep.ipv6) {
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(ep.port);
    ::inet_pton(AF_INET6, ep.host.c_str(), &sa.sin6_addr);
    rc = ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  } else {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(ep.port);
    ::inet_pton(AF_INET, ep.host.c_str(), &sa.sin_addr);
    rc = ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  }
  if (rc != 0)
    fail("cannot bind");
  if (::listen(listen_fd_, 16) != 0)
    fail("cannot listen");
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = ntohs(ep.ipv6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                        : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0)
    fail("eventfd");
  thread_ = std::thread([this] {
    loop();
  });
  log::get("metrics")->info("serving Prometheus metrics on http://{}/metrics",
                            ep.ipv6
                                ? "[" + ep.host + "]:" + std::to_string(port_)
                                : ep.host + ":" + std::to_string(port_));
}

metrics_server::~metrics_server() {
  stop_ = true;
  uint64_t one = 1;
  if (::write(wake_fd_, &one, sizeof(one)) < 0) {
    // The loop also checks stop_ at every poll timeout.
  }
  if (thread_.joinable())
    thread_.join();
  close_fd(listen_fd_);
  close_fd(wake_fd_);
}

void metrics_server::loop() {
  std::vector<connection> conns;
  std::vector<pollfd> fds;
  char buf[2048];
  while (!stop_) {
    fds.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    // A full house leaves new connections waiting in the backlog.
    fds.push_back(
        {listen_fd_,
         static_cast<short>(conns.size() < max_connections ? POLLIN : 0), 0});
    auto now = steady::now();
    int timeout_ms = 200;
    for (auto& c : conns) {
      fds.push_back(
          {c.fd, static_cast<short>(c.writing ? POLLOUT : POLLIN), 0});
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      c.deadline - now)
                      .count();
      timeout_ms = static_cast<int>(
          std::clamp<long long>(left, 0, static_cast<long long>(timeout_ms)));
    }
    int n = ::poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0 && errno != EINTR)
      break;
    if (stop_)
      break;
    now = steady::now();
    // Serve the connections first: their pollfds start at index 2.
    for (size_t i = 0; i < conns.size(); ++i) {
      auto& c = conns[i];
      auto rev = n > 0 ? fds[i + 2].revents : 0;
      bool done = false;
      if (rev & (POLLERR | POLLNVAL)) {
        done = true;
      } else if (!c.writing && (rev & (POLLIN | POLLHUP))) {
        auto got = ::recv(c.fd, buf, sizeof(buf), 0);
        if (got <= 0) {
          done = got == 0 || (errno != EAGAIN && errno != EINTR);
        } else {
          c.in.append(buf, static_cast<size_t>(got));
          auto end = c.in.find("\r\n\r\n");
          if (end == std::string::npos)
            end = c.in.find("\n\n");
          if (end != std::string::npos) {
            c.out = answer(c.in.substr(0, end), *reg_);
            c.writing = true;
          } else if (c.in.size() > max_request_bytes) {
            c.out = response(400, "Bad Request", "text/plain; charset=utf-8",
                             "request too large\n");
            c.writing = true;
          }
          if (c.writing)
            c.in = std::string{};
        }
      } else if (c.writing && (rev & POLLOUT)) {
        auto put = ::send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent,
                          MSG_NOSIGNAL);
        if (put < 0) {
          done = errno != EAGAIN && errno != EINTR;
        } else {
          c.sent += static_cast<size_t>(put);
          if (c.sent == c.out.size()) {
            ++responses_;
            ::shutdown(c.fd, SHUT_WR);
            done = true;
          }
        }
      }
      if (!done && now >= c.deadline)
        done = true;
      if (done)
        close_fd(c.fd);
    }
    conns.erase(std::remove_if(conns.begin(), conns.end(),
                               [](const connection& c) {
                                 return c.fd < 0;
                               }),
                conns.end());
    if (n > 0 && (fds[1].revents & POLLIN)) {
      while (conns.size() < max_connections) {
        int fd = ::accept4(listen_fd_, nullptr, nullptr,
                           SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
          break;
        connection c;
        c.fd = fd;
        c.deadline = now + intervals::metrics_connection_timeout;
        conns.push_back(std::move(c));
      }
    }
  }
  for (auto& c : conns)
    close_fd(c.fd);
}

} // namespace gpa::rt

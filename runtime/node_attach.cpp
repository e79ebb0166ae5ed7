#include "runtime/node_attach.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "format/json.hpp"
#include "runtime/files.hpp"
#include "runtime/proc.hpp"

namespace gpa::rt {

namespace {

using clock_type = std::chrono::steady_clock;

/// The most the agent reads of any answer (the inspector's are small).
constexpr size_t answer_cap = 1 << 20;

int64_t ms_left(clock_type::time_point deadline) {
  return std::max<int64_t>(
      0, std::chrono::duration_cast<std::chrono::milliseconds>(
             deadline - clock_type::now())
             .count());
}

/// A TCP connection to 127.0.0.1:port; -1 if refused or not ready in time.
int connect_loopback(uint16_t port, clock_type::time_point deadline) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS) {
      ::close(fd);
      return -1;
    }
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof err;
    if (::poll(&p, 1, static_cast<int>(ms_left(deadline))) != 1
        || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0
        || err != 0) {
      ::close(fd);
      return -1;
    }
  }
  return fd;
}

bool send_all(int fd, const std::string& data,
              clock_type::time_point deadline) {
  size_t sent = 0;
  while (sent < data.size()) {
    auto n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR)
      return false;
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(ms_left(deadline))) != 1)
      return false;
  }
  return true;
}

/// Reads what is there into `buf` (at most answer_cap in all); false on
/// end of stream, error or time out.
bool receive_some(int fd, std::string& buf, clock_type::time_point deadline) {
  if (buf.size() >= answer_cap)
    return false;
  for (;;) {
    char chunk[16384];
    auto n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n > 0) {
      buf.append(chunk, static_cast<size_t>(n));
      return true;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR))
      return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(ms_left(deadline))) != 1)
      return false;
  }
}

/// Whether an HTTP answer (1.0 or 1.1) starts with status `code`.
bool status_is(const std::string& answer, const char* code) {
  return (answer.compare(0, 9, "HTTP/1.1 ") == 0
          || answer.compare(0, 9, "HTTP/1.0 ") == 0)
         && answer.compare(9, 3, code) == 0;
}

/// GET /json/list on the inspector port: the body, or "" if nothing
/// answers (yet).
std::string http_json_list(uint16_t port, clock_type::time_point deadline) {
  fd_guard fd{connect_loopback(port, deadline)};
  if (fd.fd < 0)
    return {};
  std::string req
      = "GET /json/list HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port)
        + "\r\nConnection: close\r\nAccept: application/json\r\n\r\n";
  if (!send_all(fd.fd, req, deadline))
    return {};
  // Until the body is complete (Content-Length) or the server closes.
  std::string buf;
  while (receive_some(fd.fd, buf, deadline)) {
    auto head_end = buf.find("\r\n\r\n");
    if (head_end == std::string::npos)
      continue;
    auto head = buf.substr(0, head_end);
    for (auto& c : head)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto at = head.find("\r\ncontent-length:");
    if (at != std::string::npos
        && buf.size() - head_end - 4
               >= std::strtoull(head.c_str() + at + 17, nullptr, 10))
      break;
  }
  auto end = buf.find("\r\n\r\n");
  if (!status_is(buf, "200") || end == std::string::npos)
    return {};
  return buf.substr(end + 4);
}

/// The path of the first target's webSocketDebuggerUrl in a /json/list
/// answer ("/<uuid>"), if it points at 127.0.0.1:port; "" otherwise.
std::string debugger_path(const std::string& body, uint16_t port) {
  rapidjson::Document doc;
  if (!format::parse_json(doc, body).empty() || !doc.IsArray() || doc.Empty()
      || !doc[0].IsObject())
    return {};
  auto it = doc[0].FindMember("webSocketDebuggerUrl");
  if (it == doc[0].MemberEnd() || !it->value.IsString())
    return {};
  std::string url(it->value.GetString(), it->value.GetStringLength());
  for (std::string host : {"127.0.0.1", "localhost"}) {
    auto prefix = "ws://" + host + ":" + std::to_string(port) + "/";
    if (url.compare(0, prefix.size(), prefix) == 0) {
      auto path = url.substr(prefix.size() - 1);
      bool clean = path.size() < 200
                   && std::all_of(path.begin(), path.end(), [](char c) {
                        return std::isalnum(static_cast<unsigned char>(c))
                               || c == '-' || c == '/' || c == '_';
                      });
      return clean ? path : std::string{};
    }
  }
  return {};
}

/// A WebSocket client connection to the inspector.
class ws_client {
public:
  ws_client(uint16_t port, const std::string& path,
            clock_type::time_point deadline)
      : fd_(connect_loopback(port, deadline)), deadline_(deadline) {
    if (fd_.fd < 0) {
      error_ = "cannot connect to the inspector";
      return;
    }
    // The key is a nonce: the server's answer is not checked against it
    // beyond its status (it is a local, just-opened inspector).
    std::string req = "GET " + path
                      + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port)
                      + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: Z3Byb2ZpbGVyLWFnZW50IQ==\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n";
    if (!send_all(fd_.fd, req, deadline_)) {
      error_ = "cannot talk to the inspector";
      return;
    }
    size_t end = std::string::npos;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos)
      if (buf_.size() > 16384 || !receive_some(fd_.fd, buf_, deadline_)) {
        error_ = "the inspector did not accept a WebSocket";
        return;
      }
    if (!status_is(buf_, "101")) {
      error_ = "the inspector refused the WebSocket";
      return;
    }
    buf_.erase(0, end + 4);
  }

  const std::string& error() const {
    return error_;
  }

  bool send_text(const std::string& text) {
    unsigned char mask[4];
    std::random_device rd;
    for (auto& m : mask)
      m = static_cast<unsigned char>(rd());
    return send_all(fd_.fd, websocket_client_frame(text, mask), deadline_);
  }

  /// The next text message; nullopt-like "" with ok=false on error.
  bool receive_text(std::string& out) {
    out.clear();
    for (;;) {
      uint8_t opcode = 0;
      bool fin = false;
      std::string payload;
      if (!frame(opcode, fin, payload))
        return false;
      if (opcode == 0x8)
        return false; // close
      if (opcode == 0x9 || opcode == 0xA)
        continue; // ping, pong: the inspector does not need a pong here
      out += payload;
      if (out.size() > answer_cap)
        return false;
      if (fin)
        return true;
    }
  }

private:
  bool need(size_t n) {
    while (buf_.size() < n)
      if (!receive_some(fd_.fd, buf_, deadline_))
        return false;
    return true;
  }

  bool frame(uint8_t& opcode, bool& fin, std::string& payload) {
    if (!need(2))
      return false;
    auto b0 = static_cast<uint8_t>(buf_[0]);
    auto b1 = static_cast<uint8_t>(buf_[1]);
    fin = (b0 & 0x80) != 0;
    opcode = b0 & 0x0F;
    bool masked = (b1 & 0x80) != 0;
    uint64_t len = b1 & 0x7F;
    size_t at = 2;
    if (len == 126) {
      if (!need(4))
        return false;
      len = (static_cast<uint64_t>(static_cast<uint8_t>(buf_[2])) << 8)
            | static_cast<uint8_t>(buf_[3]);
      at = 4;
    } else if (len == 127) {
      if (!need(10))
        return false;
      len = 0;
      for (size_t i = 2; i < 10; ++i)
        len = (len << 8) | static_cast<uint8_t>(buf_[i]);
      at = 10;
    }
    if (len > answer_cap)
      return false;
    size_t mask_at = at;
    if (masked)
      at += 4;
    if (!need(at + len))
      return false;
    payload = buf_.substr(at, len);
    if (masked)
      for (size_t i = 0; i < payload.size(); ++i)
        payload[i] = static_cast<char>(payload[i] ^ buf_[mask_at + i % 4]);
    buf_.erase(0, at + len);
    return true;
  }

  fd_guard fd_;
  clock_type::time_point deadline_;
  std::string buf_;
  std::string error_;
};

/// A Runtime.evaluate request for `expression`.
std::string evaluate_request(int id, const std::string& expression) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("id");
  w.Int(id);
  w.Key("method");
  w.String("Runtime.evaluate");
  w.Key("params");
  w.StartObject();
  w.Key("expression");
  w.String(expression.c_str(),
           static_cast<rapidjson::SizeType>(expression.size()));
  w.Key("returnByValue");
  w.Bool(true);
  w.EndObject();
  w.EndObject();
  return sb.GetString();
}

/// The string value of the answer to request `id`; false with `value` set
/// to why not if the answer is something else.
bool evaluate_answer(ws_client& ws, int id, std::string& value) {
  for (int messages = 0; messages < 64; ++messages) {
    std::string text;
    if (!ws.receive_text(text)) {
      value = "the inspector closed the connection";
      return false;
    }
    rapidjson::Document doc;
    if (!format::parse_json(doc, text).empty() || !doc.IsObject()) {
      value = "the inspector's answer is not JSON";
      return false;
    }
    auto idm = doc.FindMember("id");
    if (idm == doc.MemberEnd())
      continue; // an event
    if (!idm->value.IsInt() || idm->value.GetInt() != id)
      continue;
    auto res = doc.FindMember("result");
    if (res == doc.MemberEnd() || !res->value.IsObject()) {
      value = "the inspector answered with an error";
      return false;
    }
    auto inner = res->value.FindMember("result");
    if (inner == res->value.MemberEnd() || !inner->value.IsObject()) {
      value = "the inspector's answer has no result";
      return false;
    }
    auto v = inner->value.FindMember("value");
    if (v == inner->value.MemberEnd() || !v->value.IsString()) {
      value = "the evaluation did not give a string";
      return false;
    }
    value.assign(v->value.GetString(), v->value.GetStringLength());
    if (value.size() > 300)
      value = value.substr(0, 300) + "...";
    for (auto& c : value)
      if (static_cast<unsigned char>(c) < 0x20)
        c = ' ';
    return true;
  }
  value = "no answer from the inspector";
  return false;
}

/// The pid of the process in its own PID namespace (NSpid's last field).
int32_t namespace_pid(const std::string& proc_root, int32_t pid) {
  auto status = read_small_file(
      proc_root + "/" + std::to_string(pid) + "/status", 64 << 10);
  auto at = status.find("\nNSpid:");
  if (at == std::string::npos)
    return pid;
  auto end = status.find('\n', at + 1);
  auto line = status.substr(at + 7, end == std::string::npos ? std::string::npos
                                                             : end - at - 7);
  auto last = line.find_last_not_of(" \t");
  if (last == std::string::npos)
    return pid;
  auto first = line.find_last_of(" \t", last);
  auto field
      = line.substr(first == std::string::npos ? 0 : first + 1,
                    last - (first == std::string::npos ? 0 : first + 1) + 1);
  char* endp = nullptr;
  long v = std::strtol(field.c_str(), &endp, 10);
  return (endp != nullptr && *endp == '\0' && v > 0 && v < (1L << 30))
             ? static_cast<int32_t>(v)
             : pid;
}

/// Whether two paths are the same inode.
bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {
  }, sb{};
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0
         && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/// Opens `path` under the directory `root` as if it were "/" (openat2
/// RESOLVE_IN_ROOT), following no link at all.
int open_in_root(int root, const std::string& path, int flags) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC | O_NOFOLLOW);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(
      ::syscall(SYS_openat2, root, path.c_str(), &how, sizeof how));
}

/// Copies the addons under the target's root, into
/// /tmp/gprofiler-agent-node/ (a directory of root's, not a link); returns
/// them as the target sees them, or sets `error`.
std::vector<node_addon> place_in_root(const std::string& proc_root, int32_t pid,
                                      const std::vector<node_addon>& addons,
                                      std::string& error) {
  const std::string dir_name = "gprofiler-agent-node";
  auto root_path = proc_root + "/" + std::to_string(pid) + "/root";
  fd_guard root{::open(root_path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC)};
  if (root.fd < 0) {
    error = "cannot open " + root_path;
    return {};
  }
  fd_guard tmp{open_in_root(root.fd, "/tmp", O_RDONLY | O_DIRECTORY)};
  if (tmp.fd < 0) {
    error = "the process has no /tmp directory (or it is a link)";
    return {};
  }
  if (::mkdirat(tmp.fd, dir_name.c_str(), 0755) != 0 && errno != EEXIST) {
    error = "cannot create /tmp/" + dir_name + " in the process's root";
    return {};
  }
  fd_guard dir{::openat(tmp.fd, dir_name.c_str(),
                        O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)};
  struct stat st {};
  if (dir.fd < 0 || ::fstat(dir.fd, &st) != 0 || st.st_uid != 0
      || (st.st_mode & 0022) != 0) {
    error = "/tmp/" + dir_name
            + " in the process's root is not a directory of root's that "
              "only root may write";
    return {};
  }
  std::vector<node_addon> placed;
  for (auto& a : addons) {
    auto base = a.path.substr(a.path.rfind('/') + 1);
    auto bytes = read_small_file(a.path, 16 << 20);
    if (bytes.empty()) {
      error = "cannot read " + a.path;
      return {};
    }
    auto part = base + ".part" + std::to_string(::getpid());
    fd_guard out{::openat(dir.fd, part.c_str(),
                          O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                          0644)};
    if (out.fd < 0) {
      error = "cannot write /tmp/" + dir_name + "/" + part;
      return {};
    }
    size_t done = 0;
    while (done < bytes.size()) {
      auto n = ::write(out.fd, bytes.data() + done, bytes.size() - done);
      if (n <= 0) {
        ::unlinkat(dir.fd, part.c_str(), 0);
        error = "cannot write /tmp/" + dir_name + "/" + part;
        return {};
      }
      done += static_cast<size_t>(n);
    }
    if (::renameat(dir.fd, part.c_str(), dir.fd, base.c_str()) != 0) {
      ::unlinkat(dir.fd, part.c_str(), 0);
      error = "cannot place /tmp/" + dir_name + "/" + base;
      return {};
    }
    placed.push_back({a.abi, "/tmp/" + dir_name + "/" + base});
  }
  return placed;
}

/// Joins the network namespace of `pid` if it is not ours.
std::string join_network(const std::string& proc_root, int32_t pid) {
  auto theirs = proc_root + "/" + std::to_string(pid) + "/ns/net";
  if (same_file(theirs, "/proc/self/ns/net"))
    return {};
  fd_guard ns{::open(theirs.c_str(), O_RDONLY | O_CLOEXEC)};
  if (ns.fd < 0 || ::setns(ns.fd, CLONE_NEWNET) != 0)
    return "cannot join the process's network namespace: "
           + std::string(std::strerror(errno));
  return {};
}

} // namespace

std::string websocket_client_frame(const std::string& text,
                                   const unsigned char mask[4]) {
  std::string f;
  f.push_back(static_cast<char>(0x81)); // FIN, text
  auto n = text.size();
  if (n < 126) {
    f.push_back(static_cast<char>(0x80 | n));
  } else if (n <= 0xFFFF) {
    f.push_back(static_cast<char>(0x80 | 126));
    f.push_back(static_cast<char>((n >> 8) & 0xFF));
    f.push_back(static_cast<char>(n & 0xFF));
  } else {
    f.push_back(static_cast<char>(0x80 | 127));
    for (int shift = 56; shift >= 0; shift -= 8)
      f.push_back(
          static_cast<char>((static_cast<uint64_t>(n) >> shift) & 0xFF));
  }
  for (int i = 0; i < 4; ++i)
    f.push_back(static_cast<char>(mask[i]));
  for (size_t i = 0; i < n; ++i)
    f.push_back(static_cast<char>(text[i] ^ mask[i % 4]));
  return f;
}

std::vector<node_addon> find_node_addons(const std::string& dir) {
  std::vector<node_addon> result;
  const std::string prefix = "gpa-node-perfmap-";
  const std::string suffix = ".node";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr)
    return result;
  while (auto* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.size() <= prefix.size() + suffix.size()
        || name.compare(0, prefix.size(), prefix) != 0
        || name.compare(name.size() - suffix.size(), suffix.size(), suffix)
               != 0)
      continue;
    auto abi = name.substr(prefix.size(),
                           name.size() - prefix.size() - suffix.size());
    if (abi.empty() || abi.size() > 6
        || !std::all_of(abi.begin(), abi.end(), ::isdigit))
      continue;
    result.push_back({abi, dir + "/" + name});
  }
  ::closedir(d);
  std::sort(result.begin(), result.end(), [](auto& a, auto& b) {
    return std::stoi(a.abi) < std::stoi(b.abi);
  });
  return result;
}

std::string node_attach_expression(int32_t nspid,
                                   const std::vector<node_addon>& addons,
                                   bool stop) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  std::string abis;
  for (auto& a : addons) {
    w.Key(a.abi.c_str());
    w.String(a.path.c_str());
    abis += (abis.empty() ? "" : ", ") + a.abi;
  }
  w.EndObject();
  std::string js = "(function () { try {";
  js += " if (typeof process === 'undefined') return 'no process object';";
  js += " if (process.pid !== " + std::to_string(nspid)
        + ") return 'the inspector on the port is another process (pid ' + "
          "process.pid + ')';";
  js += " const addons = " + std::string(sb.GetString()) + ";";
  js += " const path = addons[process.versions.modules];";
  js += " if (!path) return 'Node.js ' + process.version + ' (ABI ' + "
        "process.versions.modules + ') is not supported: the agent has "
        "addons for ABI "
        + abis + "';";
  js += " const m = { exports: {} }; process.dlopen(m, path);";
  js += stop ? " m.exports.stop(); return 'ok ' + process.version;"
             : " const why = m.exports.start(); return why ? why : 'ok ' + "
               "process.version;";
  js += " } catch (e) { return 'error: ' + String(e && e.message); } })()";
  return js;
}

node_attach_result node_attach(const node_attach_request& req) {
  node_attach_result r;
  auto deadline = clock_type::now() + std::chrono::milliseconds(req.wait_ms);
  auto pid_dir = req.proc_root + "/" + std::to_string(req.pid);
  proc_stat st;
  if (!parse_proc_stat(read_small_file(pid_dir + "/stat", 8192), st)
      || st.state == 'Z') {
    r.error = "process went down";
    return r;
  }
  if (req.start_time != 0 && st.start_time != req.start_time) {
    r.error = "process went down (its pid is another process's now)";
    return r;
  }
  auto addons = find_node_addons(req.module_dir);
  if (addons.empty()) {
    r.error
        = "no Node.js addon (gpa-node-perfmap-<abi>.node) in " + req.module_dir;
    return r;
  }
  if (!same_file(pid_dir + "/root", "/")) {
    addons = place_in_root(req.proc_root, req.pid, addons, r.error);
    if (!r.error.empty())
      return r;
  }
  auto nspid = namespace_pid(req.proc_root, req.pid);
  if (r.error = join_network(req.proc_root, req.pid); !r.error.empty())
    return r;
  // Node opens its inspector on SIGUSR1 (and keeps it open if it was).
  if (::kill(req.pid, SIGUSR1) != 0) {
    r.error = "cannot signal the process: " + std::string(std::strerror(errno));
    return r;
  }
  std::string path;
  while (path.empty()) {
    auto body = http_json_list(
        req.port,
        std::min(deadline, clock_type::now() + std::chrono::seconds(1)));
    path = debugger_path(body, req.port);
    if (!path.empty())
      break;
    if (ms_left(deadline) <= 0) {
      r.error = body.empty() ? "the inspector did not open on 127.0.0.1:"
                                   + std::to_string(req.port)
                             : "the inspector's target list has no usable "
                               "webSocketDebuggerUrl";
      return r;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ws_client ws(req.port, path, deadline);
  if (!ws.error().empty()) {
    r.error = ws.error();
    return r;
  }
  std::string value;
  if (!ws.send_text(
          evaluate_request(1, node_attach_expression(nspid, addons, req.stop)))
      || !evaluate_answer(ws, 1, value)) {
    r.error = value.empty() ? "cannot talk to the inspector" : value;
    return r;
  }
  if (value.compare(0, 3, "ok ") == 0)
    r.node_version = value.substr(3);
  else
    r.error = value;
  // Close the inspector again, as gProfiler does; the answer does not
  // matter (the connection ends with it).
  ws.send_text(evaluate_request(2, "process._debugEnd()"));
  return r;
}

} // namespace gpa::rt

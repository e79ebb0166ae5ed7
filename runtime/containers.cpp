#include "runtime/containers.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>
#include <unordered_map>

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/logger.h>

#include "format/json.hpp"
#include "format/utf8.hpp"
#include "runtime/log.hpp"

namespace gpa::rt {

// -- container ids from /proc/PID/cgroup
// ---------------------------------------

namespace {

constexpr size_t id_length = 64;

bool lower_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/// Length of the line break at text[i] as Python's str.splitlines() sees
/// it (\n, \r, \r\n, \v, \f, \x1c-\x1e, U+0085, U+2028, U+2029), or 0.
size_t line_break_at(std::string_view text, size_t i) {
  auto c = static_cast<unsigned char>(text[i]);
  switch (c) {
    case '\r': return i + 1 < text.size() && text[i + 1] == '\n' ? 2 : 1;
    case '\n':
    case '\v':
    case '\f':
    case 0x1c:
    case 0x1d:
    case 0x1e: return 1;
    case 0xc2:
      return i + 1 < text.size()
                     && static_cast<unsigned char>(text[i + 1]) == 0x85
                 ? 2
                 : 0;
    case 0xe2:
      return i + 2 < text.size()
                     && static_cast<unsigned char>(text[i + 1]) == 0x80
                     && (static_cast<unsigned char>(text[i + 2]) == 0xa8
                         || static_cast<unsigned char>(text[i + 2]) == 0xa9)
                 ? 3
                 : 0;
    default: return 0;
  }
}

/// The last match of re.findall("[a-f0-9]{64}", path), or an empty view.
std::string_view last_id_in(std::string_view path) {
  std::string_view last;
  size_t i = 0;
  while (i < path.size()) {
    if (!lower_hex(path[i])) {
      ++i;
      continue;
    }
    size_t start = i;
    while (i < path.size() && lower_hex(path[i]))
      ++i;
    size_t run = i - start;
    // findall takes 64-digit pieces from the start of the run, without
    // overlap: the last one starts at the last whole multiple of 64.
    if (run >= id_length)
      last = path.substr(start + (run / id_length - 1) * id_length, id_length);
  }
  return last;
}

} // namespace

bool is_container_id(std::string_view id) {
  return id.size() == id_length && std::all_of(id.begin(), id.end(), lower_hex);
}

std::string container_id_from_cgroup(std::string_view text) {
  // gProfiler decodes the file as UTF-8 and parses every line before it
  // looks at any: bad bytes or a malformed line anywhere mean no container.
  if (!format::is_valid_utf8(text))
    return {};
  std::string_view found;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = pos;
    size_t brk = 0;
    while (end < text.size() && (brk = line_break_at(text, end)) == 0)
      ++end;
    auto line = text.substr(pos, end - pos);
    pos = end + brk;
    auto first = line.find(':');
    auto second = first == std::string_view::npos ? std::string_view::npos
                                                  : line.find(':', first + 1);
    if (second == std::string_view::npos)
      return {};
    if (found.empty())
      found = last_id_in(line.substr(second + 1));
  }
  return std::string{found};
}

// -- the Docker Engine API's reply ------------------------------------------

std::string parse_docker_containers(std::string_view json,
                                    std::vector<container_entry>& out) {
  rapidjson::Document doc;
  if (auto why = format::parse_json(doc, json); !why.empty())
    return "not JSON: " + why;
  if (!doc.IsArray())
    return "not a JSON array of containers";
  for (auto& c : doc.GetArray()) {
    if (!c.IsObject())
      continue;
    auto id = c.FindMember("Id");
    auto names = c.FindMember("Names");
    if (id == c.MemberEnd() || !id->value.IsString() || names == c.MemberEnd()
        || !names->value.IsArray())
      continue;
    std::string_view id_text{id->value.GetString(),
                             id->value.GetStringLength()};
    if (!is_container_id(id_text))
      continue;
    std::string_view best;
    for (auto& n : names->value.GetArray()) {
      if (!n.IsString())
        continue;
      std::string_view name{n.GetString(), n.GetStringLength()};
      if (!name.empty() && name.front() == '/')
        name.remove_prefix(1);
      if (name.empty() || name.size() > max_container_name)
        continue;
      // "/other/alias" is the alias a legacy link gives this container in
      // another one's namespace, not its name.
      if (name.find('/') == std::string_view::npos) {
        best = name;
        break;
      }
      if (best.empty())
        best = name;
    }
    if (!best.empty())
      out.push_back({std::string{id_text}, std::string{best}});
  }
  return {};
}

// -- gRPC framing and the CRI messages ---------------------------------------

std::string grpc_frame(std::string_view message) {
  std::string out;
  out.reserve(5 + message.size());
  out += '\0';
  auto n = static_cast<uint32_t>(message.size());
  out += static_cast<char>((n >> 24) & 0xff);
  out += static_cast<char>((n >> 16) & 0xff);
  out += static_cast<char>((n >> 8) & 0xff);
  out += static_cast<char>(n & 0xff);
  out.append(message.data(), message.size());
  return out;
}

std::string grpc_unframe(std::string_view body, std::string_view& message,
                         size_t max_message) {
  if (body.size() < 5)
    return "reply of " + std::to_string(body.size())
           + " bytes, shorter than a gRPC frame header";
  auto flag = static_cast<unsigned char>(body[0]);
  if (flag != 0)
    return flag == 1 ? "compressed gRPC message (not asked for)"
                     : "bad gRPC frame flag " + std::to_string(flag);
  uint64_t n = 0;
  for (size_t i = 1; i < 5; ++i)
    n = (n << 8) | static_cast<unsigned char>(body[i]);
  if (n > max_message)
    return "gRPC message of " + std::to_string(n) + " bytes, more than "
           + std::to_string(max_message);
  if (body.size() - 5 < n)
    return "gRPC message truncated: " + std::to_string(body.size() - 5) + " of "
           + std::to_string(n) + " bytes";
  if (body.size() - 5 > n)
    return "more than one gRPC message in a unary reply";
  message = body.substr(5, n);
  return {};
}

namespace {

/// A bounded protobuf reader: every length is checked against what is left.
class pb_reader {
public:
  explicit pb_reader(std::string_view data) : data_(data) {}

  bool done() const {
    return pos_ >= data_.size();
  }

  /// Reads a varint of at most 10 bytes; false if truncated or too long.
  bool varint(uint64_t& out) {
    out = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size())
        return false;
      auto b = static_cast<unsigned char>(data_[pos_++]);
      out |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0)
        return true;
    }
    return false;
  }

  /// Reads a field key; `why` says what is wrong on failure.
  bool key(uint32_t& field, uint32_t& wire, std::string& why) {
    uint64_t k = 0;
    if (!varint(k)) {
      why = "bad varint at byte " + std::to_string(pos_);
      return false;
    }
    field = static_cast<uint32_t>(k >> 3);
    wire = static_cast<uint32_t>(k & 7);
    if (field == 0 || (k >> 3) > 0x1fffffff) {
      why = "bad field number at byte " + std::to_string(pos_);
      return false;
    }
    return true;
  }

  bool bytes(std::string_view& out, std::string& why) {
    uint64_t n = 0;
    if (!varint(n)) {
      why = "bad length at byte " + std::to_string(pos_);
      return false;
    }
    if (n > data_.size() - pos_) {
      why = "length " + std::to_string(n) + " past the end at byte "
            + std::to_string(pos_);
      return false;
    }
    out = data_.substr(pos_, n);
    pos_ += n;
    return true;
  }

  /// Skips a field of wire type `wire`; groups (3, 4) are refused.
  bool skip(uint32_t wire, std::string& why) {
    switch (wire) {
      case 0: {
        uint64_t v = 0;
        if (varint(v))
          return true;
        why = "bad varint at byte " + std::to_string(pos_);
        return false;
      }
      case 1: return advance(8, why);
      case 5: return advance(4, why);
      case 2: {
        std::string_view ignored;
        return bytes(ignored, why);
      }
      default:
        why = "unsupported wire type " + std::to_string(wire) + " at byte "
              + std::to_string(pos_);
        return false;
    }
  }

private:
  bool advance(size_t n, std::string& why) {
    if (n > data_.size() - pos_) {
      why = "field past the end at byte " + std::to_string(pos_);
      return false;
    }
    pos_ += n;
    return true;
  }

  std::string_view data_;
  size_t pos_ = 0;
};

/// Expects wire type `want` for a known field.
bool wire_is(uint32_t wire, uint32_t want, uint32_t field, const char* msg,
             std::string& why) {
  if (wire == want)
    return true;
  why = std::string{msg} + " field " + std::to_string(field) + " has wire type "
        + std::to_string(wire) + ", expected " + std::to_string(want);
  return false;
}

/// A map<string, string> entry: key = 1, value = 2.
bool decode_map_entry(std::string_view data,
                      std::pair<std::string, std::string>& out,
                      std::string& why) {
  pb_reader r{data};
  while (!r.done()) {
    uint32_t field = 0, wire = 0;
    if (!r.key(field, wire, why))
      return false;
    if (field == 1 || field == 2) {
      std::string_view s;
      if (!wire_is(wire, 2, field, "map entry", why) || !r.bytes(s, why))
        return false;
      (field == 1 ? out.first : out.second) = std::string{s};
    } else if (!r.skip(wire, why)) {
      return false;
    }
  }
  return true;
}

bool decode_metadata(std::string_view data, cri_container& c,
                     std::string& why) {
  pb_reader r{data};
  while (!r.done()) {
    uint32_t field = 0, wire = 0;
    if (!r.key(field, wire, why))
      return false;
    if (field == 1) {
      std::string_view s;
      if (!wire_is(wire, 2, field, "ContainerMetadata", why)
          || !r.bytes(s, why))
        return false;
      c.metadata_name = std::string{s};
    } else if (field == 2) {
      uint64_t v = 0;
      if (!wire_is(wire, 0, field, "ContainerMetadata", why))
        return false;
      if (!r.varint(v)) {
        why = "bad attempt varint";
        return false;
      }
      c.attempt = static_cast<uint32_t>(v);
    } else if (!r.skip(wire, why)) {
      return false;
    }
  }
  return true;
}

bool decode_container(std::string_view data, cri_container& c,
                      std::string& why) {
  pb_reader r{data};
  while (!r.done()) {
    uint32_t field = 0, wire = 0;
    if (!r.key(field, wire, why))
      return false;
    if (field == 1 || field == 3 || field == 8 || field == 9) {
      std::string_view s;
      if (!wire_is(wire, 2, field, "Container", why) || !r.bytes(s, why))
        return false;
      if (field == 1) {
        c.id = std::string{s};
      } else if (field == 3) {
        if (!decode_metadata(s, c, why))
          return false;
      } else {
        std::pair<std::string, std::string> entry;
        if (!decode_map_entry(s, entry, why))
          return false;
        (field == 8 ? c.labels : c.annotations).push_back(std::move(entry));
      }
    } else if (!r.skip(wire, why)) {
      return false;
    }
  }
  return true;
}

const std::string*
find_in(const std::vector<std::pair<std::string, std::string>>& map,
        std::string_view key) {
  // The last entry of a key wins, as in protobuf's map semantics.
  const std::string* found = nullptr;
  for (auto& [k, v] : map)
    if (k == key)
      found = &v;
  return found;
}

} // namespace

std::string decode_list_containers(std::string_view message,
                                   std::vector<cri_container>& out,
                                   size_t max_containers) {
  pb_reader r{message};
  std::string why;
  while (!r.done()) {
    uint32_t field = 0, wire = 0;
    if (!r.key(field, wire, why))
      return "ListContainersResponse: " + why;
    if (field != 1) {
      if (!r.skip(wire, why))
        return "ListContainersResponse: " + why;
      continue;
    }
    std::string_view s;
    if (!wire_is(wire, 2, field, "ListContainersResponse", why)
        || !r.bytes(s, why))
      return "ListContainersResponse: " + why;
    if (out.size() >= max_containers)
      return "more than " + std::to_string(max_containers) + " containers";
    cri_container c;
    if (!decode_container(s, c, why))
      return "container " + std::to_string(out.size() + 1) + ": " + why;
    out.push_back(std::move(c));
  }
  return {};
}

std::string cri_container_name(const cri_container& c) {
  auto* container = find_in(c.labels, "io.kubernetes.container.name");
  auto* pod = find_in(c.labels, "io.kubernetes.pod.name");
  auto* ns = find_in(c.labels, "io.kubernetes.pod.namespace");
  auto* uid = find_in(c.labels, "io.kubernetes.pod.uid");
  if (container != nullptr && pod != nullptr && ns != nullptr
      && uid != nullptr) {
    auto* restarts
        = find_in(c.annotations, "io.kubernetes.container.restartCount");
    return "k8s_" + *container + "_" + *pod + "_" + *ns + "_" + *uid + "_"
           + (restarts != nullptr ? *restarts : std::to_string(c.attempt));
  }
  return c.metadata_name;
}

// -- talking to the runtimes over their unix sockets --------------------------

namespace {

void curl_init_once() {
  static std::once_flag flag;
  std::call_once(flag, [] {
    curl_global_init(CURL_GLOBAL_DEFAULT);
  });
}

struct reply {
  /// "" if the exchange worked (whatever the status), else what failed.
  std::string error;
  long status = 0;
  std::string body;
  /// grpc-status from the headers or trailers; -1 if none came.
  int grpc_status = -1;
  std::string grpc_message;
};

struct reply_sink {
  reply* out;
  size_t cap;
  bool too_large = false;
};

size_t body_cb(char* data, size_t size, size_t n, void* user) {
  auto* sink = static_cast<reply_sink*>(user);
  size_t len = size * n;
  if (sink->out->body.size() + len > sink->cap) {
    sink->too_large = true;
    return 0; // aborts the transfer
  }
  sink->out->body.append(data, len);
  return len;
}

/// Header lines and, with HTTP/2, trailers: both may carry grpc-status.
size_t header_cb(char* data, size_t size, size_t n, void* user) {
  auto* out = static_cast<reply*>(user);
  size_t len = size * n;
  std::string_view line{data, len};
  auto colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name{line.substr(0, colon)};
    std::transform(name.begin(), name.end(), name.begin(), [](char c) {
      return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    });
    auto value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty()
           && (value.back() == '\r' || value.back() == '\n'
               || value.back() == ' '))
      value.remove_suffix(1);
    if (name == "grpc-status") {
      int v = 0;
      bool ok = !value.empty() && value.size() <= 3;
      for (char c : value) {
        if (c < '0' || c > '9')
          ok = false;
        else
          v = v * 10 + (c - '0');
      }
      out->grpc_status = ok ? v : 2; // UNKNOWN for a malformed status
    } else if (name == "grpc-message") {
      out->grpc_message = std::string{value.substr(0, 200)};
    }
  }
  return len;
}

/// One request to `url` over the unix socket `path`.
reply unix_request(const std::string& path, const std::string& url,
                   const std::string* post_body,
                   const std::vector<std::string>& headers, bool http2,
                   std::chrono::milliseconds timeout, size_t max_bytes) {
  curl_init_once();
  reply out;
  CURL* h = curl_easy_init();
  if (h == nullptr) {
    out.error = "cannot create a libcurl handle";
    return out;
  }
  reply_sink sink{&out, max_bytes};
  char errbuf[CURL_ERROR_SIZE];
  errbuf[0] = '\0';
  curl_slist* list = nullptr;
  list = curl_slist_append(list, "Expect:");
  for (auto& hd : headers)
    list = curl_slist_append(list, hd.c_str());
  curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, path.c_str());
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROXY, "");
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(timeout.count()));
  curl_easy_setopt(h, CURLOPT_HTTP_VERSION,
                   http2 ? CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE
                         : CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "gprofiler-agent");
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_cb);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &out);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  if (post_body != nullptr) {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(post_body->size()));
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, post_body->data());
  }
  auto rc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out.status);
  curl_slist_free_all(list);
  curl_easy_cleanup(h);
  if (sink.too_large) {
    out.error = "reply larger than " + std::to_string(max_bytes) + " bytes";
  } else if (rc != CURLE_OK) {
    out.error
        = rc == CURLE_OPERATION_TIMEDOUT
              ? "no answer within " + std::to_string(timeout.count()) + " ms"
              : std::string{errbuf[0] != '\0' ? errbuf
                                              : curl_easy_strerror(rc)};
  }
  return out;
}

std::string docker_list(const std::string& path, const container_sockets& o,
                        std::vector<container_entry>& out) {
  // gProfiler lists every container, running or not (all=1).
  auto r = unix_request(path, "http://localhost/containers/json?all=1", nullptr,
                        {"Accept: application/json"}, false, o.timeout,
                        o.max_reply_bytes);
  if (!r.error.empty())
    return r.error;
  if (r.status != 200)
    return "HTTP status " + std::to_string(r.status);
  return parse_docker_containers(r.body, out);
}

/// gRPC's UNIMPLEMENTED: the runtime does not serve this API version.
constexpr int grpc_unimplemented = 12;

std::string cri_list_api(const std::string& path, const std::string& api,
                         const container_sockets& o,
                         std::vector<container_entry>& out,
                         bool& unimplemented) {
  unimplemented = false;
  // An empty ListContainersRequest: no filter, every container (as
  // gProfiler asks).
  auto body = grpc_frame({});
  auto r = unix_request(
      path, "http://localhost/" + api + ".RuntimeService/ListContainers", &body,
      {"Content-Type: application/grpc", "TE: trailers"}, true, o.timeout,
      o.max_reply_bytes);
  if (!r.error.empty())
    return r.error;
  if (r.status != 200)
    return "HTTP status " + std::to_string(r.status);
  if (r.grpc_status == grpc_unimplemented) {
    unimplemented = true;
    return "not implemented (grpc-status 12)";
  }
  if (r.grpc_status != 0)
    return r.grpc_status < 0
               ? std::string{"no grpc-status in the reply"}
               : "grpc-status " + std::to_string(r.grpc_status)
                     + (r.grpc_message.empty() ? ""
                                               : " (" + r.grpc_message + ")");
  std::string_view message;
  if (auto why = grpc_unframe(r.body, message, o.max_reply_bytes); !why.empty())
    return why;
  std::vector<cri_container> containers;
  if (auto why = decode_list_containers(message, containers); !why.empty())
    return why;
  for (auto& c : containers) {
    if (!is_container_id(c.id))
      continue;
    auto name = cri_container_name(c);
    if (!name.empty() && name.size() <= max_container_name)
      out.push_back({std::move(c.id), std::move(name)});
  }
  return {};
}

/// Reads at most `limit` bytes of `path`, a regular file (as /proc's are),
/// without blocking on anything else; "" on any failure. Of a longer file
/// only the whole lines within the limit are kept.
std::string read_bounded(const std::string& path, size_t limit) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0)
    return {};
  struct stat st {};
  std::string out;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    out.resize(limit + 1);
    size_t got = 0;
    while (got < out.size()) {
      auto n = ::read(fd, &out[got], out.size() - got);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      got += static_cast<size_t>(n);
    }
    out.resize(got);
    if (got > limit) {
      auto nl = out.rfind('\n', limit - 1);
      out.resize(nl == std::string::npos ? 0 : nl + 1);
    }
  }
  ::close(fd);
  return out;
}

/// The most of a /proc/PID/cgroup file read (a dozen lines in practice).
constexpr size_t max_cgroup_file = 64 * 1024;

} // namespace

// -- the cache
// ------------------------------------------------------------------

struct container_names::impl {
  enum class state { unknown, missing, failing, ok };

  struct runtime {
    bool docker = false;
    std::string path;
    state st = state::unknown;
    /// The CRI API version that answered ("runtime.v1" first).
    std::string api = "runtime.v1";

    std::string label() const {
      return (docker ? "Docker at " : "CRI at ") + path;
    }
  };

  container_sockets opts;
  std::string proc_root;
  std::shared_ptr<spdlog::logger> log = log::get("containers");
  std::mutex mtx;
  std::vector<runtime> runtimes;
  /// id -> name from the last refresh.
  std::unordered_map<std::string, std::string> names;
  std::set<std::string> seen;
  bool refreshed = false;
  std::chrono::steady_clock::time_point last_refresh;
  counters stats;

  std::string list(runtime& rt, std::vector<container_entry>& out) {
    if (rt.docker)
      return docker_list(rt.path, opts, out);
    bool unimplemented = false;
    auto why = cri_list_api(rt.path, rt.api, opts, out, unimplemented);
    if (unimplemented) {
      // As granulate-utils: runtime.v1, else the older runtime.v1alpha2.
      std::string other
          = rt.api == "runtime.v1" ? "runtime.v1alpha2" : "runtime.v1";
      auto again = cri_list_api(rt.path, other, opts, out, unimplemented);
      if (again.empty()) {
        rt.api = other;
        return {};
      }
      return rt.api + ": " + why + "; " + other + ": " + again;
    }
    return why;
  }

  void refresh() {
    ++stats.refreshes;
    bool first = !refreshed;
    refreshed = true;
    std::unordered_map<std::string, std::string> fresh;
    std::string summary;
    for (auto& rt : runtimes) {
      auto before = rt.st;
      struct stat st {};
      std::string why;
      size_t count = 0;
      if (::stat(rt.path.c_str(), &st) != 0) {
        rt.st = state::missing;
        why = errno == ENOENT || errno == ENOTDIR ? "missing"
                                                  : std::strerror(errno);
      } else if (!S_ISSOCK(st.st_mode)) {
        rt.st = state::failing;
        why = "not a socket";
      } else {
        std::vector<container_entry> found;
        why = list(rt, found);
        rt.st = why.empty() ? state::ok : state::failing;
        if (why.empty()) {
          count = found.size();
          // Docker first; CRI adds the containers Docker did not list.
          for (auto& c : found)
            if (fresh.size() < opts.max_cached)
              fresh.emplace(std::move(c.id), std::move(c.name));
        }
      }
      if (rt.st == state::failing)
        ++stats.failures;
      auto outcome
          = rt.st == state::ok ? std::to_string(count) + " containers" : why;
      if (first) {
        summary += (summary.empty() ? "" : "; ") + rt.label() + ": " + outcome;
        if (rt.st == state::failing)
          log->warn("container names: {} does not answer: {}", rt.label(), why);
      } else if (rt.st != before) {
        if (rt.st == state::failing)
          log->warn("container names: {} does not answer: {}", rt.label(), why);
        else if (rt.st == state::ok)
          log->info("container names: {} answers ({})", rt.label(), outcome);
        else if (before == state::ok)
          log->info("container names: {} is gone ({})", rt.label(), why);
      }
    }
    if (first) {
      bool any
          = std::any_of(runtimes.begin(), runtimes.end(), [](const runtime& r) {
              return r.st == state::ok;
            });
      if (runtimes.empty())
        log->info("container names: no container runtime socket configured; "
                  "processes get container ids only, no names");
      else if (any)
        log->info("container names from {}", summary);
      else
        log->info("container names: no container runtime answers ({}); "
                  "processes get container ids only, no names, until one "
                  "does",
                  summary);
    }
    names = std::move(fresh);
    last_refresh = std::chrono::steady_clock::now();
  }

  std::string lookup(const std::string& id) {
    if (!is_container_id(id))
      return {};
    std::lock_guard<std::mutex> guard{mtx};
    auto it = names.find(id);
    if (it == names.end()) {
      auto now = std::chrono::steady_clock::now();
      if (refreshed && now - last_refresh < opts.min_refresh)
        return {};
      refresh();
      it = names.find(id);
      if (it == names.end())
        return {};
    }
    if (seen.size() < opts.max_cached)
      seen.insert(it->second);
    return it->second;
  }
};

container_names::container_names(container_sockets sockets,
                                 std::string proc_root)
    : impl_(std::make_unique<impl>()) {
  impl_->opts = std::move(sockets);
  impl_->proc_root = std::move(proc_root);
  if (!impl_->opts.docker.empty())
    impl_->runtimes.push_back({true, impl_->opts.docker});
  for (auto& path : impl_->opts.cri)
    if (!path.empty())
      impl_->runtimes.push_back({false, path});
}

container_names::~container_names() = default;

std::string container_names::id_of(int32_t pid) {
  if (pid <= 0)
    return {};
  return container_id_from_cgroup(
      read_bounded(impl_->proc_root + "/" + std::to_string(pid) + "/cgroup",
                   max_cgroup_file));
}

std::string container_names::name_of_id(const std::string& id) {
  try {
    return impl_->lookup(id);
  } catch (const std::exception& e) {
    // Only allocation can throw here; a name is not worth more.
    impl_->log->warn("container names: lookup of {} failed: {}", id, e.what());
    return {};
  }
}

std::string container_names::name_of(int32_t pid) {
  auto id = id_of(pid);
  return id.empty() ? std::string{} : name_of_id(id);
}

std::vector<std::string> container_names::take_seen_names() {
  std::lock_guard<std::mutex> guard{impl_->mtx};
  std::vector<std::string> out{impl_->seen.begin(), impl_->seen.end()};
  impl_->seen.clear();
  return out;
}

container_names::counters container_names::stats() const {
  std::lock_guard<std::mutex> guard{impl_->mtx};
  return impl_->stats;
}

} // namespace gpa::rt

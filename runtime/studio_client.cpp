#include "runtime/studio_client.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "config/checks.hpp"
#include "format/json.hpp"
#include "format/time.hpp"
#include "format/utf8.hpp"
#include "runtime/error.hpp"
#include "runtime/files.hpp"
#include "runtime/written_file.hpp"

namespace gpa::rt {

namespace {

// -- small helpers
// -------------------------------------------------------------

/// The largest positive 32-bit number: the largest pid, duration and
/// frequency accepted.
constexpr int64_t max_int32 = std::numeric_limits<int32_t>::max();

/// The longest host name and profiling mode accepted.
constexpr size_t max_hostname_size = 255;
constexpr size_t max_mode_size = 64;

/// The longest error message sent in a completion.
constexpr size_t max_error_message_size = 1000;

/// The first line of a ledger file.
constexpr std::string_view ledger_header = "gpa-command-ledger 1";

/// The largest ledger file read: the header and max_ids ids of the largest
/// size, with room to spare.
constexpr size_t max_ledger_bytes = 256 * 1024;

bool id_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
         || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':'
         || c == '-';
}

/// `text` fit for an error message: in quotes, at most 40 characters,
/// everything but printable ASCII as \xNN.
std::string quoted(std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out = "\"";
  for (size_t i = 0; i < text.size() && i < 40; ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xF];
    }
  }
  if (text.size() > 40)
    out += "...";
  return out + "\"";
}

/// What a JSON value is, for error messages.
const char* type_name(const rapidjson::Value& v) {
  if (v.IsNull())
    return "null";
  if (v.IsBool())
    return "a boolean";
  if (v.IsString())
    return "a string";
  if (v.IsNumber())
    return "a number";
  if (v.IsArray())
    return "an array";
  return "an object";
}

std::string_view view(const rapidjson::Value& v) {
  return {v.GetString(), v.GetStringLength()};
}

/// The start of a server's answer for an error message: the token
/// redacted (before anything is cut, so that no part of it survives), its
/// first line, control characters and invalid UTF-8 replaced, at most 200
/// bytes.
std::string excerpt(const std::string& body, const std::string& token) {
  auto line = first_message_line(redact(body, {token}));
  for (auto& c : line)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      c = ' ';
  line = format::sanitize_utf8(line);
  return line.empty() ? std::string{"(empty body)"} : line;
}

caf::error answer_error(std::string what) {
  return make_gpa_error(ec::invalid_request,
                        "heartbeat answer: " + std::move(what));
}

/// A JSON object member, or null if absent.
const rapidjson::Value* member(const rapidjson::Value& obj, const char* name) {
  auto i = obj.FindMember(name);
  return i == obj.MemberEnd() ? nullptr : &i->value;
}

/// Reads a whole number in 1..max_int32 of `v` (named `name`) into `out`.
caf::error positive(const rapidjson::Value& v, const std::string& name,
                    int64_t& out) {
  if (!v.IsNumber())
    return answer_error(name + " is " + type_name(v) + ", not a number");
  if (!v.IsInt64() || v.GetInt64() <= 0 || v.GetInt64() > max_int32) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w{buf};
    v.Accept(w);
    return answer_error(name + " is " + std::string{buf.GetString()}
                        + ", not a whole number in 1.."
                        + std::to_string(max_int32));
  }
  out = v.GetInt64();
  return {};
}

/// An optional positive number (absent or null: none).
caf::error optional_positive(const rapidjson::Value& cfg, const char* field,
                             std::optional<int64_t>& out) {
  auto v = member(cfg, field);
  if (v == nullptr || v->IsNull())
    return {};
  int64_t x = 0;
  if (auto err = positive(*v, std::string{"combined_config."} + field, x))
    return err;
  out = x;
  return {};
}

/// An optional string of at most `limit` bytes (absent or null: `out`
/// stays as it is).
caf::error optional_string(const rapidjson::Value& cfg, const char* field,
                           size_t limit, std::string& out) {
  auto v = member(cfg, field);
  if (v == nullptr || v->IsNull())
    return {};
  std::string name = std::string{"combined_config."} + field;
  if (!v->IsString())
    return answer_error(name + " is " + type_name(*v) + ", not a string");
  if (v->GetStringLength() > limit)
    return answer_error(name + " is " + std::to_string(v->GetStringLength())
                        + " bytes long (at most " + std::to_string(limit)
                        + ")");
  out.assign(v->GetString(), v->GetStringLength());
  return {};
}

/// combined_config.pids: a list of numbers or "1,2,3".
caf::error parse_pids(const rapidjson::Value& v, std::vector<int64_t>& out) {
  if (v.IsNull())
    return {};
  if (v.IsArray()) {
    if (v.Size() > max_command_list_size)
      return answer_error("combined_config.pids has " + std::to_string(v.Size())
                          + " items (at most "
                          + std::to_string(max_command_list_size) + ")");
    for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
      int64_t pid = 0;
      auto name = "combined_config.pids[" + std::to_string(i) + "]";
      if (auto err = positive(v[i], name, pid))
        return err;
      out.push_back(pid);
    }
    return {};
  }
  if (!v.IsString())
    return answer_error(std::string{"combined_config.pids is "} + type_name(v)
                        + ", not a list of pids or a comma-separated string");
  // "": none. Otherwise every item between commas must be a pid, so
  // "1,,2" and "1," are refused.
  auto text = view(v);
  if (text.find_first_not_of(' ') == std::string_view::npos)
    return {};
  size_t start = 0;
  for (size_t item = 1;; ++item) {
    auto comma = text.find(',', start);
    auto part = text.substr(start, comma == std::string_view::npos
                                       ? std::string_view::npos
                                       : comma - start);
    auto first = part.find_first_not_of(' ');
    auto last = part.find_last_not_of(' ');
    auto digits = first == std::string_view::npos
                      ? std::string_view{}
                      : part.substr(first, last - first + 1);
    int64_t pid = 0;
    bool ok = !digits.empty() && digits.size() <= 10;
    for (auto c : digits) {
      if (!ok || c < '0' || c > '9') {
        ok = false;
        break;
      }
      pid = pid * 10 + (c - '0');
    }
    if (!ok || pid <= 0 || pid > max_int32)
      return answer_error("combined_config.pids " + quoted(text) + ": item "
                          + std::to_string(item) + " " + quoted(part)
                          + " is not a positive 32-bit pid");
    if (out.size() >= max_command_list_size)
      return answer_error("combined_config.pids has more than "
                          + std::to_string(max_command_list_size) + " pids");
    out.push_back(pid);
    if (comma == std::string_view::npos)
      break;
    start = comma + 1;
  }
  return {};
}

caf::error parse_hostnames(const rapidjson::Value& v,
                           std::vector<std::string>& out) {
  if (v.IsNull())
    return {};
  if (!v.IsArray())
    return answer_error(std::string{"combined_config.target_hostnames is "}
                        + type_name(v) + ", not a list of host names");
  if (v.Size() > max_command_list_size)
    return answer_error("combined_config.target_hostnames has "
                        + std::to_string(v.Size()) + " items (at most "
                        + std::to_string(max_command_list_size) + ")");
  for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
    auto name = "combined_config.target_hostnames[" + std::to_string(i) + "]";
    if (!v[i].IsString())
      return answer_error(name + " is " + type_name(v[i]) + ", not a string");
    if (v[i].GetStringLength() > max_hostname_size)
      return answer_error(name + " is " + std::to_string(v[i].GetStringLength())
                          + " bytes long (at most "
                          + std::to_string(max_hostname_size) + ")");
    out.emplace_back(view(v[i]));
  }
  return {};
}

caf::error parse_config(const rapidjson::Value& cfg, studio_command& cmd) {
  if (auto v = member(cfg, "continuous"); v != nullptr && !v->IsNull()) {
    if (!v->IsBool())
      return answer_error(std::string{"combined_config.continuous is "}
                          + type_name(*v) + ", not a boolean");
    cmd.continuous = v->GetBool();
  }
  if (auto err = optional_positive(cfg, "duration", cmd.duration_s))
    return err;
  if (auto err = optional_positive(cfg, "frequency", cmd.frequency))
    return err;
  if (auto v = member(cfg, "pids"))
    if (auto err = parse_pids(*v, cmd.pids))
      return err;
  if (auto err = optional_string(cfg, "stop_level", 16, cmd.stop_level))
    return err;
  if (cmd.stop_level != "host" && cmd.stop_level != "process")
    return answer_error("combined_config.stop_level " + quoted(cmd.stop_level)
                        + " is neither \"host\" nor \"process\"");
  if (auto v = member(cfg, "target_hostnames"))
    if (auto err = parse_hostnames(*v, cmd.target_hostnames))
      return err;
  return optional_string(cfg, "profiling_mode", max_mode_size,
                         cmd.profiling_mode);
}

/// Writes a string into `w` as valid UTF-8.
template <class Writer>
void put(Writer& w, std::string_view text) {
  std::string fixed;
  auto valid = format::valid_utf8(text, fixed);
  w.String(valid.data(), static_cast<rapidjson::SizeType>(valid.size()));
}

template <class Writer>
void put_list(Writer& w, const std::vector<std::string>& items) {
  w.StartArray();
  for (auto& x : items)
    put(w, x);
  w.EndArray();
}

std::string base_url(const std::string& url) {
  auto end = url.find_last_not_of('/');
  return end == std::string::npos ? std::string{} : url.substr(0, end + 1);
}

caf::error ledger_error(const std::string& path, const std::string& why) {
  return make_gpa_error(ec::invalid_request,
                        "cannot use command ledger " + path + ": " + why);
}

} // namespace

// -- bodies and answers
// ----------------------------------------------------------

std::string command_id_error(std::string_view id) {
  if (id.empty())
    return "it is empty";
  if (id.size() > max_command_id_size)
    return "it is " + std::to_string(id.size()) + " characters long (at most "
           + std::to_string(max_command_id_size) + ")";
  for (size_t i = 0; i < id.size(); ++i)
    if (!id_char(id[i]))
      return quoted(id) + " has " + quoted(id.substr(i, 1)) + " at "
             + std::to_string(i)
             + " (only A-Z, a-z, 0-9, '.', '_', ':' and '-' are allowed)";
  return {};
}

std::string heartbeat_body(const heartbeat_info& info) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w{buf};
  w.StartObject();
  w.Key("ip_address");
  put(w, info.ip_address);
  w.Key("hostname");
  put(w, info.hostname);
  w.Key("service_name");
  put(w, info.service_name);
  w.Key("last_command_id");
  if (info.last_command_id.empty())
    w.Null();
  else
    put(w, info.last_command_id);
  w.Key("status");
  w.String("active");
  w.Key("timestamp");
  put(w, format::iso8601(info.now_ms, format::time_precision::milliseconds));
  w.Key("received_command_ids");
  put_list(w, info.received_ids);
  w.Key("executed_command_ids");
  put_list(w, info.executed_ids);
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

caf::expected<std::optional<studio_command>>
parse_heartbeat_answer(std::string_view body) {
  // The server, or anything on an http:// path, wrote it: its depth is
  // checked before RapidJSON (recursive) sees it.
  // RapidJSON stops at a NUL byte: what follows one would go unseen.
  if (body.find('\0') != std::string_view::npos)
    return answer_error("not JSON: it holds a NUL byte at "
                        + std::to_string(body.find('\0')));
  rapidjson::Document doc;
  if (auto why = format::parse_json(doc, body); !why.empty())
    return answer_error("not JSON: " + why);
  if (!doc.IsObject())
    return answer_error(std::string{"it is "} + type_name(doc)
                        + ", not a JSON object");
  auto success = member(doc, "success");
  if (success == nullptr)
    return answer_error("it has no \"success\" field");
  if (!success->IsBool())
    return answer_error(std::string{"\"success\" is "} + type_name(*success)
                        + ", not a boolean");
  if (!success->GetBool()) {
    auto msg = member(doc, "message");
    std::string text = msg != nullptr && msg->IsString()
                           ? excerpt(std::string{view(*msg)}, {})
                           : std::string{"(no message)"};
    return answer_error("\"success\" is false: " + text);
  }
  auto pc = member(doc, "profiling_command");
  if (pc == nullptr || pc->IsNull())
    return std::optional<studio_command>{};
  if (!pc->IsObject())
    return answer_error(std::string{"\"profiling_command\" is "}
                        + type_name(*pc) + ", not an object");
  // gProfiler takes an empty profiling_command for none.
  if (pc->MemberCount() == 0)
    return std::optional<studio_command>{};
  studio_command cmd;
  auto id = member(doc, "command_id");
  if (id == nullptr || id->IsNull())
    return answer_error("it has a \"profiling_command\" but no "
                        "\"command_id\"");
  if (!id->IsString())
    return answer_error(std::string{"\"command_id\" is "} + type_name(*id)
                        + ", not a string");
  if (auto why = command_id_error(view(*id)); !why.empty())
    return answer_error("\"command_id\" is not a command id: " + why);
  cmd.id.assign(view(*id));
  // gProfiler's default command type.
  cmd.type = "start";
  if (auto type = member(*pc, "command_type");
      type != nullptr && !type->IsNull()) {
    if (!type->IsString())
      return answer_error(std::string{"profiling_command.command_type is "}
                          + type_name(*type) + ", not a string");
    cmd.type.assign(view(*type));
    if (cmd.type != "start" && cmd.type != "stop")
      return answer_error("profiling_command.command_type " + quoted(cmd.type)
                          + " of command " + cmd.id
                          + " is neither \"start\" nor \"stop\"");
  }
  if (auto cfg = member(*pc, "combined_config");
      cfg != nullptr && !cfg->IsNull()) {
    if (!cfg->IsObject())
      return answer_error(std::string{"profiling_command.combined_config is "}
                          + type_name(*cfg) + ", not an object");
    if (auto err = parse_config(*cfg, cmd))
      return err;
  }
  return std::optional<studio_command>{std::move(cmd)};
}

std::string completion_body(const std::string& command_id,
                            const std::string& hostname,
                            const std::string& status, int64_t execution_time_s,
                            const std::string& error_message) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w{buf};
  w.StartObject();
  w.Key("command_id");
  put(w, command_id);
  w.Key("hostname");
  put(w, hostname);
  w.Key("status");
  put(w, status);
  w.Key("execution_time");
  w.Int64(execution_time_s);
  w.Key("error_message");
  if (error_message.empty()) {
    w.Null();
  } else {
    // Cut on a byte; a sequence cut in half becomes U+FFFD.
    put(w, std::string_view{error_message}.substr(0, max_error_message_size));
  }
  w.Key("results_path");
  w.Null();
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

// -- the client
// ------------------------------------------------------------------

studio_client::studio_client(std::unique_ptr<http_client> http,
                             std::string api_server, std::string token)
    : http_(std::move(http)), api_(base_url(api_server)),
      token_(std::move(token)) {}

caf::expected<std::string> studio_client::post(const std::string& what,
                                               const std::string& path,
                                               std::string body) {
  http_request req;
  req.method = "POST";
  req.url = api_ + path;
  if (!token_.empty())
    req.headers.emplace_back("Authorization", "Bearer " + token_);
  req.headers.emplace_back("Content-Type", "application/json");
  req.body = std::move(body);
  req.timeout = timeout_;
  req.connect_timeout = std::min(req.connect_timeout, timeout_);
  auto resp = http_->send(req);
  if (!resp) {
    // Whatever broke, the next request starts on a fresh connection.
    http_->reset();
    return make_gpa_error(
        ec::upload_failed,
        redact(what + " failed: " + message_of(resp.error()), {token_}));
  }
  if (resp->status != 200)
    return make_gpa_error(
        ec::upload_failed,
        redact(what + " failed: POST " + config::redact_url(req.url)
                   + " answered HTTP " + std::to_string(resp->status) + ": ",
               {token_})
            + excerpt(resp->body, token_));
  return std::move(resp->body);
}

caf::expected<std::optional<studio_command>>
studio_client::heartbeat(const heartbeat_info& info) {
  auto body = post("heartbeat", "/api/metrics/heartbeat", heartbeat_body(info));
  if (!body)
    return std::move(body.error());
  auto result = parse_heartbeat_answer(*body);
  if (result || token_.empty())
    return result;
  // An error quotes parts of the answer, cut short: the answer is read again
  // with the token redacted, so that no part of it reaches the message.
  auto again = parse_heartbeat_answer(redact(*body, {token_}));
  if (again)
    return answer_error("the answer holds the API token");
  return make_gpa_error(ec::invalid_request,
                        redact(message_of(again.error()), {token_}));
}

caf::expected<void> studio_client::report_completion(
    const std::string& command_id, const std::string& hostname,
    const std::string& status, int64_t execution_time_s,
    const std::string& error_message) {
  if (auto why = command_id_error(command_id); !why.empty())
    return make_gpa_error(ec::invalid_request,
                          "command completion not sent: bad command id: "
                              + why);
  if (status != "completed" && status != "failed")
    return make_gpa_error(ec::invalid_request,
                          "command completion of " + command_id
                              + " not sent: status " + quoted(status)
                              + " is neither \"completed\" nor \"failed\"");
  auto body = post("command completion of " + command_id,
                   "/api/metrics/command_completion",
                   completion_body(command_id, hostname, status,
                                   execution_time_s, error_message));
  if (!body)
    return std::move(body.error());
  return {};
}

void studio_client::interrupt() {
  http_->interrupt();
}

// -- the ledger
// ------------------------------------------------------------------

caf::expected<command_ledger> command_ledger::open(std::string path) {
  if (path.empty())
    return ledger_error("\"\"", "no path given");
  command_ledger ledger{path};
  // O_NOFOLLOW: a link planted at the path is refused, not read through;
  // O_NONBLOCK: a FIFO there must not block the open.
  int fd = ::open(path.c_str(),
                  O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    auto err = errno;
    if (err == ENOENT)
      return ledger;
    if (err == ELOOP)
      return ledger_error(path, "it is a symbolic link; refusing to follow "
                                "it");
    return ledger_error(path, std::strerror(err));
  }
  fd_guard guard{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    return ledger_error(path, std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    return ledger_error(path, std::string{"it is "} + file_kind_name(st.st_mode)
                                  + ", not a regular file");
  // Read at most one byte past the limit: a larger file (or one that grows
  // meanwhile) is refused.
  std::string text;
  char buf[8192];
  for (;;) {
    auto n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return ledger_error(path, std::strerror(errno));
    if (n == 0)
      break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > max_ledger_bytes)
      return ledger_error(path, "it is larger than a ledger can be ("
                                    + std::to_string(max_ledger_bytes)
                                    + " bytes)");
  }
  size_t pos = 0;
  size_t line_no = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    auto line = std::string_view{text}.substr(
        pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    ++line_no;
    if (line_no == 1) {
      if (line != ledger_header)
        return ledger_error(path, "it is not a command ledger (its first "
                                  "line is "
                                      + quoted(line) + ", not "
                                      + quoted(ledger_header) + ")");
      continue;
    }
    if (auto why = command_id_error(line); !why.empty())
      return ledger_error(path, "line " + std::to_string(line_no)
                                    + " is not a command id: " + why);
    std::string id{line};
    if (ledger.set_.insert(id).second)
      ledger.ids_.push_back(std::move(id));
  }
  if (line_no == 0)
    return ledger_error(path, "it is empty (not even the header line "
                                  + quoted(ledger_header) + ")");
  if (ledger.ids_.size() > max_ids) {
    auto drop = ledger.ids_.size() - max_ids;
    for (size_t i = 0; i < drop; ++i)
      ledger.set_.erase(ledger.ids_[i]);
    ledger.ids_.erase(ledger.ids_.begin(),
                      ledger.ids_.begin() + static_cast<ptrdiff_t>(drop));
  }
  return ledger;
}

caf::expected<void> command_ledger::add(const std::string& id) {
  if (auto why = command_id_error(id); !why.empty())
    return make_gpa_error(ec::invalid_request,
                          "not added to command ledger " + path_ + ": " + why);
  if (contains(id))
    return {};
  ids_.push_back(id);
  set_.insert(id);
  if (ids_.size() > max_ids) {
    set_.erase(ids_.front());
    ids_.erase(ids_.begin());
  }
  std::string content{ledger_header};
  content += '\n';
  for (auto& x : ids_) {
    content += x;
    content += '\n';
  }
  auto slash = path_.rfind('/');
  std::string dir = slash == std::string::npos ? std::string{"."}
                    : slash == 0               ? std::string{"/"}
                                               : path_.substr(0, slash);
  std::string name
      = slash == std::string::npos ? path_ : path_.substr(slash + 1);
  if (name.empty())
    return make_gpa_error(ec::write_failed, "cannot write command ledger "
                                                + path_
                                                + ": it names a directory");
  if (auto err
      = make_posix_file_system()->write_atomic(dir, name, content, 0600))
    return make_gpa_error(ec::write_failed, "cannot write command ledger "
                                                + path_ + ": "
                                                + message_of(err));
  return {};
}

} // namespace gpa::rt

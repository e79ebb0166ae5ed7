#include "runtime/external_metadata.hpp"

#include <cerrno>
#include <cstring>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/stat.h>

#include "format/json.hpp"
#include "runtime/error.hpp"
#include "runtime/files.hpp"

namespace gpa::rt {

namespace {

std::string to_text(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return {buf.GetString(), buf.GetSize()};
}

/// A PID key as Python's int() reads it (ASCII only): surrounding
/// whitespace, an optional "+", 1 to 18 digits. -1: not one.
int64_t pid_of(std::string_view key) {
  auto b = key.find_first_not_of(" \t\r\n");
  auto e = key.find_last_not_of(" \t\r\n");
  if (b == std::string_view::npos)
    return -1;
  key = key.substr(b, e - b + 1);
  if (!key.empty() && key.front() == '+')
    key.remove_prefix(1);
  if (key.empty() || key.size() > 18)
    return -1;
  int64_t pid = 0;
  for (char c : key) {
    if (c < '0' || c > '9')
      return -1;
    pid = pid * 10 + (c - '0');
  }
  return pid;
}

/// A key of the file, cut and made printable for an error message.
std::string shown(std::string_view key) {
  std::string out;
  for (char c : key.substr(0, 40))
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return out + (key.size() > 40 ? "..." : "");
}

} // namespace

std::string parse_external_metadata(std::string_view text,
                                    external_metadata& out) {
  rapidjson::Document doc;
  if (auto why = format::parse_json(doc, text); !why.empty())
    return "not valid JSON: " + why;
  if (!doc.IsObject())
    return "not a JSON object";
  external_metadata result;
  if (auto s = doc.FindMember("static"); s != doc.MemberEnd()) {
    if (!s->value.IsObject())
      return "\"static\" is not a JSON object";
    result.static_json = to_text(s->value);
  }
  if (auto a = doc.FindMember("application"); a != doc.MemberEnd()) {
    if (!a->value.IsObject())
      return "\"application\" is not a JSON object";
    for (auto& m : a->value.GetObject()) {
      std::string_view key{m.name.GetString(), m.name.GetStringLength()};
      auto pid = pid_of(key);
      if (pid < 0)
        return "\"application\" key \"" + shown(key) + "\" is not a PID";
      if (!m.value.IsObject())
        return "\"application\" of PID " + std::to_string(pid)
               + " is not a JSON object";
      result.application[pid] = to_text(m.value);
    }
  }
  out = std::move(result);
  return {};
}

external_metadata_read read_external_metadata(const std::string& path,
                                              int64_t now_ms) {
  using outcome = external_metadata_read::outcome;
  external_metadata_read r;
  auto name = "external metadata file '" + path + "'";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    auto err = errno;
    r.result = outcome::unreadable;
    r.error = name + ": " + std::strerror(err);
    return r;
  }
  if (!S_ISREG(st.st_mode)) {
    r.result = outcome::unreadable;
    r.error = name + " is not a regular file";
    return r;
  }
  auto mtime_ms = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000
                  + st.st_mtim.tv_nsec / 1000000;
  auto max_age_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        external_metadata_max_age)
                        .count();
  if (now_ms - mtime_ms > max_age_ms) {
    r.result = outcome::stale;
    r.error = name + " is stale: last modified "
              + std::to_string((now_ms - mtime_ms) / 1000)
              + " s ago, more than "
              + std::to_string(external_metadata_max_age.count()) + " s";
    return r;
  }
  // "-" is a file here, not standard input.
  auto text = read_input_file(path == "-" ? "./-" : path,
                              external_metadata_max_bytes);
  if (!text) {
    r.result = outcome::unreadable;
    r.error = "external metadata: " + message_of(text.error());
    return r;
  }
  if (auto why = parse_external_metadata(*text, r.data); !why.empty()) {
    r.result = outcome::invalid;
    r.error = name + ": " + why;
    r.data = {};
  }
  return r;
}

} // namespace gpa::rt

#include "config/ini_file.hpp"

#include <cstring>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "format/json.hpp"

namespace gpa::config {

namespace {

/// Python's str.isspace() and re's \s on ASCII: space, \t \n \v \f \r and
/// the separators \x1c-\x1f.
bool is_space(char ch) {
  auto c = static_cast<unsigned char>(ch);
  return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

std::string_view strip(std::string_view s) {
  while (!s.empty() && is_space(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && is_space(s.back()))
    s.remove_suffix(1);
  return s;
}

/// For each position p of `u`, whether u[p:] can end a setting: nothing
/// but whitespace, or whitespace then a comment (at least one space, then
/// # or ;, then anything). Computed backwards in one pass.
std::vector<bool> tail_ok(std::string_view u) {
  std::vector<bool> ok(u.size() + 1, false);
  // Index of the first non-space at or after p (u.size() if none).
  size_t next = u.size();
  ok[u.size()] = true;
  for (size_t p = u.size(); p-- > 0;) {
    if (!is_space(u[p]))
      next = p;
    if (next == u.size())
      ok[p] = true;
    else
      ok[p] = next > p && (u[next] == '#' || u[next] == ';');
  }
  return ok;
}

/// Parses one stripped, non-comment line into `out`; returns the error.
std::string parse_line(std::string_view line, ini_setting& out) {
  size_t k = 0;
  while (k < line.size() && !is_space(line[k])
         && std::strchr(":=;#", line[k]) == nullptr)
    ++k;
  if (k == 0)
    return "expected a setting such as 'profiling-frequency = 11': the "
           "line starts with '"
           + std::string(1, line[0]) + "' instead of a key";
  out.key = std::string{line.substr(0, k)};
  auto rest = line.substr(k);
  if (rest.empty()) {
    out.value = "true";
    return {};
  }
  size_t ws = 0;
  while (ws < rest.size() && is_space(rest[ws]))
    ++ws;
  auto t = rest.substr(ws);
  char sep;
  std::string_view u;
  if (t[0] == ':' || t[0] == '=') {
    sep = t[0];
    u = t.substr(1);
    while (!u.empty() && is_space(u.front()))
      u.remove_prefix(1);
  } else if (ws == 0) {
    // '#' or ';' right after the key.
    return "'" + std::string(1, t[0])
           + "' right after the key: a comment needs a space before it";
  } else {
    sep = rest[ws - 1];
    u = t;
  }
  auto ok = tail_ok(u);
  std::optional<std::string_view> value;
  bool matched = false;
  if (!u.empty() && (u[0] == '"' || u[0] == '\'')) {
    // A quoted value: the shortest one whose closing quote ends the
    // setting; else an empty one ("").
    char q = u[0];
    for (size_t pos = 2; pos < u.size() && !matched; ++pos) {
      if (u[pos] == q && ok[pos + 1]) {
        value = u.substr(1, pos - 1);
        matched = true;
      }
    }
    if (!matched && u.size() >= 2 && u[1] == q && ok[2])
      matched = true;
  }
  if (!matched && !u.empty()) {
    // Unquoted: up to the first comment, or the whole rest.
    for (size_t len = 1; len <= u.size(); ++len) {
      if (ok[len]) {
        value = u.substr(0, len);
        break;
      }
    }
  }
  if (!value) {
    // "key =" is empty; "key """ counts as a bare key, as in configargparse.
    out.value = sep != ' ' ? "" : "true";
    return {};
  }
  out.value = std::string{*value};
  if (auto items = ini_list(out.value)) {
    out.is_list = true;
    out.items = std::move(*items);
  }
  return {};
}

} // namespace

std::optional<std::vector<std::string>> ini_list(std::string_view value) {
  if (value.size() < 2 || value.front() != '[' || value.back() != ']')
    return std::nullopt;
  std::vector<std::string> items;
  rapidjson::Document doc;
  if (format::parse_json(doc, value).empty() && doc.IsArray()) {
    for (auto& x : doc.GetArray()) {
      if (x.IsString()) {
        items.emplace_back(x.GetString(), x.GetStringLength());
      } else if (x.IsBool()) {
        items.emplace_back(x.GetBool() ? "True" : "False");
      } else if (x.IsNull()) {
        items.emplace_back("None");
      } else {
        rapidjson::StringBuffer buf;
        rapidjson::Writer<rapidjson::StringBuffer> w(buf);
        x.Accept(w);
        items.emplace_back(buf.GetString());
      }
    }
    return items;
  }
  auto inner = value.substr(1, value.size() - 2);
  size_t pos = 0;
  for (;;) {
    auto comma = inner.find(',', pos);
    auto item = inner.substr(pos, comma == std::string_view::npos
                                      ? std::string_view::npos
                                      : comma - pos);
    items.emplace_back(strip(item));
    if (comma == std::string_view::npos)
      break;
    pos = comma + 1;
  }
  return items;
}

ini_parse_result parse_ini(std::string_view text) {
  ini_parse_result result;
  if (text.substr(0, 3) == "\xEF\xBB\xBF")
    text.remove_prefix(3);
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find_first_of("\r\n", pos);
    auto raw = text.substr(pos, end == std::string_view::npos
                                    ? std::string_view::npos
                                    : end - pos);
    ++line_no;
    if (end == std::string_view::npos)
      pos = text.size();
    else if (text[end] == '\r' && end + 1 < text.size()
             && text[end + 1] == '\n')
      pos = end + 2;
    else
      pos = end + 1;
    auto line = strip(raw);
    if (line.empty() || line[0] == '#' || line[0] == ';' || line[0] == '['
        || line.substr(0, 3) == "---")
      continue;
    ini_setting setting;
    setting.line = line_no;
    if (auto why = parse_line(line, setting); !why.empty()) {
      result.error = std::move(why);
      result.error_line = line_no;
      result.settings.clear();
      return result;
    }
    result.settings.push_back(std::move(setting));
  }
  return result;
}

} // namespace gpa::config

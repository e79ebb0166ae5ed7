#include "format/col_reader.hpp"

#include <cstdio>

#include <rapidjson/document.h>

#include "format/json.hpp"
#include "format/utf8.hpp"

namespace gpa::format {

namespace {

constexpr uint64_t max_count = 1000000000000ull; // 10^12 per line

bool is_digits(std::string_view s) {
  if (s.empty())
    return false;
  for (char c : s)
    if (c < '0' || c > '9')
      return false;
  return true;
}

const rapidjson::Value* member(const rapidjson::Value& obj, const char* key) {
  if (!obj.IsObject())
    return nullptr;
  auto it = obj.FindMember(key);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

// A header value as display text; empty for objects, arrays and null.
std::string value_text(const rapidjson::Value* v) {
  if (v == nullptr)
    return {};
  char buf[64];
  if (v->IsString())
    return sanitize_utf8(
        std::string_view{v->GetString(), v->GetStringLength()}.substr(0, 256));
  if (v->IsBool())
    return v->GetBool() ? "true" : "false";
  if (v->IsInt64()) {
    std::snprintf(buf, sizeof(buf), "%lld",
                  static_cast<long long>(v->GetInt64()));
    return buf;
  }
  if (v->IsNumber()) {
    std::snprintf(buf, sizeof(buf), "%.4g", v->GetDouble());
    return buf;
  }
  return {};
}

std::optional<std::string> string_of(const rapidjson::Value* v) {
  if (v == nullptr || !v->IsString())
    return std::nullopt;
  return std::string{v->GetString(), v->GetStringLength()};
}

std::optional<double> number_of(const rapidjson::Value* v) {
  if (v == nullptr || !v->IsNumber())
    return std::nullopt;
  return v->GetDouble();
}

} // namespace

bool parse_decimal(std::string_view s, uint64_t max, uint64_t& value) {
  if (s.empty())
    return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9')
      return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
    if (v > max)
      return false;
  }
  value = v;
  return true;
}

bool parse_col_count(std::string_view s, uint64_t& out) {
  return parse_decimal(s, max_count, out);
}

void parse_col_header(std::string_view json, col_header_info& out) {
  if (auto why = json_depth_error(json); !why.empty()) {
    out.error = "header line: JSON " + why;
    out.refused = true;
    return;
  }
  rapidjson::Document doc;
  if (auto why = parse_json(doc, json); !why.empty()) {
    out.error = "header line is not valid JSON: " + why;
    return;
  }
  if (!doc.IsObject()) {
    out.error = "header line is not a JSON object";
    return;
  }
  const rapidjson::Value* md = member(doc, "metadata");
  const rapidjson::Value* args = md ? member(*md, "run_arguments") : nullptr;
  const rapidjson::Value* metrics = member(doc, "metrics");
  if (auto* v = member(doc, "application_metadata_enabled"); v && v->IsBool())
    out.application_metadata_enabled = v->GetBool();
  out.start_time = string_of(member(doc, "start_time"));
  out.end_time = string_of(member(doc, "end_time"));
  if (metrics) {
    out.cpu_avg = number_of(member(*metrics, "cpu_avg"));
    out.mem_avg = number_of(member(*metrics, "mem_avg"));
  }
  auto add = [&](const char* key, const rapidjson::Value* v,
                 const rapidjson::Value* fallback = nullptr) {
    auto text = value_text(v);
    if (text.empty())
      text = value_text(fallback);
    if (!text.empty())
      out.facts.emplace_back(key, std::move(text));
  };
  add("hostname", md ? member(*md, "hostname") : nullptr);
  add("service_name", args ? member(*args, "service_name") : nullptr);
  add("start_time", member(doc, "start_time"),
      md ? member(*md, "start_time") : nullptr);
  add("end_time", member(doc, "end_time"),
      md ? member(*md, "end_time") : nullptr);
  add("current_time", md ? member(*md, "current_time") : nullptr);
  add("profiling_mode", member(doc, "profiling_mode"),
      md ? member(*md, "profiling_mode") : nullptr);
  add("cpu_avg", metrics ? member(*metrics, "cpu_avg") : nullptr);
  add("mem_avg", metrics ? member(*metrics, "mem_avg") : nullptr);
  add("agent_version", md ? member(*md, "agent_version") : nullptr);
  add("kernel_release", md ? member(*md, "kernel_release") : nullptr);
}

col_header_info read_col_header(std::string_view text) {
  col_reader r;
  auto nl = text.find('\n');
  r.read(text.substr(0, nl), [](const col_line&) {});
  return r.header();
}

void col_reader::carry(std::string_view piece) {
  if (overlong_)
    return;
  if (carry_.size() + piece.size() > max_line_) {
    overlong_ = true;
    std::string().swap(carry_);
    return;
  }
  carry_.append(piece);
}

col_line col_reader::overlong_line() {
  col_line l;
  l.kind = col_line_kind::malformed;
  if (lines_++ == 0) {
    l.kind = col_line_kind::header;
    header_.present = true;
    header_.refused = true;
    header_.error
        = "header line is longer than " + std::to_string(max_line_) + " bytes";
    prefix_fields_ = header_.prefix_fields();
  }
  return l;
}

void col_reader::classify(std::string_view text, col_line& l) {
  l.text = text;
  if (text.size() > max_line_) {
    l = overlong_line();
    l.text = text.substr(0, 0);
    return;
  }
  if (lines_++ == 0 && !text.empty() && text[0] == '#') {
    l.kind = col_line_kind::header;
    header_.present = true;
    auto json = text.substr(1);
    if (!json.empty() && json.back() == '\r')
      json.remove_suffix(1);
    parse_col_header(json, header_);
    prefix_fields_ = header_.prefix_fields();
    return;
  }
  if (!text.empty() && text.back() == '\r')
    text.remove_suffix(1);
  // Blank lines and comments are not stacks, and not mistakes either.
  auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos || text[first] == '#') {
    l.kind = col_line_kind::blank;
    return;
  }
  l.kind = col_line_kind::malformed;
  // Fields are set only once the whole line is known to be a stack line.
  uint64_t count = 0;
  auto space = text.rfind(' ');
  if (space == std::string_view::npos
      || !parse_col_count(text.substr(space + 1), count))
    return;
  auto rest = text.substr(0, space);
  std::string_view container;
  size_t at = 0;
  for (size_t i = 0; i < prefix_fields_; ++i) {
    auto semi = rest.find(';', at);
    if (semi == std::string_view::npos)
      return; // no comm field
    if (i + 1 < prefix_fields_) {
      if (!is_digits(rest.substr(at, semi - at)))
        return; // the app metadata index
    } else {
      container = rest.substr(at, semi - at);
    }
    at = semi + 1;
  }
  l.count = count;
  l.container = container;
  l.prefix = rest.substr(0, at == 0 ? 0 : at - 1);
  l.stack = rest.substr(at);
  auto semi = l.stack.find(';');
  l.comm = l.stack.substr(0, semi);
  if (semi != std::string_view::npos)
    l.frames = l.stack.substr(semi + 1);
  l.kind = col_line_kind::stack;
}

} // namespace gpa::format

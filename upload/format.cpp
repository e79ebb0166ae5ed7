#include "upload/format.hpp"

#include "format/col_reader.hpp"
#include "format/json.hpp"
#include "format/time.hpp"
#include "format/utf8.hpp"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <numeric>
#include <unordered_map>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/writer.h>

#include "runtime/error.hpp"

namespace gpa::upload {

namespace {

// -- small helpers
// -------------------------------------------------------------

/// A RapidJSON output stream appending to a std::string.
struct string_out {
  using Ch = char;
  std::string* s;
  void Put(char c) {
    s->push_back(c);
  }
  void Flush() {}
};

double finite_or_zero(double x) {
  return std::isfinite(x) ? x : 0.0;
}

std::string base_url(const std::string& host) {
  auto end = host.find_last_not_of('/');
  return end == std::string::npos ? std::string{} : host.substr(0, end + 1);
}

std::string common_query(const studio_identity& id, int64_t now_ms) {
  return "key=" + url_encode(id.token)
         + "&service=" + url_encode(id.service_name)
         + "&hostname=" + url_encode(id.hostname) + "&timestamp="
         + url_encode(format::iso8601(now_ms, format::time_precision::seconds));
}

/// One stack line of a .col text.
struct stack_line {
  /// The prefix and the comm: the line's process.
  std::string_view key;
  uint64_t count = 0;
  /// Index of the line in the text (order of appearance).
  size_t index = 0;
  /// True if it is already the process's "[other]" line.
  bool other = false;
};

constexpr std::string_view other_frame = "[other]";

} // namespace

// -- times and URLs
// ---------------------------------------------------------------

std::string url_encode(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string result;
  result.reserve(text.size());
  for (auto ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
        || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
        || c == '~') {
      result += static_cast<char>(c);
    } else {
      result += '%';
      result += hex[c >> 4];
      result += hex[c & 0xF];
    }
  }
  return result;
}

std::string health_check_url(const studio_identity& id, int64_t now_ms) {
  return base_url(id.server_host) + "/api/v1/health_check?"
         + common_query(id, now_ms);
}

std::string profiles_url(const studio_identity& id, int64_t now_ms) {
  return base_url(id.server_host) + "/api/v2/profiles?"
         + common_query(id, now_ms) + "&version=" + url_encode(id.version);
}

// -- the Performance Studio body
// ---------------------------------------------------

void studio_body(const profile& p, std::string_view col,
                 const studio_identity& id, const std::string& gpid,
                 std::string& out) {
  out.clear();
  out.reserve(col.size() + col.size() / 8 + 512);
  std::string fixed;
  auto text = format::valid_utf8(col, fixed);
  string_out os{&out};
  rapidjson::Writer<string_out> w{os};
  auto str = [&](std::string_view x) {
    w.String(x.data(), static_cast<rapidjson::SizeType>(x.size()));
  };
  w.StartObject();
  str("start_time");
  str(format::iso8601(p.start_ms, format::time_precision::seconds));
  str("end_time");
  str(format::iso8601(p.end_ms, format::time_precision::seconds));
  str("hostname");
  str(id.hostname);
  str("profile");
  str(text);
  // An unknown average (negative: no reading, or
  // --disable-metrics-collection) is null, as gProfiler sends it.
  auto average = [&](double x) {
    if (std::isfinite(x) && x >= 0)
      w.Double(x);
    else
      w.Null();
  };
  str("cpu_avg");
  average(p.cpu_avg);
  str("mem_avg");
  average(p.mem_avg);
  str("spawn_time");
  str(format::iso8601(id.spawn_time_ms, format::time_precision::seconds));
  str("gpid");
  str(gpid);
  w.EndObject();
}

std::string parse_gpid(std::string_view body) {
  // The server, or anyone on an http:// path, wrote the body: parsed with a
  // depth limit.
  rapidjson::Document doc;
  if (!format::parse_json(doc, body).empty() || !doc.IsObject())
    return {};
  auto i = doc.FindMember("gpid");
  if (i == doc.MemberEnd())
    return {};
  auto& v = i->value;
  if (v.IsString())
    return std::string{v.GetString(), v.GetStringLength()};
  if (v.IsUint64())
    return std::to_string(v.GetUint64());
  if (v.IsInt64())
    return std::to_string(v.GetInt64());
  return {};
}

std::string response_message(std::string_view body) {
  std::string result;
  rapidjson::Document doc;
  if (format::parse_json(doc, body).empty() && doc.IsObject()) {
    auto i = doc.FindMember("message");
    if (i != doc.MemberEnd() && i->value.IsString())
      result.assign(i->value.GetString(), i->value.GetStringLength());
    else if (i != doc.MemberEnd()) {
      std::string buf;
      string_out os{&buf};
      rapidjson::Writer<string_out> w{os};
      i->value.Accept(w);
      result = buf;
    }
  }
  if (result.empty())
    result.assign(body.substr(0, 300));
  if (result.size() > 300)
    result.resize(300);
  result.erase(std::remove_if(result.begin(), result.end(),
                              [](char c) {
                                return static_cast<unsigned char>(c) < 0x20;
                              }),
               result.end());
  return result.empty() ? std::string{"(empty response)"} : result;
}

// -- the size rule
// ----------------------------------------------------------------

std::string fold_small_stacks(std::string_view col, uint64_t target_bytes,
                              fold_stats* stats) {
  std::vector<std::string_view> lines;
  std::vector<stack_line> stacks;
  format::col_reader reader;
  reader.read(col, [&](const format::col_line& l) {
    auto index = lines.size();
    lines.push_back(l.text);
    if (l.kind == format::col_line_kind::stack)
      stacks.push_back(
          stack_line{l.process(), l.count, index, l.frames == other_frame});
  });
  // Per process (key): the folded sum, and where its [other] line goes.
  struct group {
    uint64_t sum = 0;
    size_t first = 0;
    bool used = false;
  };
  std::unordered_map<std::string_view, group> groups;
  std::vector<std::string_view> group_order;
  std::vector<bool> dropped(lines.size(), false);
  uint64_t size = col.size();
  uint64_t folded = 0;
  auto fold = [&](const stack_line& s) {
    auto key = s.key;
    auto& g = groups[key];
    if (!g.used) {
      g.used = true;
      g.first = s.index;
      group_order.push_back(key);
      // "<key>;[other] <count>\n"
      size += key.size() + other_frame.size() + 1 + 21 + 1;
    }
    g.sum += s.count;
    dropped[s.index] = true;
    size -= lines[s.index].size() + 1;
    ++folded;
  };
  // Lines that are already "[other]" lines always merge into their group, so
  // that a profile folded twice still has one [other] line per process.
  for (auto& s : stacks)
    if (s.other)
      fold(s);
  folded = 0;
  std::vector<size_t> order(stacks.size());
  std::iota(order.begin(), order.end(), size_t{0});
  // Smallest counts first; among equal counts, later lines first.
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (stacks[a].count != stacks[b].count)
      return stacks[a].count < stacks[b].count;
    return stacks[a].index > stacks[b].index;
  });
  for (auto i : order) {
    if (size <= target_bytes)
      break;
    if (!dropped[stacks[i].index])
      fold(stacks[i]);
  }
  std::string out;
  out.reserve(static_cast<size_t>(std::min<uint64_t>(size, col.size())));
  for (size_t i = 0; i < lines.size(); ++i) {
    if (dropped[i])
      continue;
    out.append(lines[i]);
    out += '\n';
  }
  for (auto key : group_order) {
    out.append(key);
    out += ';';
    out.append(other_frame);
    out += ' ';
    out += std::to_string(groups[key].sum);
    out += '\n';
  }
  if (stats != nullptr) {
    stats->folded_lines = folded;
    stats->other_lines = group_order.size();
  }
  return out;
}

// -- Pyroscope
// ---------------------------------------------------------------------

std::string col_to_folded(std::string_view col) {
  std::unordered_map<std::string_view, size_t> index;
  std::vector<std::pair<std::string_view, uint64_t>> merged;
  format::col_reader reader;
  reader.read(col, [&](const format::col_line& l) {
    if (l.kind != format::col_line_kind::stack)
      return;
    auto [i, added] = index.emplace(l.stack, merged.size());
    if (added)
      merged.emplace_back(l.stack, l.count);
    else
      merged[i->second].second += l.count;
  });
  std::string out;
  for (auto& [stack, count] : merged) {
    out.append(stack);
    out += ' ';
    out += std::to_string(count);
    out += '\n';
  }
  return out;
}

std::string pyroscope_url(const std::string& base, const std::string& app,
                          const std::string& tags, int64_t from_s,
                          int64_t until_s, int64_t sample_rate_hz) {
  auto name = tags.empty() ? app : app + "{" + tags + "}";
  return base_url(base) + "/ingest?name=" + url_encode(name) + "&from="
         + std::to_string(from_s) + "&until=" + std::to_string(until_s)
         + "&format=folded&sampleRate=" + std::to_string(sample_rate_hz);
}

// -- the spool's record format
// ---------------------------------------------------

std::string to_spool_record(const profile& p) {
  char head[256];
  std::snprintf(head, sizeof(head),
                "gpa-spool 1 %" PRIu64 " %" PRId64 " %" PRId64 " %" PRIu64
                " %.17g %.17g\n",
                p.snapshot_id, p.start_ms, p.end_ms, p.total_samples,
                finite_or_zero(p.cpu_avg), finite_or_zero(p.mem_avg));
  std::string out;
  out.reserve(std::strlen(head) + p.col.size());
  out += head;
  out += p.col;
  return out;
}

caf::expected<profile> from_spool_record(std::string data) {
  auto nl = data.find('\n');
  if (nl == std::string::npos || nl > 255)
    return make_gpa_error(ec::invalid_request,
                          "spool record has no header line");
  std::string head = data.substr(0, nl);
  profile p;
  int version = 0;
  int used = 0;
  if (std::sscanf(head.c_str(),
                  "gpa-spool %d %" SCNu64 " %" SCNd64 " %" SCNd64 " %" SCNu64
                  " %lf %lf%n",
                  &version, &p.snapshot_id, &p.start_ms, &p.end_ms,
                  &p.total_samples, &p.cpu_avg, &p.mem_avg, &used)
          != 7
      || version != 1 || static_cast<size_t>(used) != head.size())
    return make_gpa_error(ec::invalid_request,
                          "spool record header is malformed: '" + head + "'");
  data.erase(0, nl + 1);
  p.col = std::move(data);
  return p;
}

} // namespace gpa::upload

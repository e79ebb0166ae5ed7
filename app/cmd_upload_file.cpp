// `gprofiler-agent upload-file --file-path FILE`: uploads one .col file to
// Performance Studio through the uploader's own protocol code (health check,
// size rule, gpid), without a spool: it succeeds or says why and exits 1.

#include "app/commands.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>

#include <rapidjson/document.h>
#include <spdlog/spdlog.h>

#include "actors/uploader.hpp"
#include "runtime/error.hpp"
#include "runtime/files.hpp"
#include "runtime/host_info.hpp"
#include "runtime/log.hpp"
#include "upload/format.hpp"
#include "upload/studio_client.hpp"

namespace gpa {

namespace {

int fail(const std::string& msg) {
  std::fprintf(stderr, "gprofiler-agent: error: %s\n", msg.c_str());
  return 1;
}

/// Reads the header of a .col file: times and metrics, as gProfiler's
/// upload-file does (start_time/end_time keys if present, else now).
bool read_header(const std::string& col, profile& p, std::string& error) {
  if (col.empty() || col[0] != '#') {
    error = "its first line must be the '# {json}' header of a .col file";
    return false;
  }
  auto nl = col.find('\n');
  auto header
      = col.substr(1, nl == std::string::npos ? std::string::npos : nl - 1);
  rapidjson::Document doc;
  doc.Parse(header.data(), header.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    error = "its header line is not a JSON object";
    return false;
  }
  auto time_of = [&](const char* key) -> std::optional<int64_t> {
    auto i = doc.FindMember(key);
    if (i == doc.MemberEnd() || !i->value.IsString())
      return std::nullopt;
    return upload::parse_iso8601_utc(i->value.GetString());
  };
  auto start = time_of("start_time");
  auto end = time_of("end_time");
  auto now = rt::wall_clock_ms();
  p.start_ms = start && end ? *start : now;
  p.end_ms = start && end ? *end : now;
  auto m = doc.FindMember("metrics");
  if (m != doc.MemberEnd() && m->value.IsObject()) {
    auto num = [&](const char* key, double& out) {
      auto i = m->value.FindMember(key);
      if (i != m->value.MemberEnd() && i->value.IsNumber())
        out = i->value.GetDouble();
    };
    num("cpu_avg", p.cpu_avg);
    num("mem_avg", p.mem_avg);
  }
  return true;
}

} // namespace

int run_upload_file(const config::invocation& inv) {
  auto& path = inv.file_path;
  profile p;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  int err = fd < 0 ? errno : rt::read_fd(fd, p.col);
  if (fd >= 0)
    ::close(fd);
  if (err != 0)
    return fail("cannot read " + path + ": " + std::strerror(err));
  std::string error;
  if (!read_header(p.col, p, error))
    return fail(path + " is not a .col profile: " + error);
  auto host = rt::host_name();
  auto cfg = make_uploader_config(inv.options, host.empty() ? "unknown" : host,
                                  rt::wall_clock_ms());
  auto http = std::shared_ptr<rt::http_client>{
      rt::make_curl_http_client(make_http_options(inv.options.upload))};
  auto lg = log::get("uploader");
  studio_client client{http, cfg.studio, lg};
  if (auto err = client.health_check())
    lg->warn("{}", describe(err));
  if (client.pyroscope_enabled()) {
    if (auto py = client.send_pyroscope(p); py.status != submit_status::sent)
      lg->warn("Pyroscope upload of {} failed: {}", path, py.reason);
  }
  auto out = client.submit(p);
  if (out.status != submit_status::sent)
    return fail("upload of " + path + " failed: " + out.reason
                + (out.status == submit_status::retry
                       ? " (the server may be down; try again later)"
                       : ""));
  std::printf("uploaded %s (%llu bytes gzipped%s, gpid %s)\n", path.c_str(),
              static_cast<unsigned long long>(out.body_bytes),
              out.folded ? ", smallest stacks folded to fit" : "",
              client.gpid().empty() ? "none" : client.gpid().c_str());
  return 0;
}

} // namespace gpa

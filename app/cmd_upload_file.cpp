// `gprofiler-agent upload-file --file-path FILE`: uploads one .col file to
// Performance Studio through the uploader's own protocol code (health check,
// size rule, gpid), without a spool: it succeeds or says why and exits 1.

#include "app/commands.hpp"
#include "format/time.hpp"

#include <cstdio>
#include <optional>

#include <spdlog/spdlog.h>

#include "actors/uploader.hpp"
#include "format/col_reader.hpp"
#include "runtime/error.hpp"
#include "runtime/files.hpp"
#include "runtime/host_info.hpp"
#include "runtime/log.hpp"
#include "upload/format.hpp"
#include "upload/studio_client.hpp"

namespace gpa {

namespace {

/// The largest .col upload-file reads (it holds the file, its JSON body and
/// the gzip of it in memory at once).
constexpr uint64_t max_upload_file_bytes = uint64_t{1} << 30;

int fail(const std::string& msg) {
  std::fprintf(stderr, "gprofiler-agent: error: %s\n", msg.c_str());
  return 1;
}

/// Reads the header of a .col file (format::col_reader's one header
/// parser): times and metrics, as gProfiler's upload-file does
/// (start_time/end_time keys if present, else now).
bool read_header(const std::string& col, profile& p, std::string& error) {
  auto h = format::read_col_header(col);
  if (!h.present) {
    error = "its first line must be the '# {json}' header of a .col file";
    return false;
  }
  if (!h.error.empty()) {
    error = "its " + h.error;
    return false;
  }
  auto time_of = [](const std::optional<std::string>& text) {
    return text ? format::parse_iso8601(*text) : std::nullopt;
  };
  auto start = time_of(h.start_time);
  auto end = time_of(h.end_time);
  auto now = rt::wall_clock_ms();
  p.start_ms = start && end ? *start : now;
  p.end_ms = start && end ? *end : now;
  if (h.cpu_avg)
    p.cpu_avg = *h.cpu_avg;
  if (h.mem_avg)
    p.mem_avg = *h.mem_avg;
  return true;
}

} // namespace

int run_upload_file(const config::invocation& inv) {
  // As gProfiler: the file's own header is sent, there is nothing to add
  // external metadata to.
  if (!inv.options.metadata.external_metadata.empty())
    return fail("--external-metadata is not supported by upload-file");
  auto& path = inv.file_path;
  profile p;
  // A regular file or "-" (stdin), at most max_upload_file_bytes: a FIFO or
  // a device is refused at once instead of hanging or eating memory.
  auto text = rt::read_input_file(path, max_upload_file_bytes);
  if (!text)
    return fail(message_of(text.error()));
  p.col = std::move(*text);
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

#include "upload/studio_client.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "config/checks.hpp"
#include "runtime/error.hpp"
#include "runtime/gzip.hpp"

namespace gpa {

namespace {

/// What a base URL looks like in the log: scheme, host and path only.

bool is_success(int status) {
  return status >= 200 && status < 300;
}

/// Statuses worth trying again later: the server or a proxy is overloaded,
/// down or timed out; everything that is not a client error.
bool is_transient(int status) {
  if (status == 408 || status == 429)
    return true;
  return status < 400 || status >= 500;
}

} // namespace

studio_client::studio_client(std::shared_ptr<rt::http_client> http,
                             studio_settings cfg,
                             std::shared_ptr<spdlog::logger> log)
    : http_(std::move(http)), cfg_(std::move(cfg)), log_(std::move(log)),
      limit_(cfg_.body_limit) {
  if (!cfg_.now_ms)
    cfg_.now_ms = [] {
      return int64_t{0};
    };
}

void studio_client::add_auth_headers(rt::http_request& req) const {
  req.headers.emplace_back("GPROFILER-API-KEY", cfg_.identity.token);
  req.headers.emplace_back("GPROFILER-SERVICE-NAME",
                           cfg_.identity.service_name);
}

caf::expected<rt::http_response> studio_client::send(rt::http_request& req) {
  req.timeout = cfg_.timeout;
  req.connect_timeout = cfg_.connect_timeout;
  auto resp = http_->send(req);
  ++uses_;
  if (!resp || !is_success(resp->status))
    recycle("after a failed request");
  else if (uses_ >= cfg_.session_max_uploads)
    recycle("on schedule (--upload-session-max-uploads)");
  return resp;
}

void studio_client::recycle(const char* why) {
  http_->reset();
  uses_ = 0;
  ++recycles_;
  log_->debug("HTTP session recycled {}", why);
}

void studio_client::release_buffers() {
  std::string{}.swap(json_);
  std::string{}.swap(body_);
}

caf::error studio_client::health_check() {
  rt::http_request req;
  req.method = "GET";
  req.url = upload::health_check_url(cfg_.identity, cfg_.now_ms());
  add_auth_headers(req);
  auto where = config::redact_url(req.url);
  auto resp = send(req);
  if (!resp)
    return make_gpa_error(ec::upload_failed,
                          "health check failed: " + describe(resp.error())
                              + "; check --server-host and the network");
  if (!is_success(resp->status))
    return make_gpa_error(
        ec::upload_failed,
        "health check GET " + where + " answered HTTP "
            + std::to_string(resp->status) + ": "
            + rt::redact(upload::response_message(resp->body),
                         {cfg_.identity.token})
            + "; check --server-host, --token and --service-name");
  return caf::none;
}

bool studio_client::build_body(const profile& p, bool& folded,
                               std::string& reason) {
  folded = false;
  upload::studio_body(p, p.col, cfg_.identity, gpid_, json_);
  if (auto err = rt::gzip_compress(json_, body_)) {
    reason = describe(err);
    return false;
  }
  if (body_.size() <= limit_)
    return true;
  // The size rule: fold the smallest stacks until the gzip body fits. The
  // first target assumes the compression ratio stays; each further round
  // corrects by the ratio actually seen, with 10% to spare.
  auto original = body_.size();
  uint64_t target = p.col.size();
  uint64_t last_size = p.col.size();
  for (int round = 0; round < 12; ++round) {
    double ratio = static_cast<double>(limit_) / body_.size();
    target = static_cast<uint64_t>(target * ratio * 0.9);
    upload::fold_stats st;
    auto col = upload::fold_small_stacks(p.col, target, &st);
    upload::studio_body(p, col, cfg_.identity, gpid_, json_);
    if (auto err = rt::gzip_compress(json_, body_)) {
      reason = describe(err);
      return false;
    }
    if (body_.size() <= limit_) {
      folded = true;
      log_->warn("profile {} is {} bytes gzipped, over the limit of {}: "
                 "folded its {} smallest stacks into {} '[other]' stacks "
                 "(one per process; total samples kept), now {} bytes",
                 p.snapshot_id, original, limit_, st.folded_lines,
                 st.other_lines, body_.size());
      return true;
    }
    if (col.size() >= last_size)
      break; // nothing left to fold
    last_size = col.size();
  }
  reason = "profile " + std::to_string(p.snapshot_id) + " is "
           + std::to_string(original) + " bytes gzipped and still "
           + std::to_string(body_.size())
           + " bytes after folding every stack; the limit is "
           + std::to_string(limit_);
  return false;
}

submit_outcome studio_client::submit(const profile& p) {
  submit_outcome out;
  for (;;) {
    std::string reason;
    if (!build_body(p, out.folded, reason)) {
      out.status = submit_status::dropped;
      out.reason = reason;
      return out;
    }
    rt::http_request req;
    req.method = "POST";
    req.url = upload::profiles_url(cfg_.identity, cfg_.now_ms());
    add_auth_headers(req);
    req.headers.emplace_back("Content-Encoding", "gzip");
    req.headers.emplace_back("Content-Type", "application/json");
    // Lend the buffer to the request and take it back afterwards, so that
    // its capacity is reused by the next upload.
    req.body = std::move(body_);
    out.body_bytes = req.body.size();
    auto resp = send(req);
    body_ = std::move(req.body);
    judge(req, resp, out);
    if (out.status == submit_status::sent)
      gpid_ = upload::parse_gpid(resp->body);
    if (out.http_status == 413) {
      auto smaller = out.body_bytes / 4 * 3;
      if (smaller < cfg_.min_body_limit) {
        out.status = submit_status::dropped;
        out.reason += "; the body of " + std::to_string(out.body_bytes)
                      + " bytes cannot shrink below the floor of "
                      + std::to_string(cfg_.min_body_limit) + " bytes";
        return out;
      }
      limit_ = std::min(limit_, smaller);
      log_->warn("server refused profile {} as too large ({} bytes); "
                 "lowering the body limit to {} bytes and sending it again",
                 p.snapshot_id, out.body_bytes, limit_);
      continue;
    }
    return out;
  }
}

submit_outcome studio_client::send_pyroscope(const profile& p) {
  submit_outcome out;
  rt::http_request req;
  req.method = "POST";
  req.url = upload::pyroscope_url(cfg_.pyroscope_url, cfg_.pyroscope_app,
                                  cfg_.pyroscope_tags, p.start_ms / 1000,
                                  (p.end_ms + 999) / 1000, cfg_.sample_rate_hz);
  req.headers.emplace_back("Content-Type", "text/plain");
  req.body = upload::col_to_folded(p.col);
  out.body_bytes = req.body.size();
  judge(req, send(req), out);
  return out;
}

void studio_client::judge(const rt::http_request& req,
                          const caf::expected<rt::http_response>& resp,
                          submit_outcome& out) const {
  out.http_status = 0;
  if (!resp) {
    ++out.failed_requests;
    out.status = submit_status::retry;
    out.reason = describe(resp.error());
    return;
  }
  out.http_status = resp->status;
  if (is_success(resp->status)) {
    out.status = submit_status::sent;
    return;
  }
  ++out.failed_requests;
  out.reason = "POST " + config::redact_url(req.url) + " answered HTTP "
               + std::to_string(resp->status) + ": "
               + rt::redact(upload::response_message(resp->body),
                            {cfg_.identity.token});
  out.status = is_transient(resp->status) ? submit_status::retry
                                          : submit_status::dropped;
}

} // namespace gpa

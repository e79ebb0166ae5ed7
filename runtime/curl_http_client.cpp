// The libcurl implementation of rt::http_client: one easy handle kept for the
// whole session, so that libcurl reuses its connection (keep-alive) from one
// request to the next. curl_easy_reset() between requests clears the options
// but keeps the live connection and the TLS session cache; reset() of the
// session is curl_easy_cleanup() plus a fresh handle.

#include "runtime/http_client.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstring>
#include <mutex>

#include <curl/curl.h>

#include "config/checks.hpp"
#include "runtime/error.hpp"

namespace gpa::rt {

namespace {

/// curl_global_init is not thread-safe and must run once per process.
void global_init_once() {
  static std::once_flag flag;
  std::call_once(flag, [] {
    curl_global_init(CURL_GLOBAL_DEFAULT);
  });
}

/// Collects the response body up to a cap; the rest is read and dropped so
/// that the connection stays usable.
struct body_sink {
  std::string* out;
  size_t cap;
};

size_t write_cb(char* data, size_t size, size_t n, void* user) {
  auto* sink = static_cast<body_sink*>(user);
  size_t len = size * n;
  if (sink->out->size() < sink->cap)
    sink->out->append(data, std::min(len, sink->cap - sink->out->size()));
  return len;
}

int progress_cb(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* flag = static_cast<std::atomic<bool>*>(user);
  // Non-zero aborts the transfer with CURLE_ABORTED_BY_CALLBACK.
  return flag->load() ? 1 : 0;
}

/// Words for the failures that matter to a reader of the log.
const char* kind_of(CURLcode rc) {
  switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return "cannot connect";
    case CURLE_OPERATION_TIMEDOUT: return "timed out";
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING: return "connection reset or closed";
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM: return "TLS failure";
    case CURLE_ABORTED_BY_CALLBACK: return "interrupted";
    default: return "failed";
  }
}

class curl_http_client : public http_client {
public:
  explicit curl_http_client(http_client_options opts) : opts_(std::move(opts)) {
    global_init_once();
  }

  ~curl_http_client() override {
    if (handle_ != nullptr)
      curl_easy_cleanup(handle_);
  }

  caf::expected<http_response> send(const http_request& req) override {
    ++stats_.requests;
    if (interrupted_.load()) {
      ++stats_.transport_errors;
      return make_gpa_error(ec::upload_failed,
                            req.method + " " + config::redact_url(req.url)
                                + ": interrupted (the agent is stopping)");
    }
    if (handle_ == nullptr) {
      handle_ = curl_easy_init();
      if (handle_ == nullptr) {
        ++stats_.transport_errors;
        return make_gpa_error(
            ec::upload_failed,
            "cannot create a libcurl handle (out of memory?)");
      }
    } else {
      curl_easy_reset(handle_);
    }
    // Configuration refuses control characters in header values; this is
    // the last line of defence: a CR or LF would end the headers early or
    // add one, so such a request is never sent.
    for (auto& [name, value] : req.headers) {
      auto why = config::header_value_error(name);
      if (why.empty())
        why = config::header_value_error(value);
      if (!why.empty() || name.empty() || name.find(':') != std::string::npos) {
        ++stats_.transport_errors;
        return make_gpa_error(
            ec::upload_failed,
            req.method + " " + config::redact_url(req.url)
                + ": not sent: header '"
                + (why.empty() && !name.empty() ? "invalid name"
                                                : name.substr(0, 40))
                + "' " + (why.empty() ? "is malformed" : why));
      }
    }
    http_response resp;
    body_sink sink{&resp.body, opts_.max_response_bytes};
    char errbuf[CURL_ERROR_SIZE];
    errbuf[0] = '\0';
    curl_slist* headers = nullptr;
    // An empty "Expect:" stops libcurl from waiting for "100 Continue" on
    // large POST bodies (servers that never send it cost a second each).
    headers = curl_slist_append(headers, "Expect:");
    for (auto& [name, value] : req.headers)
      headers = curl_slist_append(headers, (name + ": " + value).c_str());
    auto* h = handle_;
    curl_easy_setopt(h, CURLOPT_URL, req.url.c_str());
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                     static_cast<long>(req.timeout.count()));
    curl_easy_setopt(
        h, CURLOPT_CONNECTTIMEOUT_MS,
        static_cast<long>(std::min(req.connect_timeout, req.timeout).count()));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_USERAGENT, opts_.user_agent.c_str());
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, progress_cb);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &interrupted_);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, opts_.verify ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, opts_.verify ? 2L : 0L);
    if (!opts_.ca_bundle.empty())
      curl_easy_setopt(h, CURLOPT_CAINFO, opts_.ca_bundle.c_str());
    if (!opts_.use_proxy) {
      curl_easy_setopt(h, CURLOPT_PROXY, "");
      curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    }
    if (req.method == "POST" || req.method == "PUT") {
      curl_easy_setopt(h, CURLOPT_POST, 1L);
      if (req.method == "PUT")
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
      // libcurl derives Content-Length from this size.
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(req.body.size()));
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, req.body.data());
    } else {
      curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    auto rc = curl_easy_perform(h);
    curl_slist_free_all(headers);
    long connects = 0;
    if (curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK
        && connects > 0)
      stats_.connections_opened += static_cast<uint64_t>(connects);
    if (rc != CURLE_OK) {
      ++stats_.transport_errors;
      std::string detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
      // libcurl's own message may quote the URL: mask its password too.
      auto secrets = opts_.secrets;
      config::server_url url;
      if (config::check_server_url(req.url.substr(0, req.url.find('?')), &url)
              .empty()
          && !url.password.empty())
        secrets.push_back(url.password);
      return make_gpa_error(ec::upload_failed,
                            redact(req.method + " "
                                       + config::redact_url(req.url) + ": "
                                       + kind_of(rc) + " (" + detail + ")",
                                   secrets));
    }
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    resp.status = static_cast<int>(status);
    return resp;
  }

  void reset() override {
    if (handle_ != nullptr) {
      curl_easy_cleanup(handle_);
      handle_ = nullptr;
    }
    ++stats_.resets;
  }

  void interrupt() override {
    interrupted_.store(true);
  }

  http_stats stats() const override {
    return stats_;
  }

private:
  http_client_options opts_;
  CURL* handle_ = nullptr;
  std::atomic<bool> interrupted_{false};
  http_stats stats_;
};

} // namespace

std::unique_ptr<http_client> make_curl_http_client(http_client_options opts) {
  return std::make_unique<curl_http_client>(std::move(opts));
}

namespace {

bool word_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}

} // namespace

std::string redact(std::string text, const std::vector<std::string>& secrets) {
  for (auto& secret : secrets) {
    if (secret.empty())
      continue;
    // A short secret ("abc") is also an ordinary word or part of one:
    // replace it only where it stands alone, so that logs stay readable.
    bool whole_words_only = secret.size() < min_substring_secret;
    for (auto pos = text.find(secret); pos != std::string::npos;) {
      auto end = pos + secret.size();
      // An apostrophe between letters is part of the word ("Couldn't").
      bool glued_before = pos > 0
                          && (word_char(text[pos - 1])
                              || (text[pos - 1] == '\'' && pos > 1
                                  && std::isalpha(static_cast<unsigned char>(
                                      text[pos - 2]))));
      bool glued_after = end < text.size()
                         && (word_char(text[end])
                             || (text[end] == '\'' && end + 1 < text.size()
                                 && std::isalpha(static_cast<unsigned char>(
                                     text[end + 1]))));
      bool alone = !glued_before && !glued_after;
      if (whole_words_only && !alone) {
        pos = text.find(secret, pos + 1);
        continue;
      }
      text.replace(pos, secret.size(), "***");
      pos = text.find(secret, pos + 3);
    }
  }
  // The value of a "key=" query parameter, up to '&', '#', a quote or space.
  for (size_t pos = 0; (pos = text.find("key=", pos)) != std::string::npos;) {
    bool at_param = pos == 0 || text[pos - 1] == '?' || text[pos - 1] == '&';
    pos += 4;
    if (!at_param)
      continue;
    auto end = text.find_first_of("&# \t\r\n\"'", pos);
    if (end == std::string::npos)
      end = text.size();
    text.replace(pos, end - pos, "***");
    pos += 3;
  }
  return text;
}

} // namespace gpa::rt

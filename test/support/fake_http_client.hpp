#pragma once

// A scripted rt::http_client for the deterministic simulation: it records
// every request (with the gzip JSON body decoded), answers from a script or,
// by default, like Performance Studio ({"message":"ok","gpid":N}), and can be
// "down" (every request fails below HTTP).

#include <deque>
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "runtime/error.hpp"
#include "runtime/gzip.hpp"
#include "runtime/http_client.hpp"

namespace gpa::test {

/// The scripted client (see the top of this file).
class fake_http_client : public rt::http_client {
public:
  /// One request as the fake saw it.
  struct call {
    std::string method;
    std::string url;
    /// The decoded JSON body of a profile upload ("" otherwise).
    std::string json;
    /// Fields of the body, if it was a profile upload.
    std::string profile;
    std::string gpid;
    /// The body of any other request (Pyroscope's folded text).
    std::string body;
    /// What the fake answered: an HTTP status, or 0 for a transport error.
    int status = 0;
  };

  /// Every request fails with a transport error while set.
  bool down = false;
  /// Requests to Pyroscope's /ingest fail so while set.
  bool ingest_down = false;
  /// Answers for the next requests, in order: an HTTP status (a 200 to an
  /// upload carries the next gpid, 101, 102, ...) or 0 for a transport
  /// error. Used before `down`.
  std::deque<int> script;
  std::vector<call> calls;
  uint64_t resets = 0;
  uint64_t next_gpid = 100;

  /// Records the request and answers from the script, or by default.
  caf::expected<rt::http_response> send(const rt::http_request& req) override {
    ++stats_.requests;
    call c;
    c.method = req.method;
    c.url = req.url;
    bool upload = req.url.find("/api/v2/profiles") != std::string::npos;
    bool ingest = req.url.find("/ingest?") != std::string::npos;
    if (!upload)
      c.body = req.body;
    if (upload) {
      auto json = rt::gzip_decompress(req.body);
      if (json) {
        c.json = *json;
        rapidjson::Document doc;
        doc.Parse(c.json.data(), c.json.size());
        if (!doc.HasParseError() && doc.IsObject()) {
          c.profile = doc["profile"].GetString();
          c.gpid = doc["gpid"].GetString();
        }
      }
    }
    int status = 200;
    if (!script.empty()) {
      status = script.front();
      script.pop_front();
    } else if (down || (ingest && ingest_down)) {
      status = 0;
    }
    c.status = status;
    calls.push_back(c);
    if (status == 0) {
      ++stats_.transport_errors;
      connected_ = false;
      return make_gpa_error(ec::upload_failed,
                            "cannot connect (scripted failure)");
    }
    if (!connected_) {
      connected_ = true;
      ++stats_.connections_opened;
    }
    rt::http_response resp;
    resp.status = status;
    if (status == 200 && upload)
      resp.body
          = R"({"message":"ok","gpid":)" + std::to_string(++next_gpid) + "}";
    else if (status == 200)
      resp.body = R"({"message":"ok"})";
    else
      resp.body = R"({"message":"scripted )" + std::to_string(status) + R"("})";
    return resp;
  }

  /// Counts the reset; the next request opens a connection.
  void reset() override {
    connected_ = false;
    ++resets;
    ++stats_.resets;
  }

  /// Like the real client: every later request fails.
  void interrupt() override {
    down = true;
  }

  /// Pyroscope's ingest requests only.
  std::vector<call> ingests() const {
    std::vector<call> result;
    for (auto& c : calls)
      if (c.url.find("/ingest?") != std::string::npos)
        result.push_back(c);
    return result;
  }

  /// Requests, transport errors, connections opened, resets.
  rt::http_stats stats() const override {
    return stats_;
  }

  /// The profile uploads only.
  std::vector<call> uploads() const {
    std::vector<call> result;
    for (auto& c : calls)
      if (c.url.find("/api/v2/profiles") != std::string::npos)
        result.push_back(c);
    return result;
  }

private:
  bool connected_ = false;
  rt::http_stats stats_;
};

} // namespace gpa::test

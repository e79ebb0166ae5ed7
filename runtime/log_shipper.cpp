#include "runtime/log_shipper.hpp"

#include <algorithm>
#include <csignal>

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <pthread.h>
#include <random>

#include <spdlog/details/null_mutex.h>
#include <spdlog/sinks/base_sink.h>

#include "config/checks.hpp"
#include "format/flamegraph_tree.hpp"
#include "format/utf8.hpp"
#include "runtime/error.hpp"
#include "runtime/gzip.hpp"

namespace gpa::rt {

namespace {

using std::chrono::steady_clock;

/// Fixed bytes a record counts for besides its texts (the record itself,
/// its pointer in the buffer, its JSON keys).
constexpr size_t record_overhead = 160;

/// `text` cut to at most `max` bytes, not inside a UTF-8 sequence.
std::string_view cut_utf8(std::string_view text, size_t max) {
  if (text.size() <= max)
    return text;
  size_t n = max;
  // Back over continuation bytes (10xxxxxx) to the start of a sequence
  // (at most 3 of them: a longer run is not UTF-8 anyway).
  while (n > 0 && max - n < 3
         && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80)
    --n;
  return text.substr(0, n);
}

std::string random_hex(std::mt19937_64& rng, size_t digits) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(digits);
  while (out.size() < digits) {
    auto x = rng();
    for (int i = 0; i < 16 && out.size() < digits; ++i, x >>= 4)
      out += hex[x & 0xF];
  }
  return out;
}

std::mt19937_64 seeded_rng() {
  std::random_device rd;
  std::seed_seq seq{rd(), rd(), rd(), rd()};
  return std::mt19937_64{seq};
}

/// Python's datetime.utcfromtimestamp(t).isoformat() with microseconds.
std::string iso_utc(double ms) {
  auto us = static_cast<int64_t>(ms * 1000.0);
  auto secs = static_cast<time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06" PRId64,
                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                tm.tm_min, tm.tm_sec, us % 1000000);
  return buf;
}

void append_text(std::string& out, std::string_view text) {
  std::string fixed;
  format::append_json_string(out, format::valid_utf8(text, fixed));
}

/// One line of a server's answer for a log line: the token (echoed by some
/// servers) masked, control characters gone, at most 200 bytes.
std::string answer_excerpt(const std::string& body,
                           const std::vector<std::string>& secrets) {
  // Masked before it is cut: a cut through the token would leave its start.
  auto text = std::string{cut_utf8(redact(body, secrets), 200)};
  for (auto& c : text)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F)
      c = ' ';
  return format::sanitize_utf8(text);
}

} // namespace

int shipped_severity(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace: return 1;
    case spdlog::level::debug: return 2;
    case spdlog::level::info: return 3;
    case spdlog::level::warn: return 4;
    case spdlog::level::err: return 5;
    case spdlog::level::critical: return 6;
    default: return 3;
  }
}

// -- the buffer --------------------------------------------------------------

log_buffer::log_buffer(log_buffer_limits limits) : limits_(limits) {
  limits_.max_total = std::max<size_t>(limits_.max_total, 1);
  limits_.max_message = std::max<size_t>(limits_.max_message, 1);
}

size_t log_buffer::footprint(const log_record& r) {
  return r.message.size() + r.logger_name.size() + record_overhead;
}

void log_buffer::append(int severity, double timestamp_ms,
                        std::string_view logger_name, std::string_view message,
                        uint64_t thread) {
  // Everything but the serial number is made outside the lock.
  auto r = std::make_shared<log_record>();
  r->severity = severity;
  r->timestamp_ms = timestamp_ms;
  r->logger_name.reserve(logger_name.size() + 10);
  r->logger_name = "gprofiler.";
  r->logger_name.append(logger_name.data(), logger_name.size());
  auto kept = cut_utf8(message, limits_.max_message);
  r->message.assign(kept.data(), kept.size());
  r->truncated = kept.size() < message.size();
  r->thread = thread;
  auto size = footprint(*r);
  std::lock_guard<std::mutex> guard{mtx_};
  r->serial_no = next_serial_++;
  records_.push_back(std::move(r));
  bytes_ += size;
  if (bytes_ >= limits_.max_total) {
    auto n = static_cast<size_t>(limits_.drop_fraction
                                 * static_cast<double>(records_.size()));
    drop_oldest_locked(std::max<size_t>(n, 1));
    // One record nearly as large as the whole buffer: the rest must go too.
    while (bytes_ >= limits_.max_total && !records_.empty())
      drop_oldest_locked(1);
  }
}

void log_buffer::drop_oldest_locked(size_t n) {
  n = std::min(n, records_.size());
  for (size_t i = 0; i < n; ++i) {
    bytes_ -= footprint(*records_.front());
    records_.pop_front();
  }
  lost_ += n;
}

log_buffer::batch log_buffer::take() const {
  std::lock_guard<std::mutex> guard{mtx_};
  batch b;
  b.records.assign(records_.begin(), records_.end());
  b.lost = lost_;
  return b;
}

void log_buffer::confirm(const batch& b) {
  std::lock_guard<std::mutex> guard{mtx_};
  // The lost count the batch reported is the server's now.
  lost_ -= std::min(lost_, b.lost);
  if (b.records.empty())
    return;
  auto end = b.records.back()->serial_no + 1;
  // Records of the batch that overflow dropped while it was on its way
  // were counted as lost, but they arrived.
  auto head = records_.empty() ? next_serial_ : records_.front()->serial_no;
  auto first = b.records.front()->serial_no;
  if (head > first)
    lost_ -= std::min(lost_, std::min(head, end) - first);
  while (!records_.empty() && records_.front()->serial_no < end) {
    bytes_ -= footprint(*records_.front());
    records_.pop_front();
  }
}

size_t log_buffer::count() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return records_.size();
}

size_t log_buffer::bytes() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return bytes_;
}

uint64_t log_buffer::lost() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return lost_;
}

double log_buffer::utilization() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return static_cast<double>(bytes_) / static_cast<double>(limits_.max_total);
}

uint64_t log_buffer::next_serial() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return next_serial_;
}

// -- the body ----------------------------------------------------------------

std::string batch_json(const log_buffer::batch& b, const log_metadata& meta,
                       const std::string& batch_id) {
  std::string out;
  size_t guess = 256;
  for (auto& r : b.records)
    guess += log_buffer::footprint(*r) + r->message.size() / 8;
  out.reserve(guess);
  out += "{\"batch_id\":";
  append_text(out, batch_id);
  out += ",\"metadata\":{\"run_id\":";
  append_text(out, meta.run_id);
  out += ",\"gprofiler_version\":";
  append_text(out, meta.gprofiler_version);
  out += ",\"service_name\":";
  append_text(out, meta.service_name);
  if (!meta.hostname.empty()) {
    out += ",\"hostname\":";
    append_text(out, meta.hostname);
  }
  out += "},\"lost_logs_count\":";
  out += std::to_string(b.lost);
  out += ",\"logs\":[";
  char num[64];
  bool first = true;
  for (auto& r : b.records) {
    if (!first)
      out += ',';
    first = false;
    // glogger's record: the severity and the time in milliseconds outside,
    // what happened inside "text".
    std::snprintf(num, sizeof num, "{\"severity\":%d,\"timestamp\":%.3f",
                  r->severity, r->timestamp_ms);
    out += num;
    out += ",\"text\":{\"logger_name\":";
    append_text(out, r->logger_name);
    out += ",\"serial_no\":";
    out += std::to_string(r->serial_no);
    out += ",\"message\":";
    append_text(out, r->message);
    out += ",\"truncated\":";
    out += r->truncated ? "true" : "false";
    out += ",\"thread\":";
    out += std::to_string(r->thread);
    out += ",\"timestamp\":";
    append_text(out, iso_utc(r->timestamp_ms));
    out += ",\"exception\":\"\",\"extra\":{}}}";
  }
  out += "]}";
  return out;
}

std::string logs_url(const std::string& api_server) {
  if (!config::check_server_url(api_server).empty())
    return {};
  // As urlparse(...).netloc: the authority as written, any path dropped.
  auto start = api_server.find("://") + 3;
  auto end = api_server.find_first_of("/?#", start);
  auto scheme = api_server.substr(0, start - 3);
  std::transform(scheme.begin(), scheme.end(), scheme.begin(), [](char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  });
  return scheme + "://" + api_server.substr(start, end - start)
         + "/api/v1/logs";
}

std::string random_run_id() {
  auto rng = seeded_rng();
  auto hex = random_hex(rng, 32);
  // Version 4, variant 10xx.
  hex[12] = '4';
  hex[16] = "89ab"[static_cast<unsigned char>(hex[16]) & 3];
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4)
         + "-" + hex.substr(16, 4) + "-" + hex.substr(20);
}

// -- the shipper
// ---------------------------------------------------------------

struct log_shipper::state {
  log_shipper_options opts;
  std::string url;
  log_buffer buffer;
  std::unique_ptr<http_client> client;
  std::mt19937_64 rng = seeded_rng();

  std::mutex mtx;
  std::condition_variable cv;
  /// The sink saw the buffer pass the threshold.
  bool kick = false;
  std::atomic<bool> kicked{false};
  bool stopping = false;
  steady_clock::time_point final_deadline;
  bool done = false;
  std::condition_variable done_cv;

  /// Whether the last send failed (its report was made).
  bool failing = false;
  std::atomic<uint64_t> sent{0};
  std::atomic<uint64_t> failed{0};

  explicit state(log_shipper_options o)
      : opts(std::move(o)), url(logs_url(opts.api_server)),
        buffer(opts.limits) {
    auto http = opts.http;
    if (!opts.token.empty())
      http.secrets.push_back(opts.token);
    client = opts.make_client ? opts.make_client(http)
                              : make_curl_http_client(http);
  }

  void report(spdlog::level::level_enum level, const std::string& text) {
    if (opts.report)
      opts.report(level, text);
  }

  /// Sleeps `d` unless stopping (then returns false at once).
  bool pause(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lk{mtx};
    return !cv.wait_for(lk, d, [&] {
      return stopping;
    });
  }

  /// Sends the buffer as one batch, up to max_tries times; with `deadline`
  /// (the final flush), no try starts or lasts past it.
  void send(const steady_clock::time_point* deadline) {
    auto b = buffer.take();
    kicked = false;
    if (b.records.empty() && b.lost == 0)
      return;
    std::string why;
    if (url.empty()) {
      why = "--api-server " + config::redact_url(opts.api_server)
            + " is not an http(s) URL with a host";
    } else {
      http_request req;
      req.method = "POST";
      req.url = url;
      req.headers = {{"Content-Encoding", "gzip"},
                     {"Content-Type", "application/json"},
                     {"X-Application-Name", "gprofiler"},
                     {"X-Token", opts.token}};
      std::string batch_id = random_hex(rng, 32);
      if (auto err = gzip_compress(batch_json(b, opts.metadata, batch_id),
                                   req.body, 6)) {
        why = message_of(err);
      } else {
        for (int attempt = 1; attempt <= std::max(1, opts.max_tries);
             ++attempt) {
          req.connect_timeout = opts.connect_timeout;
          req.timeout = opts.request_timeout;
          if (deadline != nullptr) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                *deadline - steady_clock::now());
            if (left.count() <= 0)
              break;
            req.timeout = std::min(req.timeout, left);
            req.connect_timeout = std::min(req.connect_timeout, left);
          }
          auto resp = client->send(req);
          if (resp && resp->status >= 200 && resp->status < 300) {
            buffer.confirm(b);
            ++sent;
            if (failing)
              report(spdlog::level::info, "sending logs to "
                                              + config::redact_url(url)
                                              + " works again");
            failing = false;
            return;
          }
          why = resp ? "HTTP " + std::to_string(resp->status) + " ("
                           + answer_excerpt(resp->body, client_secrets()) + ")"
                     : message_of(resp.error());
          if (attempt < opts.max_tries) {
            if (deadline != nullptr) {
              std::this_thread::sleep_for(std::chrono::milliseconds{100});
            } else if (!pause(opts.send_retry_pause)) {
              break; // stopping: the final flush tries again
            }
          }
        }
      }
    }
    ++failed;
    if (!failing)
      report(spdlog::level::warn,
             "cannot send logs to the API server: " + why
                 + "; they are kept in memory (the oldest dropped beyond "
                 + std::to_string(opts.limits.max_total >> 20)
                 + " MiB) and sent again later");
    failing = true;
  }

  std::vector<std::string> client_secrets() const {
    auto s = opts.http.secrets;
    if (!opts.token.empty())
      s.push_back(opts.token);
    return s;
  }

  void run() {
    auto last_send = steady_clock::now();
    std::unique_lock<std::mutex> lk{mtx};
    while (!stopping) {
      auto now = steady_clock::now();
      bool full = buffer.utilization() >= opts.send_threshold;
      auto due
          = last_send + (full ? opts.min_send_interval : opts.send_interval);
      if (now >= due) {
        if (buffer.count() > 0 || buffer.lost() > 0) {
          lk.unlock();
          send(nullptr);
          lk.lock();
        }
        last_send = steady_clock::now();
        continue;
      }
      kick = false;
      cv.wait_until(lk, due, [&] {
        return stopping || kick;
      });
    }
    auto deadline = final_deadline;
    lk.unlock();
    if (buffer.count() > 0 || buffer.lost() > 0)
      send(&deadline);
    lk.lock();
    done = true;
    done_cv.notify_all();
  }
};

namespace {

/// Copies each record into the buffer; wakes the sender when the buffer
/// passes its threshold. spdlog calls it under no lock of ours (null_mutex):
/// the buffer has its own.
class shipping_sink final
    : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
public:
  explicit shipping_sink(std::shared_ptr<log_shipper::state> st)
      : st_(std::move(st)) {}

protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (msg.level == spdlog::level::off)
      return;
    auto since = msg.time.time_since_epoch();
    double ms = std::chrono::duration<double, std::milli>(since).count();
    st_->buffer.append(shipped_severity(msg.level), ms,
                       {msg.logger_name.data(), msg.logger_name.size()},
                       {msg.payload.data(), msg.payload.size()},
                       static_cast<uint64_t>(msg.thread_id));
    if (st_->buffer.utilization() >= st_->opts.send_threshold
        && !st_->kicked.exchange(true)) {
      std::lock_guard<std::mutex> guard{st_->mtx};
      st_->kick = true;
      st_->cv.notify_all();
    }
  }

  void flush_() override {}

private:
  std::shared_ptr<log_shipper::state> st_;
};

} // namespace

log_shipper::log_shipper(log_shipper_options opts)
    : state_(std::make_shared<state>(std::move(opts))),
      sink_(std::make_shared<shipping_sink>(state_)) {
  // The thread holds the state too: left behind at stop(), it stays valid.
  // The sender never takes the agent's signals: it is created with every
  // signal blocked (it may start before main blocks SIGTERM and the others
  // for the main thread's sigtimedwait, and a thread that does not block
  // SIGTERM would get its default action: the agent killed without its
  // shutdown).
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  thread_ = std::thread([st = state_] {
    st->run();
  });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

log_shipper::~log_shipper() {
  stop();
}

spdlog::sink_ptr log_shipper::sink() const {
  return sink_;
}

void log_shipper::stop(std::chrono::milliseconds deadline) {
  if (!thread_.joinable())
    return;
  auto& st = *state_;
  std::unique_lock<std::mutex> lk{st.mtx};
  st.stopping = true;
  st.final_deadline = steady_clock::now() + deadline;
  st.cv.notify_all();
  auto is_done = [&] {
    return st.done;
  };
  if (!st.done_cv.wait_until(lk, st.final_deadline, is_done)) {
    // A send still under way (a server that does not answer): cut it, and
    // give libcurl a moment (its progress callback runs about once a
    // second) to notice, but no longer than the deadline itself.
    st.client->interrupt();
    st.done_cv.wait_for(lk, std::min(deadline, std::chrono::milliseconds{1000}),
                        is_done);
  }
  bool finished = st.done;
  lk.unlock();
  if (finished)
    thread_.join();
  else
    thread_.detach();
}

const log_buffer& log_shipper::buffer() const {
  return state_->buffer;
}

uint64_t log_shipper::batches_sent() const {
  return state_->sent.load();
}

uint64_t log_shipper::sends_failed() const {
  return state_->failed.load();
}

} // namespace gpa::rt

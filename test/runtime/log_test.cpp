// Logging: the journal's console lines and the check of JOURNAL_STREAM
// (unit); the log shipper's bounded buffer and its batch body (unit); and
// the shipper against the stand-in API server (test/support/server.py) on
// 127.0.0.1 (real): what arrives with which headers and fields, an outage
// (logging stays fast, the lines arrive afterwards, with the count of those
// that did not fit), a server that never answers, 500 answers, the flush at
// stop, and the token in no line.

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rapidjson/document.h>
#include <spdlog/logger.h>

#include "format/utf8.hpp"
#include "runtime/log.hpp"
#include "runtime/log_shipper.hpp"
#include "test/support/test_server.hpp"

using namespace gpa;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

/// Milliseconds of a duration, for checks and messages.
template <class D>
double ms_of(D d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

double now_ms() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// Sets JOURNAL_STREAM for the scope of a test, restoring it afterwards.
struct journal_env {
  std::string old;
  bool had = false;
  explicit journal_env(const char* value) {
    if (const char* v = std::getenv("JOURNAL_STREAM")) {
      had = true;
      old = v;
    }
    if (value != nullptr)
      ::setenv("JOURNAL_STREAM", value, 1);
    else
      ::unsetenv("JOURNAL_STREAM");
  }
  ~journal_env() {
    if (had)
      ::setenv("JOURNAL_STREAM", old.c_str(), 1);
    else
      ::unsetenv("JOURNAL_STREAM");
  }
};

std::string dev_ino_of(int fd) {
  struct stat st {};
  BOOST_REQUIRE(::fstat(fd, &st) == 0);
  return std::to_string(static_cast<unsigned long long>(st.st_dev)) + ":"
         + std::to_string(static_cast<unsigned long long>(st.st_ino));
}

/// The serial numbers of a batch.
std::vector<uint64_t> serials(const rt::log_buffer::batch& b) {
  std::vector<uint64_t> out;
  for (auto& r : b.records)
    out.push_back(r->serial_no);
  return out;
}

bool consecutive(const std::vector<uint64_t>& xs) {
  for (size_t i = 1; i < xs.size(); ++i)
    if (xs[i] != xs[i - 1] + 1)
      return false;
  return true;
}

} // namespace

// -- the journal's lines ------------------------------------------------------

BOOST_AUTO_TEST_SUITE(log_journal)

BOOST_AUTO_TEST_CASE(priorities_are_sd_daemons_and_there_is_no_time) {
  using spdlog::level::level_enum;
  std::vector<std::pair<level_enum, std::string>> cases{
      {spdlog::level::trace, "<7>"}, {spdlog::level::debug, "<7>"},
      {spdlog::level::info, "<6>"},  {spdlog::level::warn, "<4>"},
      {spdlog::level::err, "<3>"},   {spdlog::level::critical, "<2>"}};
  for (auto& [level, prefix] : cases)
    BOOST_CHECK_EQUAL(log::journal_line(level, "perf", "sampling at 11 Hz"),
                      prefix + "perf: sampling at 11 Hz\n");
}

BOOST_AUTO_TEST_CASE(a_message_stays_one_record) {
  std::string msg = "first\nsecond\r\nthird";
  msg += '\0';
  msg += "fourth";
  auto line = log::journal_line(spdlog::level::warn, "agent", msg);
  BOOST_CHECK_EQUAL(line, "<4>agent: first\\nsecond\\r\\nthird\\0fourth\n");
  // One newline, at the end; no NUL: journald sees one record.
  BOOST_CHECK_EQUAL(std::count(line.begin(), line.end(), '\n'), 1);
  BOOST_CHECK_EQUAL(line.find('\0'), std::string::npos);
  // A line journald would split is cut, with a note.
  auto huge = log::journal_line(spdlog::level::info, "agent",
                                std::string(100000, 'x'));
  BOOST_CHECK_LT(huge.size(), log::journal_max_message + 100);
  BOOST_CHECK(contains(huge, "more bytes not shown]\n"));
  BOOST_CHECK_EQUAL(std::count(huge.begin(), huge.end(), '\n'), 1);
}

BOOST_AUTO_TEST_CASE(journal_stream_must_name_stderr) {
  {
    journal_env env{nullptr};
    BOOST_CHECK(!log::stderr_is_journal());
  }
  {
    journal_env env{dev_ino_of(STDERR_FILENO).c_str()};
    BOOST_CHECK(log::stderr_is_journal());
  }
  // Inherited from a parent whose stderr was the journal, ours is not.
  auto path = "/tmp/gpa-journal-" + std::to_string(::getpid());
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
  BOOST_REQUIRE(fd >= 0);
  auto other = dev_ino_of(fd);
  ::close(fd);
  ::unlink(path.c_str());
  for (auto value :
       {other, std::string{"garbage"}, std::string{""},
        dev_ino_of(STDERR_FILENO) + "x", dev_ino_of(STDERR_FILENO) + ":1"}) {
    journal_env env{value.c_str()};
    BOOST_CHECK_MESSAGE(!log::stderr_is_journal(), value);
  }
}

BOOST_AUTO_TEST_SUITE_END()

// -- the shipper's buffer and body --------------------------------------------

BOOST_AUTO_TEST_SUITE(log_shipper)

BOOST_AUTO_TEST_CASE(severities_are_gloggers) {
  BOOST_CHECK_EQUAL(rt::shipped_severity(spdlog::level::trace), 1);
  BOOST_CHECK_EQUAL(rt::shipped_severity(spdlog::level::debug), 2);
  BOOST_CHECK_EQUAL(rt::shipped_severity(spdlog::level::info), 3);
  BOOST_CHECK_EQUAL(rt::shipped_severity(spdlog::level::warn), 4);
  BOOST_CHECK_EQUAL(rt::shipped_severity(spdlog::level::err), 5);
  BOOST_CHECK_EQUAL(rt::shipped_severity(spdlog::level::critical), 6);
}

BOOST_AUTO_TEST_CASE(the_buffer_never_holds_more_than_its_cap) {
  rt::log_buffer_limits limits; // glogger's: 5 MiB, 1 MiB, 25%
  rt::log_buffer buf{limits};
  const std::string line(1024, 'x');
  const size_t lines = 200000;
  size_t most = 0;
  for (size_t i = 0; i < lines; ++i) {
    buf.append(3, 1.0, "agent", line, 1);
    most = std::max(most, buf.bytes());
    BOOST_REQUIRE_LT(buf.bytes(), limits.max_total);
  }
  BOOST_CHECK_LT(most, limits.max_total);
  // Full at some point: it dropped a quarter each time, never all.
  BOOST_CHECK_GT(buf.count(), 1000u);
  BOOST_CHECK_EQUAL(buf.count() + buf.lost(), lines);
  BOOST_CHECK_EQUAL(buf.next_serial(), lines);
  auto b = buf.take();
  BOOST_CHECK_EQUAL(b.lost, buf.lost());
  auto nos = serials(b);
  BOOST_CHECK(consecutive(nos));
  BOOST_CHECK_EQUAL(nos.back(), lines - 1);
  BOOST_CHECK_EQUAL(nos.front(), lines - nos.size());
}

BOOST_AUTO_TEST_CASE(a_long_message_is_cut_at_a_character) {
  rt::log_buffer buf;
  buf.append(5, 1.0, "agent", std::string(3 << 20, 'y'), 1);
  // "é" is 2 bytes: 1 MiB + 1 would split one.
  std::string accents;
  for (int i = 0; i < (1 << 19) + 7; ++i)
    accents += "\xc3\xa9";
  buf.append(5, 1.0, "agent", "z" + accents, 1);
  buf.append(5, 1.0, "agent", "short", 1);
  auto b = buf.take();
  BOOST_REQUIRE_EQUAL(b.records.size(), 3u);
  BOOST_CHECK_EQUAL(b.records[0]->message.size(), size_t{1} << 20);
  BOOST_CHECK(b.records[0]->truncated);
  BOOST_CHECK_LE(b.records[1]->message.size(), size_t{1} << 20);
  BOOST_CHECK_GT(b.records[1]->message.size(), (size_t{1} << 20) - 4);
  BOOST_CHECK(format::is_valid_utf8(b.records[1]->message));
  BOOST_CHECK(b.records[1]->truncated);
  BOOST_CHECK(!b.records[2]->truncated);
  BOOST_CHECK_EQUAL(b.lost, 0u);
}

BOOST_AUTO_TEST_CASE(confirm_drops_what_was_sent_and_settles_the_lost_count) {
  rt::log_buffer_limits limits;
  limits.max_total = 100 * 1000;
  rt::log_buffer buf{limits};
  const std::string line(800, 'a'); // ~1 KB with the overhead: ~100 fit
  for (int i = 0; i < 150; ++i)
    buf.append(3, 1.0, "agent", line, 1);
  auto lost_before = buf.lost();
  BOOST_REQUIRE_GT(lost_before, 0u);
  auto b = buf.take();
  BOOST_CHECK_EQUAL(b.lost, lost_before);
  // Logged while the batch is on its way: some of the batch is dropped by
  // overflow before the server answers.
  for (int i = 0; i < 60; ++i)
    buf.append(3, 1.0, "agent", line, 1);
  auto dropped_meanwhile = buf.lost() - lost_before;
  BOOST_REQUIRE_GT(dropped_meanwhile, 0u);
  auto end = b.records.back()->serial_no + 1;
  buf.confirm(b);
  // What is left is newer than the batch; the batch's lost count went to
  // the server; of the records dropped meanwhile, those of the batch
  // arrived, the newer ones are lost.
  auto rest = buf.take();
  BOOST_REQUIRE(!rest.records.empty());
  BOOST_CHECK_EQUAL(rest.records.front()->serial_no >= end, true);
  BOOST_CHECK(consecutive(serials(rest)));
  uint64_t newer_dropped = rest.records.front()->serial_no - end;
  BOOST_CHECK_EQUAL(buf.lost(), newer_dropped);
  // Every record is accounted for exactly once: sent, reported lost,
  // waiting, or lost-to-be-reported.
  BOOST_CHECK_EQUAL(
      b.records.size() + b.lost + rest.records.size() + buf.lost(), 210u);
  buf.confirm(rest);
  BOOST_CHECK_EQUAL(buf.count(), 0u);
  BOOST_CHECK_EQUAL(buf.lost(), 0u);
  BOOST_CHECK_EQUAL(buf.bytes(), 0u);
}

BOOST_AUTO_TEST_CASE(the_body_is_gloggers_json) {
  rt::log_buffer buf;
  double t = now_ms();
  buf.append(4, t, "perf", "restarting perf: \"rss\" 600 MB\nover limit", 42);
  buf.append(3, t + 1, "agent", "bad \xff byte </script>", 43);
  auto b = buf.take();
  b.lost = 7;
  rt::log_metadata meta{"run-1", "0.9.0", "svc", "host-a"};
  auto json = rt::batch_json(b, meta, std::string(32, 'a'));
  BOOST_CHECK(format::is_valid_utf8(json));
  rapidjson::Document doc;
  doc.Parse(json.c_str());
  BOOST_REQUIRE_MESSAGE(!doc.HasParseError() && doc.IsObject(), json);
  BOOST_CHECK_EQUAL(doc["batch_id"].GetString(), std::string(32, 'a'));
  BOOST_CHECK_EQUAL(doc["lost_logs_count"].GetUint64(), 7u);
  auto& m = doc["metadata"];
  BOOST_CHECK_EQUAL(m["run_id"].GetString(), std::string{"run-1"});
  BOOST_CHECK_EQUAL(m["gprofiler_version"].GetString(), std::string{"0.9.0"});
  BOOST_CHECK_EQUAL(m["service_name"].GetString(), std::string{"svc"});
  BOOST_CHECK_EQUAL(m["hostname"].GetString(), std::string{"host-a"});
  auto& logs = doc["logs"];
  BOOST_REQUIRE_EQUAL(logs.Size(), 2u);
  BOOST_CHECK_EQUAL(logs[0]["severity"].GetInt(), 4);
  BOOST_CHECK_CLOSE(logs[0]["timestamp"].GetDouble(), t, 1e-9);
  auto& text = logs[0]["text"];
  BOOST_CHECK_EQUAL(text["logger_name"].GetString(),
                    std::string{"gprofiler.perf"});
  BOOST_CHECK_EQUAL(text["serial_no"].GetUint64(), 0u);
  BOOST_CHECK_EQUAL(text["message"].GetString(),
                    std::string{"restarting perf: \"rss\" 600 MB\nover limit"});
  BOOST_CHECK_EQUAL(text["truncated"].GetBool(), false);
  BOOST_CHECK_EQUAL(text["thread"].GetUint64(), 42u);
  BOOST_CHECK_EQUAL(logs[1]["text"]["message"].GetString(),
                    std::string{"bad \xef\xbf\xbd byte </script>"});
  BOOST_CHECK_EQUAL(logs[1]["text"]["serial_no"].GetUint64(), 1u);
  // No hostname: left out, as gProfiler does.
  meta.hostname.clear();
  doc.Parse(rt::batch_json(b, meta, "x").c_str());
  BOOST_CHECK(!doc["metadata"].HasMember("hostname"));
}

BOOST_AUTO_TEST_CASE(the_url_is_scheme_and_authority_plus_the_endpoint) {
  BOOST_CHECK_EQUAL(rt::logs_url("https://api.granulate.io"),
                    "https://api.granulate.io/api/v1/logs");
  BOOST_CHECK_EQUAL(rt::logs_url("HTTP://127.0.0.1:8080/some/prefix"),
                    "http://127.0.0.1:8080/api/v1/logs");
  BOOST_CHECK_EQUAL(rt::logs_url("https://[::1]:443/"),
                    "https://[::1]:443/api/v1/logs");
  for (auto bad : {"", "api.granulate.io", "ftp://h", "http://"})
    BOOST_CHECK_MESSAGE(rt::logs_url(bad).empty(), bad);
  auto id = rt::random_run_id();
  BOOST_CHECK_EQUAL(id.size(), 36u);
  BOOST_CHECK_EQUAL(id[14], '4');
  BOOST_CHECK_NE(id, rt::random_run_id());
}

BOOST_AUTO_TEST_SUITE_END()

// -- the shipper against the stand-in server ----------------------------------

namespace {

const std::string token = "log-Token-0123456789";
const std::string service = "log-svc";

/// One log entry as the server decoded it.
struct shipped {
  int severity = 0;
  double timestamp = 0;
  std::string logger;
  std::string message;
  uint64_t serial = 0;
};

/// One POST to /api/v1/logs as the server recorded it.
struct post {
  int status = 0;
  std::vector<std::string> errors;
  std::map<std::string, std::string> headers;
  std::string batch_id;
  std::map<std::string, std::string> metadata;
  uint64_t lost = 0;
  std::vector<shipped> logs;
};

std::vector<post> log_posts(test::test_server& server) {
  auto doc = server.requests();
  std::vector<post> out;
  for (auto& rec : doc->GetArray()) {
    if (std::string{rec["path"].GetString()} != "/api/v1/logs")
      continue;
    post p;
    p.status = rec["status"].GetInt();
    for (auto& e : rec["errors"].GetArray())
      p.errors.emplace_back(e.GetString());
    for (auto& h : rec["headers"].GetObject())
      p.headers[h.name.GetString()] = h.value.GetString();
    if (rec.HasMember("logs_batch")) {
      auto& b = rec["logs_batch"];
      p.batch_id = b["batch_id"].GetString();
      p.lost = b["lost_logs_count"].GetUint64();
      for (auto& m : b["metadata"].GetObject())
        p.metadata[m.name.GetString()] = m.value.GetString();
      for (auto& e : b["logs"].GetArray()) {
        shipped s;
        s.severity = e["severity"].GetInt();
        s.timestamp = e["timestamp"].GetDouble();
        s.logger = e["text"]["logger_name"].GetString();
        s.message = e["text"]["message"].GetString();
        s.serial = e["text"]["serial_no"].GetUint64();
        p.logs.push_back(std::move(s));
      }
    }
    out.push_back(std::move(p));
  }
  return out;
}

/// The entries the server took (answered 2xx).
std::vector<shipped> accepted(const std::vector<post>& posts) {
  std::vector<shipped> out;
  for (auto& p : posts)
    if (p.status >= 200 && p.status < 300)
      out.insert(out.end(), p.logs.begin(), p.logs.end());
  return out;
}

/// What the shipper reported about itself.
struct reports {
  std::mutex mtx;
  std::vector<std::pair<spdlog::level::level_enum, std::string>> lines;
  size_t size() {
    std::lock_guard<std::mutex> g{mtx};
    return lines.size();
  }
  std::string all() {
    std::lock_guard<std::mutex> g{mtx};
    std::string out;
    for (auto& l : lines)
      out += l.second + "\n";
    return out;
  }
};

/// Fast cadence for tests: a batch every 200 ms (100 ms when full).
rt::log_shipper_options quick(const std::string& url,
                              std::shared_ptr<reports> rep) {
  rt::log_shipper_options o;
  o.api_server = url;
  o.token = token;
  o.metadata = {"run-42", "9.9.9", service, "test-host"};
  o.send_interval = 200ms;
  o.min_send_interval = 100ms;
  o.send_retry_pause = 50ms;
  o.report = [rep](spdlog::level::level_enum level, const std::string& text) {
    std::lock_guard<std::mutex> g{rep->mtx};
    rep->lines.emplace_back(level, text);
  };
  return o;
}

std::shared_ptr<spdlog::logger> logger_of(const rt::log_shipper& s,
                                          const std::string& name = "agent") {
  auto lg = std::make_shared<spdlog::logger>(name, s.sink());
  lg->set_level(spdlog::level::trace);
  return lg;
}

/// A server that takes connections and never answers (a hung API server).
class black_hole {
public:
  black_hole() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr)
                  == 0);
    BOOST_REQUIRE(::listen(fd_, 16) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 50) > 0) {
          int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
          if (c >= 0) {
            std::lock_guard<std::mutex> g{mtx_};
            conns_.push_back(c);
            ++accepted_;
          }
        }
      }
    });
  }
  ~black_hole() {
    stop_ = true;
    thread_.join();
    for (int c : conns_)
      ::close(c);
    ::close(fd_);
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port_);
  }
  int accepted() const {
    return accepted_.load();
  }

private:
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::mutex mtx_;
  std::vector<int> conns_;
  std::thread thread_;
};

} // namespace

BOOST_AUTO_TEST_SUITE(log_shipper_real)

BOOST_AUTO_TEST_CASE(lines_arrive_with_gloggers_headers_and_fields) {
  test::test_server server{token, service};
  auto rep = std::make_shared<reports>();
  rt::log_shipper shipper{quick(server.url(), rep)};
  auto lg = logger_of(shipper);
  double before = now_ms();
  lg->trace("a trace line");
  lg->debug("a debug line");
  lg->info("hello \xe2\x9c\x93 \"quoted\"\nsecond line");
  lg->warn("a warning");
  lg->error("an error");
  lg->critical("critical {}", 1);
  logger_of(shipper, "perf")->info("bad \xff byte");
  double after = now_ms();
  std::vector<shipped> got;
  BOOST_REQUIRE(test::wait_until(
      [&] {
        got = accepted(log_posts(server));
        return got.size() >= 7;
      },
      10s));
  auto posts = log_posts(server);
  for (auto& p : posts) {
    BOOST_CHECK_MESSAGE(p.errors.empty(),
                        (p.errors.empty() ? "" : p.errors.front()));
    BOOST_CHECK_EQUAL(p.status, 200);
    BOOST_CHECK_EQUAL(p.headers["content-encoding"], "gzip");
    BOOST_CHECK_EQUAL(p.headers["content-type"], "application/json");
    BOOST_CHECK_EQUAL(p.headers["x-application-name"], "gprofiler");
    BOOST_CHECK_EQUAL(p.headers["x-token"], token);
    BOOST_CHECK_EQUAL(p.batch_id.size(), 32u);
    BOOST_CHECK_EQUAL(p.metadata["run_id"], "run-42");
    BOOST_CHECK_EQUAL(p.metadata["gprofiler_version"], "9.9.9");
    BOOST_CHECK_EQUAL(p.metadata["service_name"], service);
    BOOST_CHECK_EQUAL(p.metadata["hostname"], "test-host");
    BOOST_CHECK_EQUAL(p.lost, 0u);
  }
  BOOST_REQUIRE_EQUAL(got.size(), 7u);
  std::vector<int> severities;
  for (size_t i = 0; i < got.size(); ++i) {
    severities.push_back(got[i].severity);
    BOOST_CHECK_EQUAL(got[i].serial, i);
    BOOST_CHECK_GE(got[i].timestamp, before - 1);
    BOOST_CHECK_LE(got[i].timestamp, after + 1);
  }
  BOOST_CHECK((severities == std::vector<int>{1, 2, 3, 4, 5, 6, 3}));
  BOOST_CHECK_EQUAL(got[0].logger, "gprofiler.agent");
  BOOST_CHECK_EQUAL(got[6].logger, "gprofiler.perf");
  BOOST_CHECK_EQUAL(got[2].message,
                    "hello \xe2\x9c\x93 \"quoted\"\nsecond line");
  BOOST_CHECK_EQUAL(got[5].message, "critical 1");
  BOOST_CHECK_EQUAL(got[6].message, "bad \xef\xbf\xbd byte");
  BOOST_CHECK_EQUAL(rep->size(), 0u);
  BOOST_CHECK_EQUAL(shipper.buffer().count(), 0u);
}

BOOST_AUTO_TEST_CASE(
    an_outage_keeps_the_lines_and_counts_those_that_did_not_fit) {
  test::test_server server{token, service};
  auto rep = std::make_shared<reports>();
  auto opts = quick(server.url(), rep);
  opts.limits.max_total = 64 * 1024;
  rt::log_shipper shipper{opts};
  auto lg = logger_of(shipper);
  server.down();
  const int lines = 2000;
  for (int i = 0; i < lines; ++i)
    lg->info("line {} {}", i, std::string(200, '.'));
  // Sends fail (connection refused), each batch 3 tries; said once.
  BOOST_REQUIRE(test::wait_until(
      [&] {
        return shipper.sends_failed() >= 3;
      },
      20s));
  BOOST_CHECK_EQUAL(rep->size(), 1u);
  BOOST_CHECK(contains(rep->all(), "cannot send logs to the API server"));
  BOOST_CHECK_LT(shipper.buffer().bytes(), opts.limits.max_total);
  BOOST_CHECK_EQUAL(shipper.buffer().count() + shipper.buffer().lost(),
                    size_t(lines));
  BOOST_CHECK_GT(shipper.buffer().lost(), 0u);
  server.up();
  std::vector<post> posts;
  BOOST_REQUIRE(test::wait_until(
      [&] {
        posts = log_posts(server);
        return !accepted(posts).empty();
      },
      20s));
  auto got = accepted(posts);
  uint64_t lost = 0;
  for (auto& p : posts) {
    BOOST_CHECK(p.errors.empty());
    lost += p.lost;
  }
  // Everything is accounted for: the newest lines arrived, in order, and
  // the server was told how many older ones were lost.
  BOOST_CHECK_EQUAL(got.size() + lost, size_t(lines));
  BOOST_CHECK_GT(lost, 0u);
  BOOST_CHECK_EQUAL(got.back().serial, uint64_t(lines - 1));
  for (size_t i = 1; i < got.size(); ++i)
    BOOST_CHECK_EQUAL(got[i].serial, got[i - 1].serial + 1);
  BOOST_CHECK(contains(got.back().message, "line 1999 "));
  BOOST_REQUIRE(test::wait_until(
      [&] {
        return rep->size() == 2;
      },
      5s));
  BOOST_CHECK(contains(rep->all(), "works again"));
  BOOST_CHECK_EQUAL(shipper.buffer().count(), 0u);
  BOOST_CHECK_EQUAL(shipper.buffer().lost(), 0u);
}

BOOST_AUTO_TEST_CASE(logging_never_waits_for_a_server_that_does_not_answer) {
  black_hole hole;
  auto rep = std::make_shared<reports>();
  auto opts = quick(hole.url(), rep);
  opts.request_timeout = 20s; // the sender stays stuck for the whole test
  rt::log_shipper shipper{opts};
  auto lg = logger_of(shipper);
  lg->info("first");
  // The sender connected and waits for an answer that never comes.
  BOOST_REQUIRE(test::wait_until(
      [&] {
        return hole.accepted() >= 1;
      },
      10s));
  std::this_thread::sleep_for(100ms);
  // 10,000 calls while the sender is blocked in its request: each returns
  // at once (a call that waited for the network would take the connect
  // timeout, 1.5 s, or the request's 20 s). The bound is generous so that
  // a slow machine does not fail it.
  const std::string pad(300, '-');
  steady::duration slowest{};
  auto start = steady::now();
  for (int i = 0; i < 10000; ++i) {
    auto t0 = steady::now();
    lg->warn("line {} {}", i, pad);
    slowest = std::max(slowest, steady::now() - t0);
  }
  auto total = steady::now() - start;
  BOOST_TEST_MESSAGE("10000 log calls: " << ms_of(total) << " ms, the slowest "
                                         << ms_of(slowest) << " ms");
  BOOST_CHECK_LT(ms_of(slowest), 1000);
  BOOST_CHECK_LT(ms_of(total), 5000);
  BOOST_CHECK_EQUAL(shipper.sends_failed(), 0u); // it really was stuck
  // Stopping cuts the request in flight: bounded, well below 20 s.
  auto t0 = steady::now();
  shipper.stop(500ms);
  BOOST_CHECK_LT(ms_of(steady::now() - t0), 3000);
}

BOOST_AUTO_TEST_CASE(a_batch_stays_until_the_server_takes_it) {
  test::test_server server{token, service};
  server.logs_status(500);
  auto rep = std::make_shared<reports>();
  rt::log_shipper shipper{quick(server.url(), rep)};
  auto lg = logger_of(shipper);
  for (int i = 0; i < 3; ++i)
    lg->error("failure {}", i);
  std::vector<post> posts;
  BOOST_REQUIRE(test::wait_until(
      [&] {
        posts = log_posts(server);
        return posts.size() >= 3;
      },
      10s));
  // Three tries of the same batch, then it waits for the next send.
  BOOST_CHECK_EQUAL(posts[0].batch_id, posts[1].batch_id);
  BOOST_CHECK_EQUAL(posts[1].batch_id, posts[2].batch_id);
  for (auto& p : posts)
    BOOST_CHECK_EQUAL(p.status, 500);
  BOOST_CHECK_EQUAL(shipper.buffer().count(), 3u);
  BOOST_REQUIRE(test::wait_until(
      [&] {
        return rep->size() >= 1;
      },
      5s));
  BOOST_CHECK(contains(rep->all(), "HTTP 500"));
  server.logs_status(200);
  BOOST_REQUIRE(test::wait_until(
      [&] {
        posts = log_posts(server);
        return !accepted(posts).empty();
      },
      10s));
  std::this_thread::sleep_for(500ms); // nothing more is sent
  auto got = accepted(log_posts(server));
  BOOST_REQUIRE_EQUAL(got.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    BOOST_CHECK_EQUAL(got[i].serial, i);
    BOOST_CHECK_EQUAL(got[i].message, "failure " + std::to_string(i));
    BOOST_CHECK_EQUAL(got[i].severity, 5);
  }
  BOOST_CHECK_EQUAL(shipper.buffer().count(), 0u);
}

BOOST_AUTO_TEST_CASE(stop_sends_what_is_left_within_its_deadline) {
  test::test_server server{token, service};
  auto rep = std::make_shared<reports>();
  auto opts = quick(server.url(), rep);
  opts.send_interval = 1h; // only stop() sends
  opts.min_send_interval = 1h;
  rt::log_shipper shipper{opts};
  auto lg = logger_of(shipper);
  for (int i = 0; i < 5; ++i)
    lg->info("last words {}", i);
  BOOST_CHECK(log_posts(server).empty());
  auto t0 = steady::now();
  shipper.stop(2s);
  BOOST_CHECK_LT(ms_of(steady::now() - t0), 2000);
  auto got = accepted(log_posts(server));
  BOOST_REQUIRE_EQUAL(got.size(), 5u);
  BOOST_CHECK_EQUAL(got[4].message, "last words 4");
  shipper.stop(); // again: nothing

  // With the server down, stop() gives up within its deadline.
  server.down();
  rt::log_shipper second{opts};
  logger_of(second)->info("never arrives");
  t0 = steady::now();
  second.stop(1s);
  BOOST_CHECK_LT(ms_of(steady::now() - t0), 2500);
  BOOST_CHECK_EQUAL(second.buffer().count(), 1u);
}

BOOST_AUTO_TEST_CASE(the_token_is_in_no_line) {
  test::test_server server{token, service};
  auto rep = std::make_shared<reports>();
  // A wrong token: the server refuses it and echoes it in its answer.
  auto opts = quick(server.url(), rep);
  opts.token = "Wrong-" + token;
  rt::log_shipper shipper{opts};
  logger_of(shipper)->info("hello");
  BOOST_REQUIRE(test::wait_until(
      [&] {
        return rep->size() >= 1;
      },
      10s));
  auto posts = log_posts(server);
  BOOST_REQUIRE(!posts.empty());
  BOOST_CHECK_EQUAL(posts[0].status, 400);
  BOOST_CHECK(contains(rep->all(), "HTTP 400"));
  BOOST_CHECK(contains(rep->all(), "***"));
  BOOST_CHECK_MESSAGE(!contains(rep->all(), token), rep->all());
  // A server that cannot be reached: the error names the URL, not the
  // password in it.
  auto rep2 = std::make_shared<reports>();
  server.down();
  auto opts2 = quick(server.url(), rep2);
  opts2.api_server = "http://user:Secret-pw-1@127.0.0.1:"
                     + server.url().substr(server.url().rfind(':') + 1);
  rt::log_shipper second{opts2};
  logger_of(second)->info("hello");
  BOOST_REQUIRE(test::wait_until(
      [&] {
        return rep2->size() >= 1;
      },
      10s));
  BOOST_CHECK(!contains(rep2->all(), "Secret-pw-1"));
  BOOST_CHECK(!contains(rep2->all(), token));
  BOOST_CHECK(contains(rep2->all(), "cannot connect"));
}

BOOST_AUTO_TEST_SUITE_END()

// The real /proc reader and the real metrics endpoint: the test's own RSS,
// descriptors and threads; a real child process tree in the tree sum; the
// endpoint on 127.0.0.1 answering and passing `promtool check metrics`.

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <arpa/inet.h>
#include <csignal>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/memory_monitor.hpp"
#include "messages/registry.hpp"
#include "runtime/error.hpp"
#include "runtime/log.hpp"
#include "runtime/metric_names.hpp"
#include "runtime/metrics_server.hpp"
#include "runtime/proc.hpp"
#include "test/support/proc_counts.hpp"

extern char** environ;

using namespace std::chrono_literals;
using namespace gpa;

namespace {

/// Reads a whole (small) file.
std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Resident KiB of `pid` from the VmRSS line of /proc/<pid>/status (another
/// file than the reader uses), or 0 if gone.
uint64_t status_rss_kb(int pid) {
  std::istringstream in(slurp("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0)
      return std::strtoull(line.c_str() + 6, nullptr, 10);
  return 0;
}

/// The "Threads:" line of /proc/self/status.
int64_t status_threads() {
  std::istringstream in(slurp("/proc/self/status"));
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("Threads:", 0) == 0)
      return std::atoll(line.c_str() + 8);
  return -1;
}

/// Every descendant of `pid`, from the kernel's own lists of children
/// (/proc/<pid>/task/<tid>/children): an independent way to find the tree.
void kernel_descendants(int pid, std::set<int>& out) {
  auto dir = std::string{"/proc/"} + std::to_string(pid) + "/task";
  std::vector<int> tids;
  if (auto d = ::opendir(dir.c_str())) {
    while (auto e = ::readdir(d))
      if (e->d_name[0] != '.')
        tids.push_back(std::atoi(e->d_name));
    ::closedir(d);
  }
  for (auto tid : tids) {
    std::istringstream in(slurp(dir + "/" + std::to_string(tid) + "/children"));
    int child = 0;
    while (in >> child)
      if (out.insert(child).second)
        kernel_descendants(child, out);
  }
}

/// A shell with two sleeping children in its own process group; killed with
/// its whole group when the guard goes.
struct shell_tree {
  pid_t pid = -1;

  shell_tree() {
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    const char* argv[] = {"sh", "-c", "sleep 30 & sleep 30", nullptr};
    auto rc = ::posix_spawnp(&pid, "sh", nullptr, &attr,
                             const_cast<char* const*>(argv), environ);
    posix_spawnattr_destroy(&attr);
    BOOST_REQUIRE_EQUAL(rc, 0);
  }

  ~shell_tree() {
    stop();
  }

  void stop() {
    if (pid <= 0)
      return;
    ::kill(-pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    pid = -1;
  }
};

/// Sends `request` to 127.0.0.1:`port` and returns everything the server
/// sent until it closed the connection (5 s at most).
std::string http(uint16_t port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  BOOST_REQUIRE(fd >= 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BOOST_REQUIRE_EQUAL(
      ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  size_t sent = 0;
  while (sent < request.size()) {
    auto n = ::send(fd, request.data() + sent, request.size() - sent,
                    MSG_NOSIGNAL);
    if (n <= 0)
      break;
    sent += static_cast<size_t>(n);
  }
  std::string out;
  char buf[4096];
  for (;;) {
    auto n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0)
      break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

/// Splits a response into its head and body.
std::pair<std::string, std::string> split_response(const std::string& r) {
  auto end = r.find("\r\n\r\n");
  if (end == std::string::npos)
    return {r, {}};
  return {r.substr(0, end), r.substr(end + 4)};
}

/// Runs `promtool check metrics` on `text`; returns its exit status and
/// fills `output` with what it printed.
int promtool_check(const std::string& text, std::string& output) {
  char in_path[] = "/tmp/gpa-metrics-XXXXXX";
  int fd = ::mkstemp(in_path);
  BOOST_REQUIRE(fd >= 0);
  BOOST_REQUIRE_EQUAL(::write(fd, text.data(), text.size()),
                      static_cast<ssize_t>(text.size()));
  ::close(fd);
  auto out_path = std::string{in_path} + ".out";
  auto cmd = std::string{"promtool check metrics < "} + in_path + " > "
             + out_path + " 2>&1";
  int status = std::system(cmd.c_str());
  output = slurp(out_path);
  ::unlink(in_path);
  ::unlink(out_path.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

bool have_promtool() {
  return std::system("command -v promtool > /dev/null 2>&1") == 0;
}

struct quiet {
  quiet() {
    log::silence();
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(monitor_real)

BOOST_AUTO_TEST_CASE(process_exists_and_rss_of_a_child_named_with_a_newline) {
  auto self = static_cast<int32_t>(::getpid());
  BOOST_CHECK(rt::process_exists(self));
  BOOST_CHECK_LT(std::llabs(rt::process_rss_kb(self)
                            - static_cast<long long>(status_rss_kb(self))),
                 2048);
  int ready[2];
  BOOST_REQUIRE_EQUAL(::pipe2(ready, O_CLOEXEC), 0);
  auto pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    // A comm that a line-based reader of /proc/<pid>/stat gets wrong.
    ::prctl(PR_SET_NAME, "a\nb) Z c", 0, 0, 0);
    char x = 1;
    [[maybe_unused]] auto n = ::write(ready[1], &x, 1);
    ::pause();
    ::_exit(0);
  }
  char x = 0;
  BOOST_REQUIRE_EQUAL(::read(ready[0], &x, 1), 1);
  ::close(ready[0]);
  ::close(ready[1]);
  BOOST_CHECK(rt::process_exists(pid));
  BOOST_CHECK_GT(rt::process_rss_kb(pid), 0);
  ::kill(pid, SIGKILL);
  // Killed but not reaped: a zombie does not count.
  for (int i = 0; i < 200 && rt::process_exists(pid); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  BOOST_CHECK(!rt::process_exists(pid));
  int status = 0;
  BOOST_REQUIRE_EQUAL(::waitpid(pid, &status, 0), pid);
  BOOST_CHECK(!rt::process_exists(pid));
  BOOST_CHECK_EQUAL(rt::process_rss_kb(pid), 0);
  BOOST_CHECK(!rt::process_exists(0));
  BOOST_CHECK(!rt::process_exists(int64_t{1} << 40));
}

BOOST_FIXTURE_TEST_CASE(reader_finds_own_rss_fds_and_threads, quiet) {
  auto src = rt::make_proc_source();
  auto self = static_cast<int32_t>(::getpid());
  BOOST_CHECK_EQUAL(src->self_pid(), self);
  // RSS: agrees with VmRSS, and grows when we touch 32 MB.
  auto before = rt::scan_tree(*src, self);
  BOOST_REQUIRE(before.found);
  auto vmrss = status_rss_kb(self);
  BOOST_CHECK_LT(std::llabs(static_cast<long long>(before.root_rss_kb)
                            - static_cast<long long>(vmrss)),
                 2048);
  {
    std::vector<char> block(32 << 20);
    for (size_t i = 0; i < block.size(); i += 4096)
      block[i] = static_cast<char>(i);
    auto during = rt::scan_tree(*src, self);
    BOOST_CHECK_GE(during.root_rss_kb, before.root_rss_kb + (30 << 10));
    BOOST_CHECK_EQUAL(static_cast<int>(block[4096]), 0); // keep it alive
  }
  // Descriptors: exactly five more, then back.
  auto fds0 = src->count_fds(self);
  BOOST_CHECK_EQUAL(fds0, gpa::test::count_fds());
  int p1[2];
  int p2[2];
  BOOST_REQUIRE_EQUAL(::pipe2(p1, O_CLOEXEC), 0);
  BOOST_REQUIRE_EQUAL(::pipe2(p2, O_CLOEXEC), 0);
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  BOOST_CHECK_EQUAL(src->count_fds(self), fds0 + 5);
  for (int fd : {p1[0], p1[1], p2[0], p2[1], null_fd})
    ::close(fd);
  BOOST_CHECK_EQUAL(src->count_fds(self), fds0);
  // Threads: three more while they wait, then back.
  auto threads0 = rt::scan_tree(*src, self).root_threads;
  BOOST_CHECK_EQUAL(threads0, status_threads());
  std::mutex mtx;
  std::condition_variable cv;
  bool go = false;
  std::vector<std::thread> ts;
  for (int i = 0; i < 3; ++i)
    ts.emplace_back([&] {
      std::unique_lock<std::mutex> guard{mtx};
      cv.wait(guard, [&] {
        return go;
      });
    });
  BOOST_CHECK_EQUAL(rt::scan_tree(*src, self).root_threads, threads0 + 3);
  {
    std::lock_guard<std::mutex> guard{mtx};
    go = true;
  }
  cv.notify_all();
  for (auto& t : ts)
    t.join();
  BOOST_CHECK_EQUAL(rt::scan_tree(*src, self).root_threads, threads0);
}

BOOST_FIXTURE_TEST_CASE(tree_sum_includes_a_real_child_tree, quiet) {
  auto src = rt::make_proc_source();
  auto self = static_cast<int32_t>(::getpid());
  auto base = rt::scan_tree(*src, self);
  BOOST_REQUIRE_EQUAL(base.descendants, 0u);
  shell_tree sh;
  // Wait until the shell has started both sleeps (it may exec the last one
  // in its own process: then the tree is the shell's PID plus one child).
  std::set<int> kernel;
  rt::tree_usage t;
  for (int i = 0; i < 500; ++i) {
    t = rt::scan_tree(*src, self, 100);
    kernel.clear();
    kernel_descendants(self, kernel);
    int sleeps = 0;
    for (auto& p : t.largest)
      sleeps += p.comm == "sleep" ? 1 : 0;
    if (sleeps >= 2 && kernel.size() == static_cast<size_t>(t.descendants))
      break;
    std::this_thread::sleep_for(10ms);
  }
  BOOST_REQUIRE_GE(t.descendants, 2u);
  BOOST_CHECK_EQUAL(t.children, 1u);
  // The same processes as the kernel's own children lists.
  std::set<int> found;
  for (auto& p : t.largest)
    found.insert(p.pid);
  BOOST_CHECK(found == kernel);
  BOOST_CHECK(found.count(sh.pid) == 1);
  bool has_grandchild = false;
  for (auto& p : t.largest)
    has_grandchild = has_grandchild || p.ppid == sh.pid;
  BOOST_CHECK(has_grandchild);
  // The tree sum is ours plus theirs (theirs from VmRSS, another file). A
  // sleep that has just been exec'd still faults pages in, so compare once
  // their RSS has settled.
  uint64_t theirs = 0;
  uint64_t children_kb = 0;
  for (int i = 0; i < 100; ++i) {
    t = rt::scan_tree(*src, self, 100);
    theirs = 0;
    for (auto pid : kernel)
      theirs += status_rss_kb(pid);
    children_kb = t.tree_rss_kb - t.root_rss_kb;
    if (children_kb == theirs)
      break;
    std::this_thread::sleep_for(20ms);
  }
  BOOST_CHECK_GT(theirs, 0u);
  BOOST_CHECK_EQUAL(children_kb, theirs);
  // Killed and reaped: the tree is just us again.
  sh.stop();
  for (int i = 0; i < 300; ++i) {
    t = rt::scan_tree(*src, self);
    if (t.descendants == 0)
      break;
    std::this_thread::sleep_for(10ms);
  }
  BOOST_CHECK_EQUAL(t.descendants, 0u);
  BOOST_CHECK_EQUAL(gpa::test::count_children(), 0);
}

BOOST_FIXTURE_TEST_CASE(host_cpu_and_memory_are_plausible, quiet) {
  auto src = rt::make_proc_source();
  rt::cpu_times a;
  rt::cpu_times b;
  BOOST_REQUIRE(src->read_cpu(a));
  // Burn 200 ms of CPU so the busy share cannot be zero.
  auto until = std::chrono::steady_clock::now() + 200ms;
  volatile uint64_t x = 0;
  while (std::chrono::steady_clock::now() < until)
    x = x + 1;
  BOOST_REQUIRE(src->read_cpu(b));
  auto busy = rt::cpu_busy_percent(a, b);
  BOOST_CHECK_GT(busy, 0.0);
  BOOST_CHECK_LE(busy, 100.0);
  rt::mem_info m;
  BOOST_REQUIRE(src->read_mem(m));
  auto phys_kb = static_cast<uint64_t>(::sysconf(_SC_PHYS_PAGES))
                 * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)) / 1024;
  BOOST_CHECK_LE(std::llabs(static_cast<long long>(m.total_kb)
                            - static_cast<long long>(phys_kb)),
                 static_cast<long long>(phys_kb / 100));
  BOOST_CHECK_GT(m.used_percent(), 0.0);
  BOOST_CHECK_LT(m.used_percent(), 100.0);
}

BOOST_FIXTURE_TEST_CASE(monitor_actor_samples_the_real_process, quiet) {
  caf::actor_system_config cfg;
  add_message_types(cfg);
  caf::actor_system sys{cfg};
  auto reg = std::make_shared<rt::metrics>();
  auto mon = caf::actor_cast<memory_monitor_actor>(sys.spawn(
      memory_monitor, std::shared_ptr<rt::proc_source>{rt::make_proc_source()},
      reg, monitor_config{}));
  caf::scoped_actor self{sys};
  resource_sample s;
  self->request(mon, 5s, sample_atom_v)
      .receive(
          [&](resource_sample& x) {
            s = x;
          },
          [&](caf::error& err) {
            BOOST_FAIL(describe(err));
          });
  BOOST_CHECK_EQUAL(s.pid, ::getpid());
  BOOST_CHECK_GT(s.agent_rss_kb, 1000u);
  BOOST_CHECK_EQUAL(s.tree_rss_kb, s.agent_rss_kb); // no children
  BOOST_CHECK_GT(s.fds, 2);
  BOOST_CHECK_GE(s.threads, 2); // this thread and CAF's
  BOOST_CHECK_GE(s.host_mem_percent, 0.0);
  BOOST_CHECK_EQUAL(reg->value(rt::metric::agent_rss.name),
                    static_cast<double>(s.agent_rss_kb) * 1024);
  window_stats w;
  self->request(mon, 5s, window_atom_v)
      .receive(
          [&](window_stats& x) {
            w = x;
          },
          [&](caf::error& err) {
            BOOST_FAIL(describe(err));
          });
  BOOST_CHECK_GE(w.samples, 1u);
  BOOST_CHECK_GE(w.cpu_avg, 0.0);
  BOOST_CHECK_LE(w.cpu_avg, 100.0);
  BOOST_CHECK_GT(w.mem_avg, 0.0);
  self->send_exit(mon, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(metrics_server_real)

BOOST_FIXTURE_TEST_CASE(get_metrics_answers_and_passes_promtool, quiet) {
  auto reg = std::make_shared<rt::metrics>();
  rt::metric::declare_all(*reg);
  // Real figures of this process, as the monitor would set them.
  auto src = rt::make_proc_source();
  auto t = rt::scan_tree(*src, src->self_pid());
  rt::metric::set(*reg, rt::metric::agent_rss,
                  static_cast<double>(t.root_rss_kb) * 1024);
  rt::metric::set(*reg, rt::metric::threads,
                  static_cast<double>(t.root_threads));
  rt::metric::count_snapshot(*reg, "perf", rt::metric::snapshot_result::done);
  rt::metric::set_last_snapshot_duration(*reg, 1234ms);
  rt::metrics_server server{"127.0.0.1:0", reg};
  BOOST_REQUIRE_GT(server.port(), 0);
  auto r = http(server.port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  auto [head, body] = split_response(r);
  BOOST_CHECK_EQUAL(head.substr(0, head.find("\r\n")), "HTTP/1.1 200 OK");
  BOOST_CHECK(head.find("\r\nContent-Type: text/plain; version=0.0.4")
              != std::string::npos);
  BOOST_CHECK(
      head.find("\r\nContent-Length: " + std::to_string(body.size()) + "\r\n")
      != std::string::npos);
  BOOST_CHECK_EQUAL(body, reg->render());
  BOOST_CHECK(body.find("gpa_profiler_snapshots_total{profiler=\"perf\","
                        "result=\"done\"} 1\n")
              != std::string::npos);
  BOOST_CHECK(body.find("gpa_uploads_total{result=\"failed\"} 0\n")
              != std::string::npos);
  BOOST_CHECK(body.find("gpa_last_snapshot_duration_seconds 1.234\n")
              != std::string::npos);
  // A query string is still /metrics.
  auto q = http(server.port(), "GET /metrics?x=1 HTTP/1.0\r\n\r\n");
  BOOST_CHECK_EQUAL(q.substr(0, 15), "HTTP/1.1 200 OK");
  // promtool accepts it, and rejects a broken text (so the check can fail).
  BOOST_REQUIRE_MESSAGE(have_promtool(),
                        "promtool not found: install the Debian package "
                        "'prometheus' (scripts/test.sh does)");
  std::string out;
  BOOST_CHECK_MESSAGE(promtool_check(body, out) == 0, out);
  BOOST_CHECK_NE(promtool_check("gpa_x_total{a=\"b} 1\n", out), 0);
  BOOST_CHECK_NE(promtool_check("# TYPE gpa_bad counter\ngpa_bad 1\n", out), 0);
}

BOOST_FIXTURE_TEST_CASE(anything_else_is_404_or_400, quiet) {
  auto reg = std::make_shared<rt::metrics>();
  rt::metrics_server server{"127.0.0.1:0", reg};
  auto status = [&](const std::string& req) {
    auto r = http(server.port(), req);
    return r.substr(0, r.find("\r\n"));
  };
  BOOST_CHECK_EQUAL(status("GET / HTTP/1.1\r\n\r\n"), "HTTP/1.1 404 Not Found");
  BOOST_CHECK_EQUAL(status("GET /metricsx HTTP/1.1\r\n\r\n"),
                    "HTTP/1.1 404 Not Found");
  BOOST_CHECK_EQUAL(status("POST /metrics HTTP/1.1\r\n\r\n"),
                    "HTTP/1.1 404 Not Found");
  BOOST_CHECK_EQUAL(status("GARBAGE\r\n\r\n"), "HTTP/1.1 400 Bad Request");
  // Oversized: 16 KiB of header without an end.
  BOOST_CHECK_EQUAL(
      status("GET /metrics HTTP/1.1\r\nX: " + std::string(16 << 10, 'a')),
      "HTTP/1.1 400 Bad Request");
  BOOST_CHECK_GE(server.responses(), 5u);
}

BOOST_FIXTURE_TEST_CASE(a_silent_client_neither_blocks_nor_stays, quiet) {
  auto reg = std::make_shared<rt::metrics>();
  rt::metrics_server server{"127.0.0.1:0", reg};
  // Connects and says nothing.
  int idle = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(server.port());
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BOOST_REQUIRE_EQUAL(
      ::connect(idle, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  auto t0 = std::chrono::steady_clock::now();
  auto r = http(server.port(), "GET /metrics HTTP/1.1\r\n\r\n");
  BOOST_CHECK_EQUAL(r.substr(0, 15), "HTTP/1.1 200 OK");
  BOOST_CHECK(std::chrono::steady_clock::now() - t0 < 1s);
  // The server drops it after its connection timeout.
  timeval tv{5, 0};
  ::setsockopt(idle, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  char c;
  auto n = ::recv(idle, &c, 1, 0);
  BOOST_CHECK_EQUAL(n, 0);
  BOOST_CHECK(std::chrono::steady_clock::now() - t0 < 4s);
  ::close(idle);
}

BOOST_FIXTURE_TEST_CASE(refuses_non_loopback_and_busy_ports, quiet) {
  auto reg = std::make_shared<rt::metrics>();
  try {
    rt::metrics_server server{"0.0.0.0:0", reg};
    BOOST_FAIL("a non-loopback address was accepted");
  } catch (const std::runtime_error& ex) {
    std::string what = ex.what();
    BOOST_CHECK_NE(what.find("0.0.0.0:0"), std::string::npos);
    BOOST_CHECK_NE(what.find("not a loopback address"), std::string::npos);
  }
  rt::metrics_server first{"127.0.0.1:0", reg};
  auto addr = "127.0.0.1:" + std::to_string(first.port());
  try {
    rt::metrics_server second{addr, reg};
    BOOST_FAIL("a busy port was bound twice");
  } catch (const std::runtime_error& ex) {
    BOOST_CHECK_NE(std::string{ex.what()}.find("cannot bind"),
                   std::string::npos);
  }
}

BOOST_FIXTURE_TEST_CASE(stopping_leaves_no_descriptor_or_thread, quiet) {
  auto reg = std::make_shared<rt::metrics>();
  auto fds = gpa::test::count_fds();
  auto threads = status_threads();
  for (int i = 0; i < 20; ++i) {
    rt::metrics_server server{"127.0.0.1:0", reg};
    auto r = http(server.port(), "GET /metrics HTTP/1.1\r\n\r\n");
    BOOST_CHECK_EQUAL(r.substr(0, 15), "HTTP/1.1 200 OK");
  }
  BOOST_CHECK_EQUAL(gpa::test::count_fds(), fds);
  BOOST_CHECK_EQUAL(status_threads(), threads);
}

BOOST_AUTO_TEST_SUITE_END()

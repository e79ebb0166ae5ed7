// The native sampler's core (runtime/perf_sampler.*) against the real
// kernel, as root: system-wide and per-process sampling of a real busy
// child, its callchains, the comm and exit records of a process that
// starts and ends while sampling, and the CPU list parser.

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <map>
#include <set>
#include <thread>

#include <linux/perf_event.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/error.hpp"
#include "runtime/perf_sampler.hpp"

using namespace gpa;
using namespace std::chrono_literals;

namespace {

/// A child that burns CPU until killed, exec'd as /bin/sh so that its comm
/// record comes while sampling.
pid_t busy_child() {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", "while :; do :; done", nullptr);
    ::_exit(127);
  }
  return pid;
}

void end_child(pid_t pid) {
  if (pid <= 0)
    return;
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
}

/// Ends the child however the test ends (a failed REQUIRE included): a
/// child left running would hold the test's output open.
struct child_guard {
  pid_t pid;
  ~child_guard() {
    end_child(pid);
  }
};

/// Drains `s` for `d`, counting the samples of each pid and checking each
/// callchain.
std::map<int32_t, size_t> sample_for(rt::perf_sampler& s,
                                     std::chrono::milliseconds d,
                                     size_t& with_user_frames) {
  std::map<int32_t, size_t> per_pid;
  auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(50ms);
    s.drain([&](const rt::perf_sample_view& v) {
      ++per_pid[v.pid];
      bool user = false;
      for (size_t i = 0; i < v.chain_size; ++i)
        if (v.chain[i] == PERF_CONTEXT_USER && i + 1 < v.chain_size)
          user = true;
      with_user_frames += user;
    });
  }
  return per_pid;
}

} // namespace

BOOST_AUTO_TEST_SUITE(perf_sampler_unit)

BOOST_AUTO_TEST_CASE(cpu_lists_in_the_kernel_format) {
  auto a = rt::parse_cpu_list("0-3,8\n");
  BOOST_REQUIRE(a);
  BOOST_CHECK((*a == std::vector<int>{0, 1, 2, 3, 8}));
  auto b = rt::parse_cpu_list("5");
  BOOST_REQUIRE(b);
  BOOST_CHECK((*b == std::vector<int>{5}));
  for (auto bad : {"", "x", "3-1", "0-", "1,,2", "0-99999999"})
    BOOST_CHECK_MESSAGE(!rt::parse_cpu_list(bad), bad);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(perf_sampler_real)

BOOST_AUTO_TEST_CASE(system_wide_samples_name_a_new_process_and_its_exit) {
  rt::perf_sampler_options o;
  o.frequency = 199;
  auto s = rt::perf_sampler::open(o);
  BOOST_REQUIRE_MESSAGE(s, (s ? "" : describe(s.error())));
  auto& sampler = **s;
  BOOST_CHECK_GE(sampler.fds(), 1u);
  sampler.enable();
  auto child = busy_child();
  child_guard guard{child};
  size_t user = 0;
  auto per_pid = sample_for(sampler, 1500ms, user);
  end_child(child);
  guard.pid = 0;
  std::this_thread::sleep_for(100ms);
  size_t more_user = 0;
  sample_for(sampler, 100ms, more_user);
  sampler.disable();
  auto st = sampler.stats();
  BOOST_TEST_MESSAGE("samples " << st.samples << ", child " << per_pid[child]
                                << ", lost " << st.lost << ", comm " << st.comm
                                << ", exit " << st.exit);
  // A busy process on one CPU for 1.5 s at 199 Hz: about 300 samples if it
  // has a CPU to itself; at least a fifth of that on a loaded machine.
  BOOST_CHECK_GE(per_pid[child], 60u);
  BOOST_CHECK_LE(per_pid[child], 400u);
  BOOST_CHECK_GT(user, per_pid[child] / 2);
  BOOST_CHECK_EQUAL(st.lost, 0u);
  BOOST_CHECK_EQUAL(st.malformed, 0u);
  // Its exec named it, and its end was seen.
  BOOST_REQUIRE(sampler.comms().count(child) == 1);
  BOOST_CHECK_EQUAL(sampler.comms().at(child), "sh");
  auto& gone = sampler.exited();
  BOOST_CHECK(std::find(gone.begin(), gone.end(), child) != gone.end());
}

BOOST_AUTO_TEST_CASE(per_process_sampling_sees_that_process_only) {
  auto child = busy_child();
  child_guard guard{child};
  rt::perf_sampler_options o;
  o.frequency = 99;
  o.pids = {child};
  auto s = rt::perf_sampler::open(o);
  BOOST_REQUIRE_MESSAGE(s, (s ? "" : describe(s.error())));
  (*s)->enable();
  size_t user = 0;
  auto per_pid = sample_for(**s, 1000ms, user);
  BOOST_CHECK_GE((*s)->fds(), 1u);
  BOOST_CHECK_GE(per_pid[child], 20u);
  BOOST_CHECK_EQUAL(per_pid.size(), 1u);
}

BOOST_AUTO_TEST_CASE(a_process_that_does_not_exist_is_a_clear_error) {
  rt::perf_sampler_options o;
  o.pids = {0x7ffffff0};
  auto s = rt::perf_sampler::open(o);
  BOOST_REQUIRE(!s);
  auto text = describe(s.error());
  BOOST_CHECK_NE(text.find("process 2147483632"), std::string::npos);
  BOOST_CHECK_NE(text.find("No such process"), std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

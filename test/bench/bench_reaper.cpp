// Benchmark of the process reaper with the real launcher: spawn-and-reap
// throughput (children that exit at once), timeout-and-kill throughput
// (children that ignore SIGTERM and need SIGKILL), and the agent's descriptor
// and child counts before and after.
//
//   build/test/bench_reaper [exits] [kills] [concurrency]

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/process_reaper.hpp"
#include "messages/registry.hpp"
#include "runtime/error.hpp"
#include "runtime/log.hpp"
#include "runtime/process_env.hpp"
#include "test/support/proc_counts.hpp"

using namespace std::chrono_literals;
using namespace gpa;

namespace {

/// Runs `n` copies of `req`; returns the wall time in seconds.
double run_many(caf::scoped_actor& self, const reaper_actor& reaper,
                const run_request& req, int n, int& failures) {
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i)
    self->send(reaper, run_atom_v, req);
  int received = 0;
  self->receive_for(received, n)([](run_result&) {},
                                 [&](caf::error&) {
                                   ++failures;
                                 });
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
      .count();
}

void settle(caf::scoped_actor& self, const reaper_actor& reaper) {
  for (int i = 0; i < 500; ++i) {
    reaper_stats st;
    self->request(reaper, caf::infinite, stats_atom_v)
        .receive(
            [&](reaper_stats& s) {
              st = s;
            },
            [](caf::error&) {});
    if (st.live == 0 && gpa::test::count_children() == 0)
      return;
    std::this_thread::sleep_for(10ms);
  }
}

} // namespace

int main(int argc, char** argv) {
  int exits = argc > 1 ? std::atoi(argv[1]) : 10000;
  int kills = argc > 2 ? std::atoi(argv[2]) : 1000;
  int concurrency = argc > 3 ? std::atoi(argv[3]) : 16;
  log::silence();
  caf::actor_system_config cfg;
  add_message_types(cfg);
  caf::actor_system sys{cfg};
  rt::private_temp_dir temp{"/tmp"};
  std::shared_ptr<rt::process_launcher> launcher = rt::make_posix_launcher();
  reaper_config rc;
  rc.opts.max_children = static_cast<uint32_t>(concurrency);
  rc.opts.max_queued = 1000000;
  rc.temp_dir = temp.path();
  auto reaper
      = caf::actor_cast<reaper_actor>(sys.spawn(process_reaper, launcher, rc));
  caf::scoped_actor self{sys};
  run_request warm;
  warm.argv = {"/bin/true"};
  int failures = 0;
  run_many(self, reaper, warm, 10, failures);
  settle(self, reaper);
  auto fds_before = gpa::test::count_fds();
  auto children_before = gpa::test::count_children();
  std::printf("reaper benchmark: %d children at most at once\n", concurrency);
  std::printf("before: %d descriptors, %d children\n", fds_before,
              children_before);

  auto secs = run_many(self, reaper, warm, exits, failures);
  std::printf("spawn-to-exit:    %d children of /bin/true in %.2f s: %.0f "
              "per second\n",
              exits, secs, exits / secs);

  run_request stubborn;
  stubborn.argv = {"/bin/sh", "-c", "trap '' TERM; exec sleep 30"};
  stubborn.timeout = 300ms;
  stubborn.kill_grace = 20ms;
  secs = run_many(self, reaper, stubborn, kills, failures);
  std::printf("timeout-to-kill:  %d children (300 ms timeout, SIGTERM "
              "ignored, SIGKILL after 20 ms) in %.2f s: %.0f per second\n",
              kills, secs, kills / secs);

  settle(self, reaper);
  auto fds_after = gpa::test::count_fds();
  auto children_after = gpa::test::count_children();
  std::printf(
      "after:  %d descriptors, %d children (%s)\n", fds_after, children_after,
      fds_after == fds_before && children_after == children_before ? "unchanged"
                                                                   : "CHANGED");
  std::printf("failed requests: %d\n", failures);
  self->send_exit(reaper, caf::exit_reason::user_shutdown);
  return fds_after == fds_before && children_after == children_before
                 && failures == 0
             ? 0
             : 1;
}

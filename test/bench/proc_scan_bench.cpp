// What one footprint sample of the memory monitor costs: a scan of every
// process on the host (one stat read each) plus the tree's statm reads.
//
//   bench_proc_scan [extra_processes] [scans]
//
// Measures the real /proc as it is, then again with `extra_processes`
// sleeping children of the benchmark (default 2000: they are in the tree, so
// this is the worst case), and the same number of processes on a simulated
// host (the walk alone, without the kernel's cost). Prints wall and CPU time
// per scan.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <csignal>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/proc.hpp"
#include "test/support/fake_proc.hpp"

namespace {

double cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec)
         + static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

void measure(const char* what, gpa::rt::proc_source& src, int scans) {
  std::vector<double> wall;
  gpa::rt::tree_usage t;
  auto cpu0 = cpu_seconds();
  for (int i = 0; i < scans; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    t = gpa::rt::scan_tree(src, src.self_pid());
    wall.push_back(std::chrono::duration<double, std::milli>(
                       std::chrono::steady_clock::now() - t0)
                       .count());
  }
  auto cpu = (cpu_seconds() - cpu0) * 1000 / scans;
  std::sort(wall.begin(), wall.end());
  double sum = 0;
  for (auto x : wall)
    sum += x;
  auto procs = t.scanned + t.vanished;
  std::printf("%-34s %7u procs %6u in tree  wall ms/scan: mean %7.2f  "
              "median %7.2f  max %7.2f  cpu ms/scan %7.2f  (%.2f us/proc)\n",
              what, procs, t.descendants, sum / scans, wall[wall.size() / 2],
              wall.back(), cpu, procs > 0 ? sum / scans * 1000 / procs : 0.0);
}

} // namespace

int main(int argc, char** argv) {
  int extra = argc > 1 ? std::atoi(argv[1]) : 2000;
  int scans = argc > 2 ? std::atoi(argv[2]) : 20;
  auto src = gpa::rt::make_proc_source();
  measure("real /proc, as it is", *src, scans);
  // Sleeping children: cheap copies of this process that wait for a signal.
  std::vector<pid_t> kids;
  for (int i = 0; i < extra; ++i) {
    auto pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      for (;;)
        ::pause();
    }
    if (pid < 0) {
      std::perror("fork");
      break;
    }
    kids.push_back(pid);
  }
  char what[64];
  std::snprintf(what, sizeof(what), "real /proc, +%zu children", kids.size());
  measure(what, *src, scans);
  for (auto pid : kids)
    ::kill(pid, SIGKILL);
  for (auto pid : kids)
    ::waitpid(pid, nullptr, 0);
  // The same host size, simulated: the walk without the kernel.
  gpa::test::fake_proc host;
  auto n = static_cast<int32_t>(std::max<size_t>(kids.size(), 10000));
  for (int32_t pid = 1; pid <= n; ++pid)
    if (pid != host.self)
      host.add(pid, pid % 5 == 0 ? host.self : 1, 4096);
  std::snprintf(what, sizeof(what), "simulated host, %d procs", n);
  measure(what, host, scans);
  return 0;
}

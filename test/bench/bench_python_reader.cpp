// Microseconds per sample of the CPython stack reader (runtime/
// python_reader), per interpreter: starts test/support/python_stacks_target.py
// under each interpreter given (default: the pyenv 3.7-3.13 builds of
// /root/.pyenv/versions and /usr/bin/python3), attaches, samples N times.
//
//   bench_python_reader [--samples N] [--threads T] [--dump] [PYTHON...]
//
// --threads adds T sleeping threads (3 frames each) to the script's three.
// --dump prints the last sample's stacks.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <glob.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/python_reader.hpp"

#ifndef GPA_PY_TARGET
#  define GPA_PY_TARGET "test/support/python_stacks_target.py"
#endif

namespace {

std::vector<std::string> default_pythons() {
  std::vector<std::string> out;
  glob_t g;
  if (::glob("/root/.pyenv/versions/3.*/bin/python3.[0-9]*", 0, nullptr, &g)
      == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) {
      std::string p = g.gl_pathv[i];
      auto base = p.substr(p.rfind('/') + 1);
      // python3.N only (not 3.6, python3.7m, python3.N-config, -gdb.py).
      if (base.find_first_not_of("python3.0123456789") == std::string::npos
          && base != "python3.6")
        out.push_back(p);
    }
    ::globfree(&g);
  }
  if (::access("/usr/bin/python3", X_OK) == 0)
    out.push_back("/usr/bin/python3");
  return out;
}

/// Starts `python target extra` with its stdout on a pipe; waits for the
/// ready line.
pid_t start(const std::string& python, int extra) {
  int fds[2];
  if (::pipe(fds) != 0)
    return -1;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    ::close(fds[1]);
    std::string n = std::to_string(extra);
    execl(python.c_str(), python.c_str(), GPA_PY_TARGET, n.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  ::close(fds[1]);
  char c;
  while (::read(fds[0], &c, 1) == 1 && c != '\n') {
  }
  ::close(fds[0]);
  return pid;
}

} // namespace

int main(int argc, char** argv) {
  int samples = 10000;
  int extra = 0;
  bool dump = false;
  std::vector<std::string> pythons;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--samples" && i + 1 < argc)
      samples = std::atoi(argv[++i]);
    else if (a == "--threads" && i + 1 < argc)
      extra = std::atoi(argv[++i]);
    else if (a == "--dump")
      dump = true;
    else
      pythons.push_back(a);
  }
  if (pythons.empty())
    pythons = default_pythons();
  // The cost of one system call here, for scale.
  auto g0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 100000; ++i)
    ::getppid();
  auto g1 = std::chrono::steady_clock::now();
  printf("getppid(): %.2f us per system call\n",
         std::chrono::duration<double, std::micro>(g1 - g0).count() / 100000);
  printf("%-44s %-8s %7s %7s %9s %8s %8s\n", "interpreter", "version",
         "threads", "frames", "us/sample", "reads", "dropped");
  for (auto& py : pythons) {
    pid_t pid = start(py, extra);
    if (pid <= 0)
      continue;
    auto r = gpa::rt::python_reader::attach(pid);
    if (!r) {
      printf("%-44s %s\n", py.c_str(), r.error().describe().c_str());
    } else {
      auto& reader = **r;
      reader.sample(); // warm the code cache
      size_t threads = 0, frames = 0;
      int dropped = 0;
      std::vector<gpa::rt::python_thread_stack> last;
      uint64_t reads0 = reader.reads();
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < samples; ++i) {
        auto s = reader.sample();
        if (!s) {
          ++dropped;
          if (dump)
            fprintf(stderr, "%s\n", s.error().describe().c_str());
          continue;
        }
        last = std::move(*s);
      }
      auto t1 = std::chrono::steady_clock::now();
      for (auto& t : last) {
        ++threads;
        frames += t.frames.size();
      }
      double us = std::chrono::duration<double, std::micro>(t1 - t0).count()
                  / samples;
      double reads = static_cast<double>(reader.reads() - reads0) / samples;
      printf("%-44s %-8s %7zu %7zu %9.2f %8.1f %8d\n", py.c_str(),
             reader.version().c_str(), threads, frames, us, reads, dropped);
      if (dump)
        for (auto& t : last) {
          printf("  thread %llx tid %d gil %d\n",
                 static_cast<unsigned long long>(t.thread_id), t.native_tid,
                 t.gil);
          for (auto& f : t.frames)
            printf("    %s (%s) %s:%d\n", f.name().c_str(),
                   f.code->qualname.c_str(), f.file().c_str(), f.line);
        }
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  return 0;
}

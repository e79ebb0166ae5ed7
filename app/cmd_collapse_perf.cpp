#include "app/commands.hpp"

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "format/collapse.hpp"
#include "runtime/error.hpp"
#include "runtime/files.hpp"

// `gprofiler-agent collapse-perf [FILE|-]`: streams perf script text through
// the converter and prints the folded stacks, reading like the agent does
// (rt::read_fd_chunks): a regular file is mapped into memory and fed in 4 MB
// windows (no copy through a read buffer: about a third less CPU on this
// machine kind, see docs/performance.md); a pipe or a terminal is read.

namespace gpa {

namespace {

constexpr size_t window_size = size_t{4} << 20;

// A mapped file that shrinks while it is read raises SIGBUS on the pages
// past its new end: the handler jumps back out of the converter, which is
// then abandoned, and the command fails with a clear error.
sigjmp_buf bus_jump;
volatile sig_atomic_t bus_armed = 0;

extern "C" void on_sigbus(int sig) {
  if (bus_armed != 0)
    siglongjmp(bus_jump, 1);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

int fail(const std::string& msg) {
  std::fprintf(stderr, "gprofiler-agent: error: collapse-perf: %s\n",
               msg.c_str());
  return 1;
}

/// Writes all of `data` to `fd`. False on error (errno set).
bool write_all(int fd, const char* data, size_t n) {
  while (n > 0) {
    auto w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

/// Feeds `fd` to the converter through rt::read_fd_chunks (a regular file
/// mapped, anything else read). Returns 0, the errno of a failed read, or -1
/// if a mapped file shrank meanwhile (SIGBUS: the converter is left in the
/// middle of a line, and the mapping is not unmapped; the command ends).
int feed(int fd, format::perf_collapser& c) {
  struct sigaction sa {};
  struct sigaction old {};
  sa.sa_handler = on_sigbus;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGBUS, &sa, &old);
  volatile int result = 0;
  if (sigsetjmp(bus_jump, 1) == 0) {
    bus_armed = 1;
    result = rt::read_fd_chunks(
        fd,
        [&c](std::string_view chunk) {
          c.feed(chunk);
        },
        window_size);
  } else {
    result = -1;
  }
  bus_armed = 0;
  ::sigaction(SIGBUS, &old, nullptr);
  return result;
}

} // namespace

int run_collapse_perf(const config::invocation& inv) {
  std::string path = inv.positional.empty() ? "-" : inv.positional[0];
  bool from_stdin = path == "-";
  std::string name
      = from_stdin ? std::string{"standard input"} : "'" + path + "'";
  // A regular file or "-" (stdin, which may be a pipe from perf script):
  // a FIFO or a device named as FILE is refused at once, without blocking.
  // Memory stays bounded whatever the input (the converter carries at most
  // one line of collapse_limits::max_line).
  auto opened = rt::open_input_fd(path, UINT64_MAX);
  if (!opened)
    return fail(message_of(opened.error()));
  int fd = *opened;
  auto start = std::chrono::steady_clock::now();
  auto collapser = std::make_unique<format::perf_collapser>();
  int err = feed(fd, *collapser);
  if (!from_stdin)
    ::close(fd);
  if (err < 0) {
    // The converter was left in the middle of a line: abandon it.
    (void)collapser.release();
    return fail(name + " shrank while it was read");
  }
  if (err > 0)
    return fail("cannot read " + name + ": " + std::strerror(err));
  collapser->finish();
  std::string out;
  collapser->write_folded(out);
  if (!write_all(STDOUT_FILENO, out.data(), out.size())) {
    if (errno == EPIPE)
      return 1; // the reader went away (`| head`): nothing to report
    return fail(std::string{"cannot write the output: "}
                + std::strerror(errno));
  }
  if (inv.options.log.verbose) {
    auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now()
                                              - start)
                    .count();
    auto st = collapser->stats();
    std::fprintf(stderr,
                 "collapse-perf: %s: %llu bytes, %llu samples, %llu "
                 "malformed records, %llu unique stacks, %llu unique frames, "
                 "%.3f s\n",
                 name.c_str(), static_cast<unsigned long long>(st.bytes),
                 static_cast<unsigned long long>(st.samples),
                 static_cast<unsigned long long>(st.malformed),
                 static_cast<unsigned long long>(st.unique_stacks),
                 static_cast<unsigned long long>(st.unique_frames), secs);
  }
  return 0;
}

} // namespace gpa

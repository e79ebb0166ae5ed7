#include "actors/commands.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "actors/format/collapse.hpp"

// `gprofiler-agent collapse-perf [FILE|-]`: reads perf script text in 4 MB
// reads, streams it through the converter and prints the folded stacks.

namespace gpa {

namespace {

constexpr size_t read_size = size_t{4} << 20;

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

} // namespace

int run_collapse_perf(const config::invocation& inv) {
  std::string path = inv.positional.empty() ? "-" : inv.positional[0];
  bool from_stdin = path == "-";
  std::string name
      = from_stdin ? std::string{"standard input"} : "'" + path + "'";
  int fd = STDIN_FILENO;
  if (!from_stdin) {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      return fail("cannot open " + name + ": " + std::strerror(errno));
  }
  auto start = std::chrono::steady_clock::now();
  format::perf_collapser collapser;
  std::vector<char> buf(read_size);
  for (;;) {
    auto n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR)
        continue;
      int err = errno;
      if (!from_stdin)
        ::close(fd);
      return fail("cannot read " + name + ": " + std::strerror(err));
    }
    if (n == 0)
      break;
    collapser.feed(std::string_view{buf.data(), static_cast<size_t>(n)});
  }
  if (!from_stdin)
    ::close(fd);
  collapser.finish();
  std::string out;
  collapser.write_folded(out);
  if (!write_all(STDOUT_FILENO, out.data(), out.size()))
    return fail(std::string{"cannot write the output: "}
                + std::strerror(errno));
  if (inv.options.log.verbose) {
    auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now()
                                              - start)
                    .count();
    auto st = collapser.stats();
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

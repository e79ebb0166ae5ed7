#include "app/commands.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <unistd.h>

#include "format/flamegraph.hpp"
#include "runtime/files.hpp"

namespace gpa {

namespace {

// Reads all of `path` ("-": stdin) into `out`; on failure returns the reason.
std::string read_all(const std::string& path, std::string& out) {
  int fd
      = path == "-" ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return std::strerror(errno);
  int err = rt::read_fd(fd, out);
  if (fd != STDIN_FILENO)
    ::close(fd);
  if (err == EISDIR)
    return "is a directory";
  return err != 0 ? std::strerror(err) : std::string{};
}

} // namespace

int run_flamegraph(const config::invocation& inv) {
  if (inv.positional.empty()) {
    std::fprintf(stderr, "gprofiler-agent: error: flamegraph needs a file: "
                         "gprofiler-agent flamegraph FILE.col > out.html\n");
    return 2;
  }
  const auto& path = inv.positional[0];
  std::string text;
  if (auto err = read_all(path, text); !err.empty()) {
    std::fprintf(stderr, "gprofiler-agent: error: cannot read '%s': %s\n",
                 path.c_str(), err.c_str());
    return 1;
  }
  format::flame_tree tree{text};
  std::string().swap(text);
  if (tree.skipped_lines() > 0)
    std::fprintf(
        stderr, "gprofiler-agent: warning: %s: %llu malformed lines skipped\n",
        path.c_str(), static_cast<unsigned long long>(tree.skipped_lines()));
  if (!tree.header_error().empty())
    std::fprintf(stderr, "gprofiler-agent: warning: %s: %s\n", path.c_str(),
                 tree.header_error().c_str());
  auto page = format::render_flamegraph(tree);
  if (std::fwrite(page.data(), 1, page.size(), stdout) != page.size()
      || std::fflush(stdout) != 0) {
    std::fprintf(stderr, "gprofiler-agent: error: writing the page: %s\n",
                 std::strerror(errno));
    return 1;
  }
  return 0;
}

} // namespace gpa

#include "app/commands.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "format/flamegraph.hpp"
#include "runtime/error.hpp"
#include "runtime/files.hpp"

namespace gpa {

namespace {

/// The largest profile flamegraph reads. It is read in windows and memory
/// grows with its distinct stacks, not with its size, so the limit only
/// bounds the time a mistaken argument can take.
constexpr uint64_t max_flamegraph_input = uint64_t{64} << 30;

} // namespace

int run_flamegraph(const config::invocation& inv) {
  if (inv.positional.empty()) {
    std::fprintf(stderr, "gprofiler-agent: error: flamegraph needs a file: "
                         "gprofiler-agent flamegraph FILE.col > out.html\n");
    return 2;
  }
  const auto& path = inv.positional[0];
  // A regular file or "-" (stdin), read in 4 MB windows into the tree: a
  // FIFO or a device is refused at once, and memory follows the distinct
  // stacks, not the file's size.
  format::flame_tree tree{format::tree_options{}};
  auto err = rt::read_input_chunks(path, max_flamegraph_input,
                                   [&tree](std::string_view chunk) {
                                     tree.feed(chunk);
                                     return !tree.header_refused();
                                   });
  if (err) {
    std::fprintf(stderr, "gprofiler-agent: error: %s\n",
                 message_of(err).c_str());
    return 1;
  }
  tree.finish();
  if (tree.header_refused()) {
    std::fprintf(
        stderr, "gprofiler-agent: error: '%s' is not a profile to render: %s\n",
        path.c_str(), tree.header_error().c_str());
    return 1;
  }
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

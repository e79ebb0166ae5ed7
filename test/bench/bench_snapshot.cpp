// The whole processing of one snapshot after perf script: converting the
// text (collapse), merging by gProfiler's rule, rendering the .col, and
// rendering the flame-graph page, for the first N samples of a perf script
// file, reported per 100,000 samples.
//
//   build/test/bench_snapshot FILE [samples]

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include <sys/resource.h>

#include "format/col.hpp"
#include "format/collapse.hpp"
#include "format/flamegraph.hpp"

using clock_type = std::chrono::steady_clock;

namespace {

double ms_since(clock_type::time_point t0) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t0)
      .count();
}

/// The first `samples` records of a perf script file (records end with a
/// blank line); only that much is read.
std::string first_records(std::istream& in, size_t samples) {
  std::string out;
  std::string line;
  size_t n = 0;
  while (n < samples && std::getline(in, line)) {
    out += line;
    out += '\n';
    if (line.empty())
      ++n;
  }
  return out;
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_snapshot FILE [samples]\n");
    return 2;
  }
  size_t samples = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 100000;
  std::ifstream in(argv[1], std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", argv[1]);
    return 1;
  }
  auto text = first_records(in, samples);
  std::printf("input: %zu samples, %.1f MB of perf script text\n", samples,
              text.size() / 1e6);
  constexpr int runs = 5;
  double best[4] = {1e18, 1e18, 1e18, 1e18};
  size_t lines = 0;
  size_t page = 0;
  for (int r = 0; r < runs; ++r) {
    auto t0 = clock_type::now();
    gpa::format::perf_collapser c;
    for (size_t pos = 0; pos < text.size(); pos += 4 << 20)
      c.feed(std::string_view{text}.substr(pos, 4 << 20));
    c.finish();
    gpa::profile_part part;
    part.profiler = "perf";
    part.processes = c.per_process();
    best[0] = std::min(best[0], ms_since(t0));
    t0 = clock_type::now();
    auto merged = gpa::format::merge_parts({part});
    best[1] = std::min(best[1], ms_since(t0));
    t0 = clock_type::now();
    gpa::format::col_header header;
    auto col = gpa::format::render_col(header, merged);
    best[2] = std::min(best[2], ms_since(t0));
    t0 = clock_type::now();
    auto html = gpa::format::render_flamegraph(col);
    best[3] = std::min(best[3], ms_since(t0));
    lines = merged.size();
    page = html.size();
  }
  double scale = 100000.0 / static_cast<double>(samples);
  const char* names[]
      = {"collapse", "merge", "render .col", "render flame-graph page"};
  double total = 0;
  for (int i = 0; i < 4; ++i) {
    std::printf("%-24s %8.1f ms per 100,000 samples\n", names[i],
                best[i] * scale);
    total += best[i] * scale;
  }
  std::printf("%-24s %8.1f ms per 100,000 samples (%zu stacks, page %.1f "
              "MB)\n",
              "whole snapshot", total, lines, page / 1e6);
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::printf("peak RSS of this process: %.1f MB\n", ru.ru_maxrss / 1024.0);
  return 0;
}

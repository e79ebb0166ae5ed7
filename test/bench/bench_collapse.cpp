// Benchmark of the perf script converter (not a test; see
// scripts/bench-collapse.sh and docs/performance.md).
//
//   bench_collapse generate OUT MIN_MB VARIANTS INPUT...
//       Concatenates copies of the INPUT perf script files into OUT until it
//       holds at least MIN_MB megabytes; copy i renumbers every pid and tid
//       by adding (i % VARIANTS) * 1000000, so the input holds VARIANTS
//       times the unique stacks of the recordings.
//   bench_collapse run FILE [PERF_DATA]
//       Times the converter on FILE (one thread, best of 5, the file mapped
//       in memory as collapse-perf does, then read in 1 MB reads),
//       `gzip -1 -c FILE > /dev/null`, and, given PERF_DATA, `perf script
//       -F +pid` on that recording; prints the figures and the ratios.
//   bench_collapse once FILE
//       One conversion of FILE, nothing else (to profile the converter).

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "format/collapse.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

/// Size of one read(); BENCH_READ_KB overrides it (to compare sizes).
size_t read_size() {
  auto env = std::getenv("BENCH_READ_KB");
  return env != nullptr ? std::strtoull(env, nullptr, 10) << 10
                        : size_t{1} << 20;
}

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "bench_collapse: %s\n", msg.c_str());
  std::exit(1);
}

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    die("cannot open '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Adds `delta` to every pid and tid of the header lines of `text`.
std::string renumber(const std::string& text, long delta) {
  std::string out;
  out.reserve(text.size() + text.size() / 50);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    size_t end = nl == std::string::npos ? text.size() : nl + 1;
    std::string_view line{text.data() + pos, end - pos};
    pos = end;
    if (line.empty() || line[0] == '\t' || line[0] == '\n' || delta == 0) {
      out += line;
      continue;
    }
    // The pid/tid token: the first "N/N" token followed by " [".
    size_t slash = 0;
    size_t b = std::string_view::npos;
    size_t e = 0;
    while ((slash = line.find('/', slash + 1)) != std::string_view::npos) {
      size_t tb = line.rfind(' ', slash);
      size_t te = line.find(' ', slash);
      if (tb == std::string_view::npos || te == std::string_view::npos)
        continue;
      auto tok = line.substr(tb + 1, te - tb - 1);
      bool ok
          = tok.size() >= 3 && std::all_of(tok.begin(), tok.end(), [](char c) {
              return (c >= '0' && c <= '9') || c == '/';
            });
      if (ok && line.substr(te).find_first_not_of(' ') != std::string::npos
          && line[line.find_first_not_of(' ', te)] == '[') {
        b = tb + 1;
        e = te;
        break;
      }
    }
    if (b == std::string_view::npos) {
      out += line;
      continue;
    }
    auto tok = std::string{line.substr(b, e - b)};
    auto sl = tok.find('/');
    long pid = std::atol(tok.c_str());
    long tid = std::atol(tok.c_str() + sl + 1);
    out += line.substr(0, b);
    out += std::to_string(pid + delta) + "/" + std::to_string(tid + delta);
    out += line.substr(e);
  }
  return out;
}

int generate(int argc, char** argv) {
  if (argc < 6)
    die("usage: generate OUT MIN_MB VARIANTS INPUT...");
  std::string out_path = argv[2];
  size_t min_bytes = std::strtoull(argv[3], nullptr, 10) << 20;
  long variants = std::max(1L, std::atol(argv[4]));
  std::string base;
  for (int i = 5; i < argc; ++i) {
    base += read_all(argv[i]);
    if (!base.empty() && base.back() != '\n')
      base += '\n';
    base += '\n';
  }
  if (base.size() < 2)
    die("the inputs are empty");
  std::vector<std::string> copies;
  for (long v = 0; v < variants; ++v)
    copies.push_back(renumber(base, v * 1000000));
  int fd = ::open(out_path.c_str(),
                  O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0)
    die("cannot create '" + out_path + "': " + std::strerror(errno));
  size_t written = 0;
  for (long i = 0; written < min_bytes; ++i) {
    auto& c = copies[static_cast<size_t>(i % variants)];
    for (size_t off = 0; off < c.size();) {
      auto w = ::write(fd, c.data() + off, c.size() - off);
      if (w < 0)
        die("cannot write '" + out_path + "': " + std::strerror(errno));
      off += static_cast<size_t>(w);
    }
    written += c.size();
  }
  ::close(fd);
  std::printf("generated %s: %.1f MB from %.1f MB of recordings, %ld "
              "variants\n",
              out_path.c_str(), written / 1e6, base.size() / 1e6, variants);
  return 0;
}

/// Runs argv with stdout to /dev/null (or counted through a pipe when
/// `count` is given); returns the wall time in seconds.
double time_child(std::vector<std::string> args, size_t* count = nullptr,
                  double* cpu = nullptr, long* maxrss_kb = nullptr) {
  int pipefd[2] = {-1, -1};
  if (count != nullptr && ::pipe2(pipefd, O_CLOEXEC) != 0)
    die("pipe failed");
  auto t0 = clock_type::now();
  pid_t pid = ::fork();
  if (pid < 0)
    die("fork failed");
  if (pid == 0) {
    int out = count != nullptr ? pipefd[1] : ::open("/dev/null", O_WRONLY);
    int null_err = ::open("/dev/null", O_WRONLY);
    ::dup2(out, 1);
    ::dup2(null_err, 2);
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  if (count != nullptr) {
    ::close(pipefd[1]);
    std::vector<char> buf(1 << 20);
    *count = 0;
    for (;;) {
      auto n = ::read(pipefd[0], buf.data(), buf.size());
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      *count += static_cast<size_t>(n);
    }
    ::close(pipefd[0]);
  }
  int status = 0;
  rusage ru{};
  ::wait4(pid, &status, 0, &ru);
  double secs = seconds_since(t0);
  if (maxrss_kb != nullptr)
    *maxrss_kb = ru.ru_maxrss;
  if (cpu != nullptr)
    *cpu = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec
           + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    die("'" + args[0] + "' failed");
  return secs;
}

struct run_result {
  double feed_secs = 0;
  double feed_cpu_secs = 0;
  double output_secs = 0;
  gpa::format::collapse_stats stats;
  size_t output_bytes = 0;
};

/// CPU time (user + system) of this process so far, in seconds.
double cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec
         + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

run_result run_once(const std::string& path, std::vector<char>& buf,
                    bool use_mmap = false) {
  run_result r;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    die("cannot open '" + path + "': " + std::strerror(errno));
  auto t0 = clock_type::now();
  double cpu0 = cpu_seconds();
  gpa::format::perf_collapser c;
  struct stat sb {};
  if (use_mmap && ::fstat(fd, &sb) == 0 && sb.st_size > 0) {
    auto size = static_cast<size_t>(sb.st_size);
    void* m = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED)
      die("mmap failed");
    ::madvise(m, size, MADV_SEQUENTIAL);
    auto base = static_cast<const char*>(m);
    for (size_t off = 0; off < size; off += buf.size())
      c.feed(std::string_view{base + off, std::min(buf.size(), size - off)});
    ::munmap(m, size);
  }
  for (; !use_mmap;) {
    auto n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      die("cannot read '" + path + "'");
    if (n == 0)
      break;
    c.feed(std::string_view{buf.data(), static_cast<size_t>(n)});
  }
  c.finish();
  r.feed_secs = seconds_since(t0);
  r.feed_cpu_secs = cpu_seconds() - cpu0;
  ::close(fd);
  auto t1 = clock_type::now();
  std::string out;
  c.write_folded(out);
  r.output_secs = seconds_since(t1);
  r.output_bytes = out.size();
  r.stats = c.stats();
  return r;
}

double read_only(const std::string& path, std::vector<char>& buf) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    die("cannot open '" + path + "'");
  auto t0 = clock_type::now();
  while (::read(fd, buf.data(), buf.size()) > 0) {
  }
  ::close(fd);
  return seconds_since(t0);
}

/// Best (lowest wall time) of `n` conversions of `path`.
run_result best_of(int n, const std::string& path, std::vector<char>& buf,
                   bool use_mmap) {
  run_result best;
  for (int i = 0; i < n; ++i) {
    auto r = run_once(path, buf, use_mmap);
    std::printf("  %s run %d: %.3f s (%.3f s CPU)\n",
                use_mmap ? "mmap" : "read", i + 1, r.feed_secs,
                r.feed_cpu_secs);
    if (i == 0 || r.feed_secs < best.feed_secs)
      best = r;
  }
  return best;
}

int run(int argc, char** argv) {
  if (argc < 3)
    die("usage: run FILE [PERF_DATA]");
  std::string path = argv[2];
  std::vector<char> buf(read_size());
  read_only(path, buf); // warm the page cache
  double read_secs = read_only(path, buf);
  auto mapped = best_of(5, path, buf, true);
  auto readin = best_of(5, path, buf, false);
  // Peak RSS of one conversion alone (1 MB reads: a mapped file would
  // count in the RSS), in a fresh process.
  long rss_kb = 0;
  time_child({"/proc/self/exe", "once", path}, nullptr, nullptr, &rss_kb);
  double mb = mapped.stats.bytes / 1e6;
  std::printf("input: %s, %.1f MB, %llu samples, %llu malformed\n",
              path.c_str(), mb,
              static_cast<unsigned long long>(mapped.stats.samples),
              static_cast<unsigned long long>(mapped.stats.malformed));
  std::printf("read alone (%zu KB reads): %.3f s, %.0f MB/s\n",
              buf.size() >> 10, read_secs, mb / read_secs);
  auto report = [&](const char* how, const run_result& r) {
    std::printf("collapse, %s (feed+finish, 1 thread, best of 5): %.3f s "
                "(%.3f s CPU), %.0f MB/s, %.2f M samples/s\n",
                how, r.feed_secs, r.feed_cpu_secs, mb / r.feed_secs,
                r.stats.samples / r.feed_secs / 1e6);
  };
  report("mmap", mapped);
  report("1 MB reads", readin);
  std::printf("unique stacks: %llu, unique frames: %llu; folded output: "
              "%.1f MB in %.3f s\n",
              static_cast<unsigned long long>(mapped.stats.unique_stacks),
              static_cast<unsigned long long>(mapped.stats.unique_frames),
              mapped.output_bytes / 1e6, mapped.output_secs);
  std::printf("peak RSS of a process doing one conversion (1 MB reads): "
              "%.1f MB\n",
              rss_kb / 1024.0);
  double gz_cpu = 0;
  double gz = time_child({"gzip", "-1", "-c", path}, nullptr, &gz_cpu);
  std::printf("gzip -1 -c FILE > /dev/null: %.3f s (%.3f s CPU), %.0f MB/s\n",
              gz, gz_cpu, mb / gz);
  std::printf("ratio collapse/gzip, wall time: mmap %.3f, 1 MB reads %.3f "
              "(target <= 0.15)\n",
              mapped.feed_secs / gz, readin.feed_secs / gz);
  std::printf("ratio collapse/gzip, CPU time: mmap %.3f, 1 MB reads %.3f\n",
              mapped.feed_cpu_secs / gz_cpu, readin.feed_cpu_secs / gz_cpu);
  if (argc > 3) {
    size_t bytes = 0;
    double ps
        = time_child({"perf", "script", "-F", "+pid", "-i", argv[3]}, &bytes);
    std::printf("perf script -F +pid on %s: %.3f s, %.1f MB of text, %.1f "
                "MB/s\n",
                argv[3], ps, bytes / 1e6, bytes / 1e6 / ps);
  }
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "generate") == 0)
    return generate(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "run") == 0)
    return run(argc, argv);
  if (argc >= 3 && std::strcmp(argv[1], "once") == 0) {
    // One conversion and nothing else: for `perf record` of the converter.
    std::vector<char> buf(read_size());
    auto r = run_once(argv[2], buf, std::getenv("BENCH_MMAP") != nullptr);
    std::printf("%.3f s (%.3f s CPU), %.0f MB/s\n", r.feed_secs,
                r.feed_cpu_secs, r.stats.bytes / 1e6 / r.feed_secs);
    return 0;
  }
  std::fprintf(stderr, "usage: bench_collapse generate OUT MIN_MB VARIANTS "
                       "INPUT... | run FILE [PERF_DATA] | once FILE\n");
  return 2;
}

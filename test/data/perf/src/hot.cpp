// A small CPU-bound program with known hot functions, used to record the
// perf script samples under test/data/perf (see ../README.md). Threads carry
// names that stress the collapsed format: spaces, a semicolon, a trailing
// number. Runs for argv[1] seconds (default 2).
#include <pthread.h>
#include <sys/prctl.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace hot {

std::atomic<bool> stop{false};

struct vec2 {
  double x, y;
};

// A C++ operator and a template: names with '+' and parentheses.
__attribute__((noinline)) vec2 operator+(vec2 a, vec2 b) {
  return {a.x + b.x * 1.0000001, a.y + b.y * 0.9999999};
}

template <class T>
struct accumulator {
  T total{};
  __attribute__((noinline)) void operator()(T v) {
    total = total + v;
  }
};

__attribute__((noinline)) unsigned long leaf_spin(unsigned long n) {
  unsigned long acc = n;
  for (int i = 0; i < 20000; ++i)
    acc = acc * 6364136223846793005ul + 1442695040888963407ul;
  return acc;
}

__attribute__((noinline)) unsigned long compute_b(unsigned long n) {
  return leaf_spin(n) ^ leaf_spin(n + 1);
}

__attribute__((noinline)) unsigned long compute_a(unsigned long n) {
  return compute_b(n) + leaf_spin(n * 3);
}

__attribute__((noinline)) double vector_work() {
  accumulator<vec2> acc;
  std::vector<int> v;
  for (int i = 0; i < 50000; ++i) {
    acc(vec2{double(i), double(-i)});
    v.push_back(i);
  }
  return acc.total.x + double(v.size());
}

__attribute__((noinline)) void syscall_work() {
  // Kernel stacks: many small syscalls.
  for (int i = 0; i < 2000; ++i) {
    FILE* f = std::fopen("/proc/self/stat", "r");
    if (f) {
      char buf[256];
      if (std::fgets(buf, sizeof buf, f) == nullptr)
        buf[0] = 0;
      std::fclose(f);
    }
  }
}

void run_named(const char* name, void (*body)()) {
  prctl(PR_SET_NAME, name, 0, 0, 0);
  while (!stop.load(std::memory_order_relaxed))
    body();
}

volatile unsigned long sink;

void body_compute() {
  sink = compute_a(sink + 1);
}
void body_vector() {
  sink = (unsigned long)vector_work();
}
void body_syscall() {
  syscall_work();
}

} // namespace hot

int main(int argc, char** argv) {
  double secs = argc > 1 ? std::atof(argv[1]) : 2.0;
  std::vector<std::thread> threads;
  // 15 characters at most (TASK_COMM_LEN - 1).
  threads.emplace_back(hot::run_named, "my;app 3", hot::body_vector);
  threads.emplace_back(hot::run_named, "sys call 42", hot::body_syscall);
  std::thread timer([secs] {
    std::this_thread::sleep_for(std::chrono::duration<double>(secs));
    hot::stop = true;
  });
  prctl(PR_SET_NAME, "hotloop", 0, 0, 0);
  while (!hot::stop.load(std::memory_order_relaxed))
    hot::body_compute();
  timer.join();
  for (auto& t : threads)
    t.join();
  std::printf("%lu\n", hot::sink);
  return 0;
}

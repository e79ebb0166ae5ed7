// A process that looks like CPython 3.11 to the stack reader (exported
// _PyRuntime, Py_Version, PyCode_Type, ...) but whose _PyRuntime holds what
// a test asks for, for python_reader's fault tests:
//
//   fake_python random SEED   words that are garbage or point back into
//                             _PyRuntime at random
//   fake_python valid         a consistent image: one frame "abc"
//   fake_python cycle         interpreter, thread and a frame chain that
//                             loops
//   fake_python notcode       a frame whose code object is not code
//   fake_python hugestr       a code object whose name claims 2^40 chars
//   fake_python badinstr      an instruction pointer outside its code
//
// Prints "ready" and sleeps until killed.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

#include <unistd.h>

#include "runtime/python_offsets.hpp"

extern "C" {
__attribute__((visibility("default"))) alignas(
    64) unsigned char _PyRuntime[1 << 16];
__attribute__((visibility("default"))) uint32_t Py_Version = 0x030b07f0;
__attribute__((visibility("default"))) alignas(
    64) unsigned char PyCode_Type[256];
__attribute__((visibility("default"))) alignas(
    64) unsigned char PyUnicode_Type[256];
__attribute__((visibility("default"))) alignas(
    64) unsigned char PyBytes_Type[256];
__attribute__((visibility("default"))) alignas(
    64) unsigned char PyFrame_Type[256];
}

namespace {

unsigned char* at(size_t off) {
  return _PyRuntime + off;
}

void put(size_t off, uint64_t v) {
  std::memcpy(at(off), &v, sizeof(v));
}

uint64_t addr(size_t off) {
  return reinterpret_cast<uint64_t>(at(off));
}

} // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "cycle";
  const auto& l = *gpa::rt::python_table_layout(11);
  auto off = [](int64_t o) {
    return static_cast<size_t>(o);
  };
  const size_t interp = 0x1000, tstate = 0x2000, cframe = 0x3000, f1 = 0x4000,
               f2 = 0x4100, code = 0x5000, str = 0x6000, bytes = 0x7000;
  if (mode == "random") {
    std::mt19937_64 rng(argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1);
    for (size_t i = 0; i < sizeof(_PyRuntime); i += 8) {
      uint64_t r = rng();
      switch (r % 4) {
        case 0: put(i, rng()); break;
        case 1: put(i, addr((rng() % sizeof(_PyRuntime)) & ~size_t{7})); break;
        case 2: put(i, rng() % 4096); break;
        default: put(i, addr(((rng() % 16) * 0x1000) & ~size_t{7}));
      }
    }
  } else {
    put(off(l.runtime_interpreters_head), addr(interp));
    put(interp + off(l.interp_tstate_head), addr(tstate));
    // Its one thread holds the GIL (3.11's _PyRuntime.gilstate).
    put(off(l.runtime_tstate_current), addr(tstate));
    put(tstate + off(l.tstate_interp), addr(interp));
    put(tstate + off(l.tstate_frame), addr(cframe));
    put(cframe + off(l.cframe_current_frame), addr(f1));
    put(f1 + off(l.frame_code), addr(code));
    put(f1 + off(l.frame_instr), addr(code) + off(l.code_code_adaptive));
    // A code object of 4 code units whose strings are one str.
    put(code + off(l.code_type), reinterpret_cast<uint64_t>(PyCode_Type));
    put(code + off(l.code_size), 4);
    put(code + off(l.code_filename), addr(str));
    put(code + off(l.code_name), addr(str));
    put(code + off(l.code_qualname), addr(str));
    put(str + off(l.unicode_type), reinterpret_cast<uint64_t>(PyUnicode_Type));
    put(str + off(l.unicode_length), 3);
    put(str + off(l.unicode_state), (1u << 2) | (1u << 5) | (1u << 6));
    std::memcpy(at(str + off(l.unicode_ascii_size)), "abc", 4);
    put(code + off(l.code_linetable), addr(bytes));
    put(bytes + off(l.bytes_type), reinterpret_cast<uint64_t>(PyBytes_Type));
    put(bytes + off(l.bytes_size), 0);
    if (mode == "valid") {
      // consistent: one thread, one frame "abc"
    } else if (mode == "cycle") {
      put(f1 + off(l.frame_back), addr(f2));
      put(f2 + off(l.frame_back), addr(f1));
      put(f2 + off(l.frame_code), addr(code));
    } else if (mode == "notcode") {
      put(code + off(l.code_type), reinterpret_cast<uint64_t>(PyBytes_Type));
    } else if (mode == "hugestr") {
      put(str + off(l.unicode_length), uint64_t{1} << 40);
    } else if (mode == "badinstr") {
      put(f1 + off(l.frame_instr), addr(code) + 0x800);
    } else {
      fprintf(stderr, "unknown mode %s\n", mode.c_str());
      return 2;
    }
  }
  printf("ready\n");
  fflush(stdout);
  for (;;)
    pause();
}

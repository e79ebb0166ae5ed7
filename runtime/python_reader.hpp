#pragma once

// Reads the Python stacks of a running CPython (3.7 to 3.13) from outside,
// as py-spy does, without stopping it: no ptrace, only process_vm_readv.
//
// attach() finds the interpreter: the libpython3.X*.so mapped in
// /proc/PID/maps or else the executable, opened through /proc/PID/root (so a
// process in a container is read with its own files), its ELF symbols
// (.dynsym, .symtab: _PyRuntime, Py_Version, PyCode_Type, PyUnicode_Type,
// PyBytes_Type, PyFrame_Type), the load bias from the maps, and the version
// (Py_Version on 3.11+, else the file's name). The structure offsets come
// from python_offsets (a table verified against real headers for 3.7-3.12,
// _Py_DebugOffsets for 3.13).
//
// sample() walks _PyRuntime's interpreters, their thread states and each
// thread's frames, and decodes each frame's code object (name, qualified
// name, file) and line (co_lnotab, the 3.10 line table, or the 3.11+
// location table). Everything read is untrusted: each pointer and length is
// checked and bounded (reader_limits), every object read is checked to be
// of the type it should be (its ob_type is the interpreter's PyCode_Type,
// PyUnicode_Type, ...), and a chain that changes while it is read (a cycle,
// a pointer that does not read, an instruction outside its code object) drops
// the whole sample with python_errc::torn_read: never a wrong stack. Decoded
// code objects are cached (by address, checked each sample against the
// object's filename, name and line-table pointers and first line), so a
// sample costs a few reads per thread and one per frame.
//
// One python_reader per process; not thread-safe (one caller at a time).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "runtime/python_offsets.hpp"

namespace gpa::rt {

/// Why a reader could not attach or sample.
enum class python_errc : uint8_t {
  /// The process has no CPython in it (no _PyRuntime in the executable nor
  /// in a libpython), or the interpreter is not initialised.
  not_python,
  /// CPython, but a version this reader does not read (2.x, 3.6, 3.14+,
  /// a free-threaded build).
  unsupported_version,
  /// Looks like CPython (python executable or libpython) but has no
  /// symbols to find _PyRuntime by (stripped or static without .dynsym).
  no_symbols,
  /// The process exited (or is a zombie) or exec'd another program.
  process_gone,
  /// We may not read the process's memory or files.
  permission_denied,
  /// The stacks changed while they were read, or memory holds what a
  /// CPython cannot (garbage): the sample was dropped.
  torn_read,
  /// A file (maps, the ELF) could not be read or does not parse.
  io_error,
};

/// "not_python", "torn_read", ...
const char* to_string(python_errc x);

struct python_error {
  python_errc code = python_errc::io_error;
  /// One line: what failed, on what (pid, path, address).
  std::string message;
  /// "torn_read: <message>".
  std::string describe() const;
};

/// A value or a python_error.
template <class T>
class python_result {
public:
  python_result(T value) : value_(std::move(value)) {}
  python_result(python_error err) : error_(std::move(err)) {}
  explicit operator bool() const {
    return value_.has_value();
  }
  T& operator*() {
    return *value_;
  }
  const T& operator*() const {
    return *value_;
  }
  T* operator->() {
    return &*value_;
  }
  const T* operator->() const {
    return &*value_;
  }
  const python_error& error() const {
    return error_;
  }

private:
  std::optional<T> value_;
  python_error error_;
};

/// A decoded code object, shared by the frames that run it.
struct python_code {
  /// co_name ("leaf").
  std::string name;
  /// co_qualname on 3.11+ ("Worker.leaf"), else empty.
  std::string qualname;
  /// co_filename as the process has it.
  std::string file;
  int32_t first_line = 0;
};

struct python_frame {
  std::shared_ptr<const python_code> code;
  /// The line being run, 0 when the code object does not say.
  int32_t line = 0;
  const std::string& name() const {
    return code->name;
  }
  const std::string& file() const {
    return code->file;
  }
};

struct python_thread_stack {
  /// PyThreadState.thread_id: pthread_self() of the thread
  /// (threading.get_ident()).
  uint64_t thread_id = 0;
  /// The thread's kernel tid: PyThreadState.native_thread_id on 3.11+;
  /// before, read from glibc's struct pthread (x86-64) and checked against
  /// /proc/PID/task; 0 when not known.
  int32_t native_tid = 0;
  /// 1: the thread holds the GIL, 0: it does not, -1: not known.
  int8_t gil = -1;
  /// More than reader_limits::max_frames frames: the innermost ones kept.
  bool truncated = false;
  /// Innermost (running) frame first.
  std::vector<python_frame> frames;
};

struct python_reader_limits {
  size_t max_interpreters = 64;
  size_t max_threads = 4096;
  size_t max_frames = 2048;
  /// Characters of a name or file name kept (longer ones are cut).
  size_t max_string = 4096;
  /// Bytes of a line table read (a longer one gives line 0).
  size_t max_line_table = 1 << 20;
  /// Decoded code objects kept; the cache is emptied when full.
  size_t max_cached_code = 16384;
};

class python_reader {
public:
  /// Attaches to `pid` (as /proc names it under `proc_root`).
  static python_result<std::unique_ptr<python_reader>>
  attach(int pid, const std::string& proc_root = "/proc",
         python_reader_limits limits = {});

  ~python_reader();

  /// "3.11.7" (from Py_Version) or "3.9" (from the file name).
  const std::string& version() const {
    return version_;
  }
  int minor() const {
    return layout_.minor;
  }
  int pid() const {
    return pid_;
  }
  /// The file _PyRuntime was found in, as the process sees it.
  const std::string& binary() const {
    return binary_;
  }

  /// The stacks of every thread of every interpreter, in the interpreters'
  /// order. A failed read drops the whole sample. With `gil_holder_only`
  /// (py-spy's --gil), only the thread that holds the GIL is walked (none
  /// when no thread holds it); where the holder is not known, every thread.
  python_result<std::vector<python_thread_stack>> sample(bool gil_holder_only
                                                         = false);

  /// process_vm_readv calls made by sample() so far (the cost of a sample
  /// is mostly these system calls).
  uint64_t reads() const {
    return reads_;
  }

  /// Code objects in the cache (for tests and metrics).
  size_t cached_code_objects() const {
    return code_cache_.size();
  }

  struct code_entry;

private:
  python_reader() = default;

  int pid_ = 0;
  std::string proc_root_;
  python_reader_limits limits_;
  std::string version_;
  std::string binary_;
  python_layout layout_;
  uint64_t runtime_addr_ = 0;
  uint64_t reads_ = 0;
  uint64_t code_type_ = 0;
  uint64_t unicode_type_ = 0;
  uint64_t bytes_type_ = 0;
  uint64_t frame_type_ = 0;
  /// /proc/PID/exe's device and inode at attach (an exec changes them).
  uint64_t exe_dev_ = 0;
  uint64_t exe_ino_ = 0;
  std::unordered_map<uint64_t, std::shared_ptr<code_entry>> code_cache_;
  /// pthread_t -> tid (before 3.11).
  std::unordered_map<uint64_t, int32_t> tids_;

  friend class python_sampler;
};

// -- line tables, for tests --------------------------------------------------

/// The line of byte offset `offset` in a 3.7-3.9 co_lnotab.
int32_t python_line_lnotab(std::string_view table, int32_t first_line,
                           int64_t offset);

/// The line of byte offset `offset` in a 3.10 co_linetable.
int32_t python_line_310(std::string_view table, int32_t first_line,
                        int64_t offset);

/// The line of byte offset `offset` in a 3.11+ location table; 0 when the
/// instruction has no line.
int32_t python_line_location(std::string_view table, int32_t first_line,
                             int64_t offset);

/// A str's characters as UTF-8: `data` holds `length` characters of `kind`
/// bytes each (1: Latin-1 or ASCII, 2: UCS-2, 4: UCS-4), at most `max`
/// characters kept. Invalid code points become U+FFFD.
std::string python_decode_ucs(const unsigned char* data, size_t length,
                              int kind, size_t max);

} // namespace gpa::rt

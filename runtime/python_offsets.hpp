#pragma once

// Where CPython keeps what runtime/python_reader.cpp reads: the offsets of
// the fields of _PyRuntimeState, PyInterpreterState, PyThreadState, the
// frames, PyCodeObject, str and bytes, per version. 3.7 to 3.12 come from the
// table in python_offsets.cpp, measured with offsetof() against the headers
// of real interpreters (test/runtime/python_offsets_probe.py does it again
// in the tests, so the table is checked, not guessed). 3.13 publishes its
// own offsets at the start of _PyRuntime (_Py_DebugOffsets, cookie
// "xdebugpy"): python_layout_from_debug_offsets() reads them.

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace gpa::rt {

/// How a frame says where it is.
enum class python_frame_kind : uint8_t {
  /// 3.7-3.10: a PyFrameObject chain from tstate->frame, f_lasti.
  frame_object,
  /// 3.11-3.12: _PyInterpreterFrame from tstate->cframe->current_frame,
  /// prev_instr (the last instruction begun).
  interpreter_frame_cframe,
  /// 3.13+: _PyInterpreterFrame from tstate->current_frame, instr_ptr.
  interpreter_frame,
};

/// How a code object maps instructions to lines.
enum class python_line_table : uint8_t {
  /// 3.7-3.9 co_lnotab, f_lasti in bytes.
  lnotab,
  /// 3.10 co_linetable, f_lasti in code units.
  linetable310,
  /// 3.11+ co_linetable (the location table).
  location,
};

/// Offsets in bytes; `none` where a version does not have the field.
struct python_layout {
  static constexpr int64_t none = -1;
  int major = 3;
  int minor = 0;
  python_frame_kind frame_kind = python_frame_kind::frame_object;
  python_line_table line_table = python_line_table::lnotab;
  // _PyRuntimeState
  int64_t runtime_interpreters_head = none;
  /// gilstate.tstate_current: the thread state holding the GIL (<= 3.11).
  int64_t runtime_tstate_current = none;
  // PyInterpreterState
  int64_t interp_next = none;
  int64_t interp_tstate_head = none;
  /// _gil.locked and _gil.last_holder (3.12+).
  int64_t interp_gil_locked = none;
  int64_t interp_gil_holder = none;
  // PyThreadState
  int64_t tstate_next = none;
  int64_t tstate_interp = none;
  /// frame (<= 3.10), cframe (3.11-3.12), current_frame (3.13+).
  int64_t tstate_frame = none;
  /// _PyCFrame.current_frame (3.11-3.12).
  int64_t cframe_current_frame = none;
  int64_t tstate_thread_id = none;
  int64_t tstate_native_thread_id = none;
  /// datastack_chunk: the chunk that holds the thread's frames (3.11+).
  int64_t tstate_datastack_chunk = none;
  // the frame (PyFrameObject or _PyInterpreterFrame)
  int64_t frame_type = none;
  int64_t frame_back = none;
  int64_t frame_code = none;
  int64_t frame_lasti = none;
  int64_t frame_instr = none;
  int64_t frame_owner = none;
  // PyCodeObject
  int64_t code_type = none;
  /// ob_size: the number of code units (3.11+).
  int64_t code_size = none;
  int64_t code_filename = none;
  int64_t code_name = none;
  int64_t code_qualname = none;
  int64_t code_firstlineno = none;
  int64_t code_linetable = none;
  int64_t code_code_adaptive = none;
  // str
  int64_t unicode_type = none;
  int64_t unicode_length = none;
  int64_t unicode_state = none;
  int64_t unicode_ascii_size = none;
  int64_t unicode_compact_size = none;
  // bytes
  int64_t bytes_type = none;
  int64_t bytes_size = none;
  int64_t bytes_data = none;
};

/// The table's layout of 3.`minor`, or nullptr (3.7 to 3.12 are tabled).
const python_layout* python_table_layout(int minor);

/// The fields of `l` that the version has, named as
/// test/runtime/python_offsets_probe.py names them ("tstate.frame", ...).
std::vector<std::pair<std::string, int64_t>>
python_layout_fields(const python_layout& l);

/// The size of the part of _Py_DebugOffsets (3.13) that is read.
constexpr size_t python_debug_offsets_size
    = 8 + 8 + 8 + 3 * 8 + 13 * 8 + 9 * 8 + 6 * 8 + 10 * 8 + 2 * 8 + 4 * 8
      + 3 * 8 + 3 * 8 + 3 * 8 + 2 * 8 + 3 * 8 + 3 * 8 + 4 * 8 + 2 * 8;

/// The layout published by a 3.13 interpreter at the start of _PyRuntime
/// (`bytes`: at least python_debug_offsets_size bytes read from there).
/// Fails with a reason when the cookie is not "xdebugpy", the version is not
/// 3.13 (other versions lay the structure out differently), the build is
/// free-threaded or an offset is out of range.
bool python_layout_from_debug_offsets(const unsigned char* bytes, size_t size,
                                      python_layout& out, std::string& why);

} // namespace gpa::rt

namespace gpa::rt {

/// Where python_layout_from_debug_offsets() takes each field from in
/// _Py_DebugOffsets (3.13), named "debug.<section>.<field>" as the probe
/// names offsetof(_Py_DebugOffsets, <section>.<field>), plus "debug.size".
std::vector<std::pair<std::string, int64_t>> python_debug_offsets_fields();

} // namespace gpa::rt

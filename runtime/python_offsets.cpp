#include "runtime/python_offsets.hpp"

#include <cstring>

namespace gpa::rt {

namespace {

// Measured with test/runtime/python_offsets_probe.py against the headers of
// 3.7.16, 3.8.18, 3.9.18, 3.10.13, 3.11.7 (and Debian's 3.11.2) and 3.12.1
// (x86-64, LP64); the `real` tests measure them again.

python_layout common(int minor) {
  python_layout l;
  l.minor = minor;
  l.interp_next = 0;
  l.tstate_next = 8;
  l.tstate_interp = 16;
  l.code_type = 8;
  l.unicode_type = 8;
  l.unicode_length = 16;
  l.unicode_state = 32;
  l.unicode_ascii_size = 48;
  l.unicode_compact_size = 72;
  l.bytes_type = 8;
  l.bytes_size = 16;
  l.bytes_data = 32;
  return l;
}

python_layout frame_object_version(int minor) {
  auto l = common(minor);
  l.frame_kind = python_frame_kind::frame_object;
  l.line_table = minor >= 10 ? python_line_table::linetable310
                             : python_line_table::lnotab;
  l.runtime_interpreters_head = minor == 7 ? 24 : 32;
  l.runtime_tstate_current = minor == 7 ? 1480 : minor == 8 ? 1368 : 568;
  l.interp_tstate_head = 8;
  l.tstate_frame = 24;
  l.tstate_thread_id = 176;
  l.frame_type = 8;
  l.frame_back = 24;
  l.frame_code = 32;
  l.frame_lasti = minor >= 10 ? 96 : 104;
  l.code_filename = minor == 7 ? 96 : 104;
  l.code_name = minor == 7 ? 104 : 112;
  l.code_firstlineno = minor == 7 ? 36 : 40;
  l.code_linetable = minor == 7 ? 112 : 120;
  return l;
}

python_layout v311() {
  auto l = common(11);
  l.frame_kind = python_frame_kind::interpreter_frame_cframe;
  l.line_table = python_line_table::location;
  l.runtime_interpreters_head = 40;
  l.runtime_tstate_current = 576;
  l.interp_tstate_head = 16;
  l.tstate_frame = 56;
  l.cframe_current_frame = 8;
  l.tstate_thread_id = 152;
  l.tstate_native_thread_id = 160;
  l.tstate_datastack_chunk = 296;
  l.frame_back = 48;
  l.frame_code = 32;
  l.frame_instr = 56;
  l.frame_owner = 69;
  l.code_size = 16;
  l.code_filename = 112;
  l.code_name = 120;
  l.code_qualname = 128;
  l.code_firstlineno = 72;
  l.code_linetable = 136;
  l.code_code_adaptive = 184;
  return l;
}

python_layout v312() {
  auto l = common(12);
  l.frame_kind = python_frame_kind::interpreter_frame_cframe;
  l.line_table = python_line_table::location;
  l.runtime_interpreters_head = 40;
  l.interp_tstate_head = 72;
  l.interp_gil_locked = 1056;
  l.interp_gil_holder = 1048;
  l.tstate_frame = 56;
  l.cframe_current_frame = 0;
  l.tstate_thread_id = 136;
  l.tstate_native_thread_id = 144;
  l.tstate_datastack_chunk = 232;
  l.frame_back = 8;
  l.frame_code = 0;
  l.frame_instr = 56;
  l.frame_owner = 70;
  l.code_size = 16;
  l.code_filename = 112;
  l.code_name = 120;
  l.code_qualname = 128;
  l.code_firstlineno = 68;
  l.code_linetable = 136;
  l.code_code_adaptive = 192;
  l.unicode_ascii_size = 40;
  l.unicode_compact_size = 56;
  return l;
}

const python_layout tables[] = {
    frame_object_version(7),
    frame_object_version(8),
    frame_object_version(9),
    frame_object_version(10),
    v311(),
    v312(),
};

// _Py_DebugOffsets of 3.13: sections of uint64_t in this order.
struct debug_field {
  const char* name;
  size_t offset;
};

constexpr size_t dbg_runtime = 24;
constexpr size_t dbg_interp = 48;
constexpr size_t dbg_tstate = 152;
constexpr size_t dbg_frame = 224;
constexpr size_t dbg_code = 272;
constexpr size_t dbg_pyobject = 352;
constexpr size_t dbg_bytes = 512;
constexpr size_t dbg_unicode = 536;

const debug_field debug_fields[] = {
    {"debug.version", 8},
    {"debug.free_threaded", 16},
    {"debug.runtime_state.interpreters_head", dbg_runtime + 16},
    {"debug.interpreter_state.next", dbg_interp + 16},
    {"debug.interpreter_state.threads_head", dbg_interp + 24},
    {"debug.interpreter_state.gil_runtime_state_locked", dbg_interp + 88},
    {"debug.interpreter_state.gil_runtime_state_holder", dbg_interp + 96},
    {"debug.thread_state.next", dbg_tstate + 16},
    {"debug.thread_state.interp", dbg_tstate + 24},
    {"debug.thread_state.current_frame", dbg_tstate + 32},
    {"debug.thread_state.thread_id", dbg_tstate + 40},
    {"debug.thread_state.native_thread_id", dbg_tstate + 48},
    {"debug.thread_state.datastack_chunk", dbg_tstate + 56},
    {"debug.interpreter_frame.previous", dbg_frame + 8},
    {"debug.interpreter_frame.executable", dbg_frame + 16},
    {"debug.interpreter_frame.instr_ptr", dbg_frame + 24},
    {"debug.interpreter_frame.owner", dbg_frame + 40},
    {"debug.code_object.filename", dbg_code + 8},
    {"debug.code_object.name", dbg_code + 16},
    {"debug.code_object.qualname", dbg_code + 24},
    {"debug.code_object.linetable", dbg_code + 32},
    {"debug.code_object.firstlineno", dbg_code + 40},
    {"debug.code_object.co_code_adaptive", dbg_code + 72},
    {"debug.pyobject.ob_type", dbg_pyobject + 8},
    {"debug.bytes_object.ob_size", dbg_bytes + 8},
    {"debug.bytes_object.ob_sval", dbg_bytes + 16},
    {"debug.unicode_object.state", dbg_unicode + 8},
    {"debug.unicode_object.length", dbg_unicode + 16},
    {"debug.unicode_object.asciiobject_size", dbg_unicode + 24},
};

uint64_t u64_at(const unsigned char* p, size_t off) {
  uint64_t v;
  std::memcpy(&v, p + off, sizeof(v));
  return v;
}

} // namespace

const python_layout* python_table_layout(int minor) {
  for (auto& l : tables)
    if (l.minor == minor)
      return &l;
  return nullptr;
}

std::vector<std::pair<std::string, int64_t>>
python_layout_fields(const python_layout& l) {
  std::vector<std::pair<std::string, int64_t>> all = {
      {"runtime.interpreters_head", l.runtime_interpreters_head},
      {"runtime.tstate_current", l.runtime_tstate_current},
      {"interp.next", l.interp_next},
      {"interp.tstate_head", l.interp_tstate_head},
      {"interp.gil_locked", l.interp_gil_locked},
      {"interp.gil_holder", l.interp_gil_holder},
      {"tstate.next", l.tstate_next},
      {"tstate.interp", l.tstate_interp},
      {"tstate.frame", l.tstate_frame},
      {"cframe.current_frame", l.cframe_current_frame},
      {"tstate.thread_id", l.tstate_thread_id},
      {"tstate.native_thread_id", l.tstate_native_thread_id},
      {"tstate.datastack_chunk", l.tstate_datastack_chunk},
      {"frame.type", l.frame_type},
      {"frame.back", l.frame_back},
      {"frame.code", l.frame_code},
      {"frame.lasti", l.frame_lasti},
      {"frame.instr", l.frame_instr},
      {"frame.owner", l.frame_owner},
      {"code.type", l.code_type},
      {"code.size", l.code_size},
      {"code.filename", l.code_filename},
      {"code.name", l.code_name},
      {"code.qualname", l.code_qualname},
      {"code.firstlineno", l.code_firstlineno},
      {"code.linetable", l.code_linetable},
      {"code.code_adaptive", l.code_code_adaptive},
      {"unicode.type", l.unicode_type},
      {"unicode.length", l.unicode_length},
      {"unicode.state", l.unicode_state},
      {"unicode.ascii_size", l.unicode_ascii_size},
      {"unicode.compact_size", l.unicode_compact_size},
      {"bytes.type", l.bytes_type},
      {"bytes.size", l.bytes_size},
      {"bytes.data", l.bytes_data},
  };
  std::vector<std::pair<std::string, int64_t>> result;
  for (auto& f : all)
    if (f.second != python_layout::none)
      result.push_back(f);
  return result;
}

std::vector<std::pair<std::string, int64_t>> python_debug_offsets_fields() {
  std::vector<std::pair<std::string, int64_t>> result;
  result.emplace_back("debug.size",
                      static_cast<int64_t>(python_debug_offsets_size));
  for (auto& f : debug_fields)
    result.emplace_back(f.name, static_cast<int64_t>(f.offset));
  return result;
}

bool python_layout_from_debug_offsets(const unsigned char* bytes, size_t size,
                                      python_layout& out, std::string& why) {
  if (size < python_debug_offsets_size) {
    why = "short _Py_DebugOffsets";
    return false;
  }
  if (std::memcmp(bytes, "xdebugpy", 8) != 0) {
    why = "no _Py_DebugOffsets cookie (\"xdebugpy\") at _PyRuntime";
    return false;
  }
  auto field = [&](const char* name) {
    for (auto& f : debug_fields)
      if (std::strcmp(f.name, name) == 0)
        return u64_at(bytes, f.offset);
    return ~uint64_t{0};
  };
  uint64_t hex = field("debug.version");
  int major = static_cast<int>((hex >> 24) & 0xff);
  int minor = static_cast<int>((hex >> 16) & 0xff);
  if (major != 3 || minor != 13) {
    why = "_Py_DebugOffsets of Python " + std::to_string(major) + "."
          + std::to_string(minor)
          + ": only the 3.13 layout of _Py_DebugOffsets is known";
    return false;
  }
  if (field("debug.free_threaded") != 0) {
    why = "free-threaded (no-GIL) build of Python 3.13 is not supported";
    return false;
  }
  python_layout l;
  l.major = 3;
  l.minor = minor;
  l.frame_kind = python_frame_kind::interpreter_frame;
  l.line_table = python_line_table::location;
  // Each offset must be a plausible field offset, not garbage.
  bool ok = true;
  auto off = [&](const char* name) -> int64_t {
    uint64_t v = field(name);
    if (v > (1u << 16)) {
      ok = false;
      return python_layout::none;
    }
    return static_cast<int64_t>(v);
  };
  l.runtime_interpreters_head = off("debug.runtime_state.interpreters_head");
  l.interp_next = off("debug.interpreter_state.next");
  l.interp_tstate_head = off("debug.interpreter_state.threads_head");
  l.interp_gil_locked = off("debug.interpreter_state.gil_runtime_state_locked");
  l.interp_gil_holder = off("debug.interpreter_state.gil_runtime_state_holder");
  l.tstate_next = off("debug.thread_state.next");
  l.tstate_interp = off("debug.thread_state.interp");
  l.tstate_frame = off("debug.thread_state.current_frame");
  l.tstate_thread_id = off("debug.thread_state.thread_id");
  l.tstate_native_thread_id = off("debug.thread_state.native_thread_id");
  l.tstate_datastack_chunk = off("debug.thread_state.datastack_chunk");
  l.frame_back = off("debug.interpreter_frame.previous");
  l.frame_code = off("debug.interpreter_frame.executable");
  l.frame_instr = off("debug.interpreter_frame.instr_ptr");
  l.frame_owner = off("debug.interpreter_frame.owner");
  int64_t ob_type = off("debug.pyobject.ob_type");
  l.code_type = ob_type;
  l.unicode_type = ob_type;
  l.bytes_type = ob_type;
  // A code object is a PyVarObject: ob_size follows ob_type.
  l.code_size = ob_type + 8;
  l.code_filename = off("debug.code_object.filename");
  l.code_name = off("debug.code_object.name");
  l.code_qualname = off("debug.code_object.qualname");
  l.code_firstlineno = off("debug.code_object.firstlineno");
  l.code_linetable = off("debug.code_object.linetable");
  l.code_code_adaptive = off("debug.code_object.co_code_adaptive");
  l.unicode_state = off("debug.unicode_object.state");
  l.unicode_length = off("debug.unicode_object.length");
  l.unicode_ascii_size = off("debug.unicode_object.asciiobject_size");
  // PyCompactUnicodeObject adds utf8_length and utf8 (no wstr since 3.12).
  l.unicode_compact_size = l.unicode_ascii_size + 16;
  l.bytes_size = off("debug.bytes_object.ob_size");
  l.bytes_data = off("debug.bytes_object.ob_sval");
  if (!ok) {
    why = "_Py_DebugOffsets holds an offset out of range";
    return false;
  }
  out = l;
  return true;
}

} // namespace gpa::rt

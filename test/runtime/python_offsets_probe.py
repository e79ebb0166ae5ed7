#!/usr/bin/env python3
"""Prints the offsets of CPython's structures that runtime/python_offsets.cpp
tables, measured by the C compiler against the headers of a real
interpreter (its include/python3.X[m] directory, internal headers included
with Py_BUILD_CORE).

Usage: python_offsets_probe.py INCLUDE_DIR MINOR
Prints one "name value" line per field, for the fields of that version
(python_offsets.cpp names them the same). Exit status 1 when the probe does
not compile or run.
"""
import os
import subprocess
import sys
import tempfile

# name -> C expression, with the first minor version that has it and the
# last one (inclusive).
FIELDS = [
    # _PyRuntimeState
    ("runtime.interpreters_head", "offsetof(_PyRuntimeState, interpreters.head)", 7, 12),
    ("runtime.tstate_current", "offsetof(_PyRuntimeState, gilstate.tstate_current)", 7, 11),
    # PyInterpreterState
    ("interp.next", "offsetof(PyInterpreterState, next)", 7, 12),
    ("interp.tstate_head", "offsetof(PyInterpreterState, tstate_head)", 7, 10),
    ("interp.tstate_head", "offsetof(PyInterpreterState, threads.head)", 11, 12),
    ("interp.gil_locked", "offsetof(PyInterpreterState, _gil.locked)", 12, 12),
    ("interp.gil_holder", "offsetof(PyInterpreterState, _gil.last_holder)", 12, 12),
    # PyThreadState
    ("tstate.next", "offsetof(PyThreadState, next)", 7, 12),
    ("tstate.interp", "offsetof(PyThreadState, interp)", 7, 12),
    ("tstate.frame", "offsetof(PyThreadState, frame)", 7, 10),
    ("tstate.frame", "offsetof(PyThreadState, cframe)", 11, 12),
    ("cframe.current_frame", "offsetof(_PyCFrame, current_frame)", 11, 12),
    ("tstate.thread_id", "offsetof(PyThreadState, thread_id)", 7, 12),
    ("tstate.datastack_chunk", "offsetof(PyThreadState, datastack_chunk)", 11, 12),
    ("tstate.native_thread_id", "offsetof(PyThreadState, native_thread_id)", 11, 12),
    # PyFrameObject (3.7-3.10)
    ("frame.type", "offsetof(PyFrameObject, ob_base.ob_base.ob_type)", 7, 10),
    ("frame.back", "offsetof(PyFrameObject, f_back)", 7, 10),
    ("frame.code", "offsetof(PyFrameObject, f_code)", 7, 10),
    ("frame.lasti", "offsetof(PyFrameObject, f_lasti)", 7, 10),
    # _PyInterpreterFrame (3.11-3.12)
    ("frame.back", "offsetof(_PyInterpreterFrame, previous)", 11, 12),
    ("frame.code", "offsetof(_PyInterpreterFrame, f_code)", 11, 12),
    ("frame.instr", "offsetof(_PyInterpreterFrame, prev_instr)", 11, 12),
    ("frame.owner", "offsetof(_PyInterpreterFrame, owner)", 11, 12),
    # PyCodeObject
    ("code.type", "offsetof(PyCodeObject, ob_base.ob_type)", 7, 10),
    ("code.type", "offsetof(PyCodeObject, ob_base.ob_base.ob_type)", 11, 12),
    ("code.size", "offsetof(PyCodeObject, ob_base.ob_size)", 11, 12),
    ("code.filename", "offsetof(PyCodeObject, co_filename)", 7, 12),
    ("code.name", "offsetof(PyCodeObject, co_name)", 7, 12),
    ("code.qualname", "offsetof(PyCodeObject, co_qualname)", 11, 12),
    ("code.firstlineno", "offsetof(PyCodeObject, co_firstlineno)", 7, 12),
    ("code.linetable", "offsetof(PyCodeObject, co_lnotab)", 7, 9),
    ("code.linetable", "offsetof(PyCodeObject, co_linetable)", 10, 12),
    ("code.code_adaptive", "offsetof(PyCodeObject, co_code_adaptive)", 11, 12),
    # str and bytes
    ("unicode.type", "offsetof(PyASCIIObject, ob_base.ob_type)", 7, 12),
    ("unicode.length", "offsetof(PyASCIIObject, length)", 7, 12),
    ("unicode.state", "offsetof(PyASCIIObject, state)", 7, 12),
    ("unicode.ascii_size", "sizeof(PyASCIIObject)", 7, 12),
    ("unicode.compact_size", "sizeof(PyCompactUnicodeObject)", 7, 12),
    ("bytes.type", "offsetof(PyBytesObject, ob_base.ob_base.ob_type)", 7, 12),
    ("bytes.size", "offsetof(PyBytesObject, ob_base.ob_size)", 7, 12),
    ("bytes.data", "offsetof(PyBytesObject, ob_sval)", 7, 12),
    # _Py_DebugOffsets (3.13): where the reader takes each offset from
    ("debug.size", "sizeof(_Py_DebugOffsets)", 13, 13),
    ("debug.version", "offsetof(_Py_DebugOffsets, version)", 13, 13),
    ("debug.free_threaded", "offsetof(_Py_DebugOffsets, free_threaded)", 13, 13),
    ("debug.runtime_state.interpreters_head", "offsetof(_Py_DebugOffsets, runtime_state.interpreters_head)", 13, 13),
    ("debug.interpreter_state.next", "offsetof(_Py_DebugOffsets, interpreter_state.next)", 13, 13),
    ("debug.interpreter_state.threads_head", "offsetof(_Py_DebugOffsets, interpreter_state.threads_head)", 13, 13),
    ("debug.interpreter_state.gil_runtime_state_locked", "offsetof(_Py_DebugOffsets, interpreter_state.gil_runtime_state_locked)", 13, 13),
    ("debug.interpreter_state.gil_runtime_state_holder", "offsetof(_Py_DebugOffsets, interpreter_state.gil_runtime_state_holder)", 13, 13),
    ("debug.thread_state.next", "offsetof(_Py_DebugOffsets, thread_state.next)", 13, 13),
    ("debug.thread_state.interp", "offsetof(_Py_DebugOffsets, thread_state.interp)", 13, 13),
    ("debug.thread_state.current_frame", "offsetof(_Py_DebugOffsets, thread_state.current_frame)", 13, 13),
    ("debug.thread_state.thread_id", "offsetof(_Py_DebugOffsets, thread_state.thread_id)", 13, 13),
    ("debug.thread_state.native_thread_id", "offsetof(_Py_DebugOffsets, thread_state.native_thread_id)", 13, 13),
    ("debug.thread_state.datastack_chunk", "offsetof(_Py_DebugOffsets, thread_state.datastack_chunk)", 13, 13),
    ("debug.interpreter_frame.previous", "offsetof(_Py_DebugOffsets, interpreter_frame.previous)", 13, 13),
    ("debug.interpreter_frame.executable", "offsetof(_Py_DebugOffsets, interpreter_frame.executable)", 13, 13),
    ("debug.interpreter_frame.instr_ptr", "offsetof(_Py_DebugOffsets, interpreter_frame.instr_ptr)", 13, 13),
    ("debug.interpreter_frame.owner", "offsetof(_Py_DebugOffsets, interpreter_frame.owner)", 13, 13),
    ("debug.code_object.filename", "offsetof(_Py_DebugOffsets, code_object.filename)", 13, 13),
    ("debug.code_object.name", "offsetof(_Py_DebugOffsets, code_object.name)", 13, 13),
    ("debug.code_object.qualname", "offsetof(_Py_DebugOffsets, code_object.qualname)", 13, 13),
    ("debug.code_object.linetable", "offsetof(_Py_DebugOffsets, code_object.linetable)", 13, 13),
    ("debug.code_object.firstlineno", "offsetof(_Py_DebugOffsets, code_object.firstlineno)", 13, 13),
    ("debug.code_object.co_code_adaptive", "offsetof(_Py_DebugOffsets, code_object.co_code_adaptive)", 13, 13),
    ("debug.pyobject.ob_type", "offsetof(_Py_DebugOffsets, pyobject.ob_type)", 13, 13),
    ("debug.bytes_object.ob_size", "offsetof(_Py_DebugOffsets, bytes_object.ob_size)", 13, 13),
    ("debug.bytes_object.ob_sval", "offsetof(_Py_DebugOffsets, bytes_object.ob_sval)", 13, 13),
    ("debug.unicode_object.state", "offsetof(_Py_DebugOffsets, unicode_object.state)", 13, 13),
    ("debug.unicode_object.length", "offsetof(_Py_DebugOffsets, unicode_object.length)", 13, 13),
    ("debug.unicode_object.asciiobject_size", "offsetof(_Py_DebugOffsets, unicode_object.asciiobject_size)", 13, 13),
]

INCLUDES = {
    7: ["internal/pystate.h", "frameobject.h"],
    8: ["internal/pycore_pystate.h", "frameobject.h"],
    9: ["internal/pycore_interp.h", "internal/pycore_runtime.h", "frameobject.h"],
    10: ["internal/pycore_interp.h", "internal/pycore_runtime.h", "frameobject.h"],
    11: ["internal/pycore_interp.h", "internal/pycore_runtime.h", "internal/pycore_frame.h"],
    12: ["internal/pycore_interp.h", "internal/pycore_runtime.h", "internal/pycore_frame.h"],
    13: ["internal/pycore_runtime.h"],
}


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    include, minor = sys.argv[1], int(sys.argv[2])
    fields = [(n, e) for n, e, lo, hi in FIELDS if lo <= minor <= hi]
    src = ["#define Py_BUILD_CORE 1", "#include <stddef.h>", "#include <stdio.h>",
           '#include "Python.h"']
    src += ['#include "%s"' % h for h in INCLUDES[minor]]
    src.append("int main(void) {")
    for name, expr in fields:
        src.append('  printf("%%s %%zu\\n", "%s", (size_t)(%s));' % (name, expr))
    src.append("  return 0;\n}")
    with tempfile.TemporaryDirectory() as tmp:
        c = os.path.join(tmp, "probe.c")
        exe = os.path.join(tmp, "probe")
        with open(c, "w") as f:
            f.write("\n".join(src) + "\n")
        cc = os.environ.get("CC", "cc")
        r = subprocess.run([cc, "-w", "-I", include, "-I", os.path.join(include, "internal"),
                            c, "-o", exe], capture_output=True, text=True)
        if r.returncode != 0:
            sys.stderr.write(r.stderr[-4000:])
            return 1
        r = subprocess.run([exe], capture_output=True, text=True)
        sys.stdout.write(r.stdout)
        return r.returncode


if __name__ == "__main__":
    sys.exit(main())

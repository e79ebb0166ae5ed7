#!/usr/bin/env bash
# CPU the agent costs per window with 1, 10 and 50 Python processes at 11 and
# 100 Hz, with the built-in Python profiler and with perf alone, same run (as
# root); then the reader's microseconds per sample for each CPython on the
# machine.
# Usage: scripts/bench-python.sh [DURATION_S] [COUNTS] [FREQUENCIES]
#        (default 20 "1,10,50" "11,100"). GPA_AGENT runs another binary.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
gpa_ensure_packages "${GPA_BUILD_PACKAGES[@]}" "${GPA_TEST_PACKAGES[@]}"
if [ -z "${GPA_AGENT:-}" ]; then
  gpa_build gprofiler-agent bench_python_reader
fi
python3 "$GPA_ROOT/test/bench/python_cpu.py" "${GPA_AGENT:-$GPA_BUILD/gprofiler-agent}" \
  "$GPA_BUILD/bench/python" "${1:-20}" "${2:-1,10,50}" "${3:-11,100}"
exec "$GPA_BUILD/test/bench_python_reader"

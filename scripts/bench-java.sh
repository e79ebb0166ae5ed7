#!/usr/bin/env bash
# CPU the agent costs per window with 1, 10 and 100 Java processes, with the
# Java runtime profiler and with perf alone, same run (as root).
# Usage: scripts/bench-java.sh [DURATION_S] [COUNTS]   (default 20 "1,10,100")
# GPA_AGENT runs another binary.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
gpa_ensure_packages "${GPA_BUILD_PACKAGES[@]}" "${GPA_TEST_PACKAGES[@]}"
if [ -z "${GPA_AGENT:-}" ]; then
  gpa_build gprofiler-agent
fi
exec python3 "$GPA_ROOT/test/bench/java_cpu.py" "${GPA_AGENT:-$GPA_BUILD/gprofiler-agent}" \
  "$GPA_BUILD/bench/java" "${1:-20}" "${2:-1,10,100}"

#!/usr/bin/env bash
# Peak RSS, CPU and wall time of `gprofiler-agent flamegraph` on a large
# .col made from the collapse goldens' real stacks (written once into
# build/bench/). Usage: scripts/bench-flamegraph-memory.sh [SIZE_MB]
# (default 1024). GPA_AGENT runs another binary.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
gpa_ensure_packages "${GPA_BUILD_PACKAGES[@]}"
if [ -z "${GPA_AGENT:-}" ]; then
  gpa_build gprofiler-agent
fi
exec python3 "$GPA_ROOT/test/bench/flamegraph_memory.py" "${GPA_AGENT:-$GPA_BUILD/gprofiler-agent}" \
  "$GPA_BUILD/bench" "${1:-1024}"

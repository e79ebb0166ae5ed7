#!/usr/bin/env bash
# Spawn-and-reap benchmark of the process reaper (real processes):
#   scripts/bench-reaper.sh [exits] [kills] [concurrency]
# Prints throughput and the descriptor and child counts before and after.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
gpa_ensure_packages "${GPA_BUILD_PACKAGES[@]}"
gpa_build
exec "$GPA_BUILD/test/bench_reaper" "$@"

#!/usr/bin/env bash
# Flame-graph page benchmark: generates a 50,000-stack .col (once, in
# build/bench/), renders it with gprofiler-agent, and measures in headless
# chromium the time from navigation start until the flame graph is drawn.
# Installs what is missing and builds only the agent. Usage:
#   scripts/bench-flamegraph.sh [STACKS] [RUNS]      (defaults: 50000 5)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
gpa_ensure_packages "${GPA_BUILD_PACKAGES[@]}" chromium
gpa_build gprofiler-agent browser_npm
NODE_PATH="$GPA_BUILD/test/browser-npm/node_modules" exec node "$GPA_ROOT/test/bench/flamegraph_bench.js" "$GPA_BUILD/gprofiler-agent" \
  "$GPA_BUILD/bench" "${1:-50000}" "${2:-5}"

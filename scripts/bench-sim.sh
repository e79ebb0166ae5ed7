#!/usr/bin/env bash
# Wall time of the deterministic simulation's 30-day run (43,200 one-minute
# snapshots with random faults), with its snapshot, fault and invariant-check
# counts:  scripts/bench-sim.sh [seed]
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
gpa_ensure_packages "${GPA_BUILD_PACKAGES[@]}"
gpa_build
if [ $# -gt 0 ]; then
  export GPA_SIM_SEED="$1"
fi
start=$EPOCHREALTIME
"$GPA_BUILD/test/test_app" --run_test=whole_agent/thirty_days_with_random_faults \
  --log_level=message --color_output=no
awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "wall time of the whole run: %.1f s\n", b - a }'

#!/usr/bin/env bash
# Benchmarks the perf script converter (docs/performance.md, "Collapsing perf
# script output"). As root: records the host for 5 s while CPU-bound programs
# with varied stacks run (tests' hot.cpp, a Java spinner with its perf map,
# gzip, sort), turns the recording into perf script text, concatenates copies
# of it with renumbered pids into a file of at least MIN_MB MB under build/,
# then runs build/test/bench_collapse on it (converter, gzip -1, perf script).
#
#   sudo scripts/bench-collapse.sh [MIN_MB]     (default 600)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${GPA_BUILD:-$ROOT/build}"
MIN_MB="${1:-600}"
OUT="$BUILD/bench-collapse"
SRC="$ROOT/test/data/perf/src"
mkdir -p "$OUT"

source "$ROOT/scripts/common.sh"
gpa_build bench_collapse bench_snapshot

if [ ! -s "$OUT/host.txt" ] || [ "${RERECORD:-0}" = 1 ]; then
  g++ -O1 -g -fno-omit-frame-pointer -pthread -o "$OUT/hot_fp" "$SRC/hot.cpp"
  cp "$SRC/Spin.java" "$OUT/" && (cd "$OUT" && javac Spin.java)
  pids=()
  "$OUT/hot_fp" 9 >/dev/null & pids+=($!)
  java -XX:+PreserveFramePointer -cp "$OUT" Spin 9 >/dev/null & JPID=$!
  pids+=("$JPID")
  (end=$((SECONDS + 8)); while [ $SECONDS -lt $end ]; do
     gzip -6 -c /usr/bin/perf >/dev/null; done) & pids+=($!)
  (end=$((SECONDS + 8)); while [ $SECONDS -lt $end ]; do
     sort -R /usr/share/dict/words 2>/dev/null >/dev/null || seq 200000 | sort -R >/dev/null; done) & pids+=($!)
  sleep 2
  jcmd "$JPID" Compiler.perfmap >/dev/null || true
  perf record -q -e cpu-clock -F 999 -g -a -o "$OUT/host.data" -- sleep 5
  wait "${pids[@]}" || true
  perf script -F +pid -i "$OUT/host.data" >"$OUT/host.txt" 2>/dev/null
  rm -f "/tmp/perf-$JPID.map"
fi

"$BUILD/test/bench_collapse" generate "$OUT/big.txt" "$MIN_MB" 32 "$OUT/host.txt"
"$BUILD/test/bench_collapse" run "$OUT/big.txt" "$OUT/host.data"
echo
echo "== the whole processing of a snapshot after perf script =="
"$BUILD/test/bench_snapshot" "$OUT/big.txt" 100000

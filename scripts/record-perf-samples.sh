#!/usr/bin/env bash
# Records the perf script samples of test/data/perf on this machine (root,
# perf with software events, g++, OpenJDK 17). Each sample is trimmed by
# whole records to stay small. Re-run it only to refresh the samples, then
# run scripts/regen-golden.sh and review the diff of the .expected files.
#
#   sudo scripts/record-perf-samples.sh [OUTDIR]   (default test/data/perf)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/test/data/perf}"
SRC="$ROOT/test/data/perf/src"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
MAX_BYTES="${MAX_BYTES:-200000}"

# Keeps whole records (blank-line separated) of stdin while the output stays
# under MAX_BYTES (reading all of it, so the writer never gets SIGPIPE); with a comm regex as $1, keeps only records whose header
# starts with it.
trim() {
  awk -v max="$MAX_BYTES" -v want="${1:-}" '
    BEGIN { RS = ""; ORS = "\n\n"; total = 0; full = 0 }
    full || (want != "" && $0 !~ ("^" want)) { next }
    { n = length($0) + 2; if (total + n > max) { full = 1; next }
      total += n; print }'
}

g++ -O1 -g -fno-omit-frame-pointer -pthread -o "$WORK/hot_fp" "$SRC/hot.cpp"
g++ -O1 -g -fomit-frame-pointer -pthread -o "$WORK/hot_nofp" "$SRC/hot.cpp"

# Frame-pointer stacks of the whole host while hot_fp runs: user, kernel and
# [unknown] frames, comms with spaces and a semicolon ("my;app 3").
"$WORK/hot_fp" 3 >/dev/null &
sleep 0.5
perf record -q -e cpu-clock -F 999 -g -a -o "$WORK/fp.data" -- sleep 1
wait
perf script -F +pid -i "$WORK/fp.data" 2>/dev/null | trim >"$OUT/fp_host.txt"

# Kernel-only stacks: the idle task (swapper, when a CPU is idle) and kernel
# threads of a host recording.
perf record -q -e cpu-clock -F 999 -g -a -o "$WORK/idle.data" -- sleep 3
perf script -F +pid -i "$WORK/idle.data" 2>/dev/null \
  | trim '(swapper|kworker|kdamond|rcu_|ksoftirqd|migration|kswapd|jbd2)' \
    >"$OUT/kernel_idle.txt"

# DWARF stacks of a program built without frame pointers.
perf record -q -e cpu-clock -F 499 --call-graph dwarf -o "$WORK/dwarf.data" \
  -- "$WORK/hot_nofp" 1 >/dev/null
perf script -F +pid -i "$WORK/dwarf.data" 2>/dev/null | trim >"$OUT/dwarf_hot.txt"

# The same program with frame-pointer unwinding: mostly [unknown] callers.
perf record -q -e cpu-clock -F 499 -g -o "$WORK/nofp.data" \
  -- "$WORK/hot_nofp" 1 >/dev/null
perf script -F +pid -i "$WORK/nofp.data" 2>/dev/null | trim >"$OUT/unknown_nofp.txt"

# JIT frames: a spinning Java class, its perf map written by the JDK.
cp "$SRC/Spin.java" "$WORK/"
(cd "$WORK" && javac Spin.java)
java -XX:+PreserveFramePointer -XX:CompileCommand=quiet \
  -XX:CompileCommand=dontinline,Spin::* -cp "$WORK" Spin 6 >/dev/null &
JPID=$!
sleep 3
jcmd "$JPID" Compiler.perfmap >/dev/null
perf record -q -e cpu-clock -F 499 -g -p "$JPID" -o "$WORK/java.data" -- sleep 1
wait "$JPID" || true
perf script -F +pid -i "$WORK/java.data" 2>/dev/null | trim >"$OUT/java_jit.txt"
rm -f "/tmp/perf-$JPID.map"

# A truncated last record: fp_host.txt cut in the middle of a frame line of
# its last record (what a killed perf script leaves).
head -c "$(($(wc -c <"$OUT/fp_host.txt") - 40))" "$OUT/fp_host.txt" \
  >"$OUT/truncated.txt"

ls -l "$OUT"/*.txt

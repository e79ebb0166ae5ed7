#!/usr/bin/env bash
# The converter as users run it, on diverse recordings (issue 18's honest
# figure; docs/performance.md, "collapse-perf, whole process"). As root:
# records the host for 6 s at 999 Hz with call graphs during each of several
# different workloads (Debian's python3 without frame pointers, Node.js, a
# JVM, g++ compiling, xz and sort), one perf script file each (no copies,
# pids as recorded), then times `gprofiler-agent collapse-perf FILE` next to
# `gzip -1 -c FILE` on each (test/bench/collapse_whole.py).
#
#   sudo scripts/bench-collapse-whole.sh [RUNS]      (default 3)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${GPA_BUILD:-$ROOT/build}"
RUNS="${1:-3}"
OUT="$BUILD/bench-collapse-whole"
mkdir -p "$OUT"

source "$ROOT/scripts/common.sh"
gpa_build gprofiler-agent

# record NAME COMMAND...: runs the workload, records the host meanwhile.
record() {
  local name="$1"
  shift
  [ -s "$OUT/$name.txt" ] && [ "${RERECORD:-0}" != 1 ] && return
  "$@" >/dev/null 2>&1 &
  local pid=$!
  sleep 1
  perf record -q -e cpu-clock -F 999 -g -a -o "$OUT/$name.data" -- sleep 6 2>/dev/null
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  perf script -F +pid -i "$OUT/$name.data" >"$OUT/$name.txt" 2>/dev/null
  rm -f "$OUT/$name.data"
}

work() { # runs "$@" in a loop for 9 s
  local end=$((SECONDS + 9))
  while [ $SECONDS -lt $end ]; do "$@"; done
}
export -f work

record python bash -c 'work /usr/bin/python3 -c "
import json, re
def parse(n):
    return [json.loads(json.dumps({\"k\": i, \"v\": [str(i)] * 8})) for i in range(n)]
for _ in range(40):
    parse(2000); re.findall(r\"[a-z]+\", \"lorem ipsum dolor \" * 2000)
"'
record node bash -c 'work node -e "
let m = new Map();
for (let i = 0; i < 3e6; i++) { m.set(\"k\" + (i % 50000), JSON.stringify({i, s: [i, i * 2]})); }
"'
cat >"$OUT/Work.java" <<'JAVA'
import java.util.*;
public class Work {
  public static void main(String[] a) {
    long end = System.currentTimeMillis() + 9000;
    Random r = new Random(1);
    while (System.currentTimeMillis() < end) {
      TreeMap<String, List<Integer>> m = new TreeMap<>();
      for (int i = 0; i < 200000; i++)
        m.computeIfAbsent(Integer.toHexString(r.nextInt(50000)), k -> new ArrayList<>()).add(i);
      StringBuilder b = new StringBuilder();
      for (var e : m.entrySet()) b.append(e.getKey()).append(e.getValue().size());
      if (b.length() == 42) System.out.println(b);
    }
  }
}
JAVA
(cd "$OUT" && [ -s Work.class ] || javac Work.java)
record java java -cp "$OUT" Work
record gcc bash -c "work g++ -O2 -std=c++17 -I$ROOT -fsyntax-only $ROOT/format/collapse.cpp"
record xz_sort bash -c 'work sh -c "xz -6 -c /usr/bin/perf >/dev/null; seq 300000 | sort -R >/dev/null"'

python3 "$ROOT/test/bench/collapse_whole.py" "$BUILD/gprofiler-agent" "$RUNS" \
  "$OUT"/python.txt "$OUT"/node.txt "$OUT"/java.txt "$OUT"/gcc.txt "$OUT"/xz_sort.txt

#!/usr/bin/env bash
# Soak benchmark: runs the built agent for a while and watches its footprint
# from the outside, through /proc, every 2 seconds: the main process's RSS,
# open descriptors, threads and live descendants (plus the RSS of the whole
# tree). Prints one table row per sample, then a summary: RSS after warm-up,
# min/max, the least-squares slope in KB/min, and whether the descriptor,
# thread and child counts stayed identical.
#
#   scripts/bench-soak.sh [minutes] [agent args...]
#
# minutes: run time, may be fractional (default 10). Agent args default to
#   -c -d 2 -o <tmpdir> --pid-file '' --log-file ''
# With the default arguments it samples at each snapshot: right after each new
# profile is written (when no tool of the next window runs yet), so the counts
# are comparable from one snapshot to the next. With other arguments it
# samples on a timer.
# Environment: GPA_SOAK_INTERVAL (whole seconds between samples, default 2),
# GPA_SOAK_WARMUP (seconds left out of the summary, default: a quarter of the
# run, at most 60), GPA_AGENT (the binary, default build/gprofiler-agent,
# built if missing), GPA_SOAK_CSV (also write the samples there).
# Exit status: 0, or 1 if the agent died during the run.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${GPA_BUILD:-$root/build}"
agent="${GPA_AGENT:-$build/gprofiler-agent}"
minutes="${1:-10}"
[ $# -gt 0 ] && shift
interval="${GPA_SOAK_INTERVAL:-2}"

if ! [[ "$minutes" =~ ^[0-9]+([.][0-9]+)?$ ]]; then
  echo "usage: $0 [minutes] [agent args...]  (minutes: a number, got '$minutes')" >&2
  exit 2
fi
duration=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 + 0.5 }')
warmup="${GPA_SOAK_WARMUP:-$(awk -v d="$duration" 'BEGIN { w = int(d / 4); print (w > 60 ? 60 : w) }')}"

if [ ! -x "$agent" ]; then
  echo "building $agent ..." >&2
  source "$root/scripts/common.sh"
  gpa_build gprofiler-agent
fi

workdir="$(mktemp -d /tmp/gpa-soak.XXXXXX)"
at_snapshot=0
if [ $# -eq 0 ]; then
  mkdir -p "$workdir/out"
  set -- -c -d 2 -o "$workdir/out" --pid-file '' --log-file ''
  at_snapshot=1
fi
samples="$workdir/samples.tsv"
log="$workdir/agent.log"

# -- the agent -------------------------------------------------------------------
"$agent" "$@" >"$log" 2>&1 &
pid=$!
# shellcheck disable=SC2317 # called from the EXIT trap
stop_agent() {
  if kill -0 "$pid" 2>/dev/null; then
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
trap 'stop_agent; rm -rf "$workdir"' EXIT
trap 'exit 130' INT TERM

clk_tck=$(getconf CLK_TCK)

# Prints "rss_kb fds threads children tree_rss_kb cpu_ticks" for $pid, or
# nothing if it is gone. The process name in /proc/<pid>/stat may contain
# anything, so its fields are taken after the last ") ".
sample() {
  local status rss threads stat fields fds children tree
  status="$(cat "/proc/$pid/status" 2>/dev/null)" || return 1
  rss=$(awk '/^VmRSS:/ { print $2 }' <<<"$status")
  threads=$(awk '/^Threads:/ { print $2 }' <<<"$status")
  stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  read -r -a fields <<<"$stat"
  fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  # Descendants through ppid links, and their RSS (ps prints no names here).
  read -r children tree < <(ps -e -o pid=,ppid=,rss= | awk -v root="$pid" '
    { ppid[$1] = $2; rss[$1] = $3 }
    END {
      n = 0; sum = 0
      for (p in ppid) {
        q = p; hops = 0
        while (q in ppid && q != root && q > 1 && hops < 4096) { q = ppid[q]; hops++ }
        if (q == root && p != root) { n++; sum += rss[p] }
      }
      print n, sum
    }')
  echo "$rss $fds $threads $children $((rss + tree)) $((fields[11] + fields[12]))"
}

printf '%8s %10s %6s %8s %9s %12s\n' t_s rss_kb fds threads children tree_rss_kb
: >"$samples"
start=$EPOCHREALTIME
next=0
died=0
while :; do
  now=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
  if ! line=$(sample); then
    died=1
    break
  fi
  read -r rss fds threads children tree ticks <<<"$line"
  printf '%8s %10s %6s %8s %9s %12s\n' "$now" "$rss" "$fds" "$threads" "$children" "$tree"
  echo "$now $rss $fds $threads $children $tree $ticks" >>"$samples"
  if [ "$at_snapshot" -eq 1 ]; then
    # Wait for the next profile (the last_profile.col link moves).
    last="$(readlink "$workdir/out/last_profile.col" 2>/dev/null || true)"
    while :; do
      sleep 0.1
      elapsed=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", b - a }')
      [ "$elapsed" -gt "$duration" ] && break 2
      kill -0 "$pid" 2>/dev/null || break
      cur="$(readlink "$workdir/out/last_profile.col" 2>/dev/null || true)"
      [ -n "$cur" ] && [ "$cur" != "$last" ] && break
    done
    continue
  fi
  next=$((next + interval))
  [ "$next" -gt "$duration" ] && break
  wait_s=$(awk -v a="$start" -v b="$EPOCHREALTIME" -v n="$next" 'BEGIN { w = n - (b - a); printf "%.3f", (w > 0 ? w : 0) }')
  sleep "$wait_s"
done

# -- summary ---------------------------------------------------------------------
echo
if [ "$died" -eq 1 ]; then
  echo "the agent (PID $pid) exited during the run; its output:"
  tail -n 20 "$log"
fi
[ -n "${GPA_SOAK_CSV:-}" ] && tr ' ' ',' <"$samples" | sed '1i t_s,rss_kb,fds,threads,children,tree_rss_kb,cpu_ticks' >"$GPA_SOAK_CSV"
GPA_SOAK_AGENT="$agent" GPA_SOAK_ARGS="$(printf '%q ' "$@")" awk -v warm="$warmup" -v tck="$clk_tck" '
  {
    n_all++
    if (n_all == 1) { t_first = $1; ticks_first = $7 }
    t_last = $1; ticks_last = $7
    if ($1 < warm) next
    n++
    t[n] = $1; r[n] = $2
    if (n == 1) { rmin = rmax = $2; r_first = $2 }
    if ($2 < rmin) rmin = $2
    if ($2 > rmax) rmax = $2
    fd[$3]++; th[$4]++; ch[$5]++
  }
  function values(a,   k, s) { s = ""; for (k in a) s = s (s == "" ? "" : ",") k; return s }
  function count(a,   k, c) { c = 0; for (k in a) c++; return c }
  END {
    print "agent:             " ENVIRON["GPA_SOAK_AGENT"] " " ENVIRON["GPA_SOAK_ARGS"]
    printf "samples:           %d (%d after a warm-up of %d s)\n", n_all, n, warm
    if (n == 0) { print "no samples after warm-up: run longer"; exit }
    # Least squares over the samples after warm-up, x in minutes.
    sx = sy = sxx = sxy = 0
    for (i = 1; i <= n; i++) { x = t[i] / 60; sx += x; sy += r[i]; sxx += x * x; sxy += x * r[i] }
    den = n * sxx - sx * sx
    slope = den > 0 ? (n * sxy - sx * sy) / den : 0
    printf "RSS after warm-up: %d KB (%.1f MB); at the end: %d KB\n", r_first, r_first / 1024, r[n]
    printf "RSS min/max:       %d / %d KB (spread %d KB)\n", rmin, rmax, rmax - rmin
    printf "RSS slope:         %+.1f KB/min (least squares over %.1f min)\n", slope, (t[n] - t[1]) / 60
    printf "FDs constant:      %s (%s)\n", count(fd) == 1 ? "yes" : "NO", values(fd)
    printf "threads constant:  %s (%s)\n", count(th) == 1 ? "yes" : "NO", values(th)
    printf "children constant: %s (%s)\n", count(ch) == 1 ? "yes" : "NO", values(ch)
    if (t_last > t_first)
      printf "CPU:               %.2f s in %.0f s (%.2f %% of one core)\n", (ticks_last - ticks_first) / tck, t_last - t_first, 100 * (ticks_last - ticks_first) / tck / (t_last - t_first)
  }' "$samples"
exit "$died"

#!/usr/bin/env python3
"""Times `gprofiler-agent collapse-perf FILE` as users run it (the whole
process: start-up, dynamic linking, reading the file, writing the folded
stacks to a pipe that is drained) next to `gzip -1 -c FILE` on the same
files, in the same run, alternating, best of N runs each.

Usage: collapse_whole.py AGENT RUNS FILE...
Prints one line per file and the total, with the ratio agent / gzip.
"""
import os
import resource
import subprocess
import sys
import time


def timed(argv):
    """Wall and CPU (user + system) seconds of one run of argv, output
    drained and dropped."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(os.devnull, "wb") as null:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=null, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, len(proc.stdout)


def best(argv, runs):
    results = [timed(argv) for _ in range(runs)]
    return min(r[0] for r in results), min(r[1] for r in results), results[0][2]


def main():
    agent, runs, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    total = {"agent": [0.0, 0.0], "gzip": [0.0, 0.0]}
    size_total = 0
    print(f"{'file':<28} {'MB':>7} {'collapse-perf s':>15} {'gzip -1 s':>10} "
          f"{'ratio':>6} {'MB/s':>7} {'out MB':>7}")
    for path in files:
        size = os.path.getsize(path)
        size_total += size
        # Warm the page cache once for both.
        with open(path, "rb") as f:
            while f.read(1 << 24):
                pass
        a_wall, a_cpu, out = best([agent, "collapse-perf", path], runs)
        g_wall, g_cpu, _ = best(["gzip", "-1", "-c", path], runs)
        total["agent"][0] += a_wall
        total["agent"][1] += a_cpu
        total["gzip"][0] += g_wall
        total["gzip"][1] += g_cpu
        print(f"{os.path.basename(path):<28} {size / 1e6:7.1f} {a_wall:15.3f} {g_wall:10.3f} "
              f"{a_wall / g_wall:6.3f} {size / 1e6 / a_wall:7.0f} {out / 1e6:7.1f}")
    a, g = total["agent"], total["gzip"]
    print(f"{'total':<28} {size_total / 1e6:7.1f} {a[0]:15.3f} {g[0]:10.3f} "
          f"{a[0] / g[0]:6.3f} {size_total / 1e6 / a[0]:7.0f}")
    print(f"CPU seconds: collapse-perf {a[1]:.3f}, gzip -1 {g[1]:.3f} "
          f"(ratio {a[1] / g[1]:.3f}); best of {runs} runs each, wall clock")


if __name__ == "__main__":
    main()

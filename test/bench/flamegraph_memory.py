#!/usr/bin/env python3
"""Peak memory of `gprofiler-agent flamegraph` on a large .col.

Writes (once) a .col of about SIZE_MB from the collapse goldens' real stacks:
each copy puts them in one of 4 containers, renames the comm to one of 10
processes and adds one of 10 leaf frames, so the file holds 4*10*10 variants
of ~600 real stacks (about 250,000 distinct stacks at 1 GB; later copies
repeat earlier ones). Then renders it once and prints the process's peak RSS,
CPU and wall time, as the whole process a user runs (start-up and I/O
included).

Usage: flamegraph_memory.py AGENT WORKDIR [SIZE_MB]   (default 1024)
"""
import glob
import os
import random
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def generate(path, target):
    stacks = []
    for name in sorted(glob.glob(os.path.join(ROOT, "test/data/perf/*.expected"))):
        with open(name) as f:
            for line in f:
                s, _, n = line.rstrip("\n").rpartition(" ")
                if s and n.isdigit():
                    stacks.append(s)
    with open(os.path.join(ROOT, "test/data/flamegraph.col")) as f:
        header = f.readline()
    rng = random.Random(12)
    size = 0
    with open(path + ".part", "w") as out:
        out.write(header)
        while size < target:
            c, p, leaf = rng.randrange(4), rng.randrange(10), rng.randrange(10)
            chunk = []
            for s in stacks:
                comm, _, frames = s.partition(";")
                chunk.append(f"0;ctr-{c};{comm}-{p};{frames};leaf_{leaf} "
                             f"{rng.randrange(1, 50)}\n")
            text = "".join(chunk)
            out.write(text)
            size += len(text)
    os.rename(path + ".part", path)


def main():
    agent, work = sys.argv[1], sys.argv[2]
    size_mb = int(sys.argv[3]) if len(sys.argv) > 3 else 1024
    os.makedirs(work, exist_ok=True)
    col = os.path.join(work, f"big-{size_mb}mb.col")
    if not os.path.exists(col):
        print(f"writing {col} ...", flush=True)
        generate(col, size_mb << 20)
    with open(col) as f:
        lines = sum(1 for _ in f)
    page = os.path.join(work, "big.html")
    start = time.monotonic()
    with open(page, "w") as out:
        r = subprocess.run([agent, "flamegraph", col], stdout=out)
    wall = time.monotonic() - start
    if r.returncode != 0:
        sys.exit(f"flamegraph exited {r.returncode}")
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"input:     {col}: {os.path.getsize(col) / 2**20:.0f} MB, {lines} lines")
    print(f"page:      {os.path.getsize(page) / 2**20:.1f} MB")
    print(f"peak RSS:  {ru.ru_maxrss} kB")
    print(f"CPU:       {ru.ru_utime:.1f} s user, {ru.ru_stime:.1f} s system")
    print(f"wall:      {wall:.1f} s")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""CPU the agent costs per window with 1, 10 and 50 Python processes at 11 Hz
and 100 Hz: with the Python profiler (the built-in CPython reader) and with
perf alone (--no-python), in the same run, and the Python profiler alone
(--perf-mode disabled), with the reads it made in the window and the
microseconds each took (from its debug log: the time its thread spent
reading, over the reads).

Each Python process (Debian's python3, or PYTHON) runs three threads with
stacks 12 frames deep, each busy 0.5 ms in every 100 ms (about 1.5 % of a
CPU per process, so that 50 of them leave this 2-core machine room), the
rest of the time asleep. For each count and frequency the agent
runs one window of DURATION seconds as root; its CPU is user + system time
of the agent and every child it started (perf record, perf script), from the
kernel's rusage of the finished process tree.

Usage: python_cpu.py AGENT WORKDIR [DURATION] [COUNTS] [FREQUENCIES]
       (defaults: 20 s, "1,10,50", "11,100")
"""
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

TARGET = """
import threading, time

def work(depth):
    if depth > 0:
        return work(depth - 1)
    end = time.perf_counter() + 0.0005
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n

def loop():
    while True:
        work(10)
        time.sleep(0.1)

for _ in range(3):
    threading.Thread(target=loop, daemon=True).start()
print("ready", flush=True)
time.sleep(3600)
"""


WINDOW_LINE = re.compile(r"window \d+: (\d+) process\(es\), (\d+) reads, (\d+) stacks "
                         r"counted, (\d+) torn, (\d+) ticks lost, ([0-9.]+) s reading")


def agent_cpu(agent, out, duration, extra):
    """Runs one window; returns (cpu seconds of the agent's tree, the Python
    profiler's window line of its debug log as a tuple, or None)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPROFILER_")}
    env["GPA_DEFAULT_CONFIG"] = ""
    r = subprocess.run([agent, "-o", out, "-d", str(duration), "--pid-file", "",
                        "--log-file", "", "-v"] + extra, check=True, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    m = WINDOW_LINE.search(r.stdout)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, (tuple(float(x) for x in m.groups()) if m else None)


def main():
    agent = os.path.abspath(sys.argv[1])
    work = sys.argv[2]
    duration = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    counts = [int(c) for c in (sys.argv[4] if len(sys.argv) > 4 else "1,10,50").split(",")]
    freqs = [int(c) for c in (sys.argv[5] if len(sys.argv) > 5 else "11,100").split(",")]
    python = os.environ.get("PYTHON", "/usr/bin/python3")
    os.makedirs(work, exist_ok=True)
    script = os.path.join(work, "target.py")
    with open(script, "w") as f:
        f.write(TARGET)
    version = subprocess.run([python, "-V"], capture_output=True, text=True).stdout.strip()
    print(f"window {duration} s, targets: {version}, 3 threads each, ~1.5 % CPU each; "
          f"CPU = user+system of the agent and all its children over one window")
    print(f"{'procs':>5} {'Hz':>4} {'perf + python':>14} {'perf alone':>11} "
          f"{'python part':>12} {'python alone':>13} {'reads':>8} {'us/read':>8}")
    procs = []
    try:
        for n in counts:
            while len(procs) < n:
                p = subprocess.Popen([python, script], stdout=subprocess.PIPE)
                p.stdout.readline()
                procs.append(p)
            pids = ",".join(str(p.pid) for p in procs)
            for hz in freqs:
                out = tempfile.mkdtemp(dir=work)
                common = ["-f", str(hz), "--pids", pids]
                both, _ = agent_cpu(agent, out, duration, common)
                alone, _ = agent_cpu(agent, out, duration, common + ["--no-python"])
                python_only, w = agent_cpu(agent, out, duration,
                                           common + ["--perf-mode", "disabled"])
                reads, per_read = "?", "?"
                if w:
                    reads = f"{int(w[1])}"
                    per_read = f"{w[5] / max(w[1], 1) * 1e6:.1f}"
                print(f"{n:>5} {hz:>4} {both:>12.2f} s {alone:>9.2f} s {both - alone:>10.2f} s "
                      f"{python_only:>11.2f} s {reads:>8} {per_read:>8}", flush=True)
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


if __name__ == "__main__":
    main()

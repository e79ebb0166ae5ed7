#!/usr/bin/env python3
"""A stand-in phpspy for the PHP runtime profiler's tests (phpspy is not in
Debian). It accepts only the command line the agent runs (gProfiler's, plus
-i to stop at the window's end),

    phpspy --verbose-fields=p -P PGREP_ARGS -H FREQ -b 16384 -T 16 \\
        --output OUT -i MILLISECONDS

and does what phpspy's pgrep mode does: creates OUT at once, finds its
processes by running `pgrep PGREP_ARGS` through a shell (phpspy's popen),
and until the time limit writes FREQ traces a second for each of them in
phpspy's format: frame lines "DEPTH FUNCTION FILE:LINE", leaf first, DEPTH
from 0, then "# pid = PID", then an empty line. Frames are named after the
PHP script each process runs (the first argument of its command line that
ends in .php).

Options of the stand-in itself, before phpspy's arguments:
  --standin-log=FILE   append the arguments (one JSON list per call) to FILE
  --standin-mode=MODE  "ok" (default), or "garbage": write text that is not
                       phpspy's format
"""
import json
import os
import subprocess
import sys
import time


def fail(why):
    sys.stderr.write(f"{why}\n")
    sys.exit(1)


def script_of(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().split(b"\0")
    except OSError:
        return None
    for a in args[1:]:
        if a.endswith(b".php"):
            return a.decode(errors="replace")
    return "(unknown script)"


def main(argv):
    mode = "ok"
    while argv and argv[0].startswith("--standin-"):
        opt, _, value = argv.pop(0).partition("=")
        if opt == "--standin-log":
            with open(value, "a") as f:
                f.write(json.dumps(argv) + "\n")
        elif opt == "--standin-mode":
            mode = value
    shape = ["--verbose-fields=p", "-P", None, "-H", None, "-b", "16384", "-T", "16",
             "--output", None, "-i", None]
    if len(argv) != len(shape) or any(s is not None and a != s for a, s in zip(argv, shape)):
        fail(f"unexpected arguments {argv!r}")
    pgrep, rate, out, limit_ms = argv[2], int(argv[4]), argv[10], int(argv[12])
    if not 1 <= rate <= 999:
        fail(f"bad rate {rate}")
    end = time.time() + max(1, limit_ms // 1000)  # second granularity in pgrep mode
    with open(out, "w") as f:
        if mode == "garbage":
            f.write("this is not what phpspy writes\n\n\x01 nor this\n\n")
            return
        found = subprocess.run("pgrep " + pgrep, shell=True, capture_output=True,
                               text=True).stdout.split()
        pids = [int(p) for p in found if int(p) != os.getpid()]
        while time.time() < end:
            for pid in pids:
                script = script_of(pid)
                if script is None:
                    continue
                f.write(f"0 fib {script}:2\n1 fib {script}:2\n2 <main> {script}:3\n"
                        f"# pid = {pid}\n\n")
            f.flush()
            time.sleep(1 / rate)


if __name__ == "__main__":
    main(sys.argv[1:])

#!/usr/bin/env python3
"""A stand-in py-spy for the Python tool's tests (py-spy is not in Debian).
It accepts only the command line gProfiler runs (PySpyProfiler._make_command
on Linux),

    py-spy record -r FREQ -d DURATION --nonblocking --format raw -F \\
        --output OUT -p PID --full-filenames --gil

records for DURATION seconds as py-spy does, then writes py-spy's raw
format to OUT: one line per stack, frames root first, "NAME (PATH:LINE)"
joined by ';', then " COUNT", the counts adding up to FREQ * DURATION.
Lines alternate between upstream py-spy's style (no suffix) and Granulate's
fork's (every frame ends with "_[p]"), starting with upstream's.

The stacks: by default two, named after the target's program (the first
argument of its command line that ends in .py, else its first argument):
"<module> (PROG:1);work (PROG:5)" and "<module> (PROG:1);idle (PROG:9)".
--standin-stacks=FILE (or the environment variable PYSPY_STANDIN_STACKS,
a file name) gives others: one stack per line, frames root first, without
suffix or count.

As py-spy, if the target does not exist it says so on stderr ("Error: Failed
to get process executable name. Check that the process is running.") and
exits with status 1.

Options of the stand-in itself, before py-spy's arguments:
  --standin-log=FILE     append one JSON object per call to FILE: "argv"
                         (py-spy's arguments) and "pid" (the stand-in's own)
  --standin-stacks=FILE  the stacks to write (see above)
  --standin-mode=MODE    "ok" (default); "exited": py-spy's message for a
                         process that is gone, exit status 1, whatever the
                         target; "hang": ignore SIGTERM and never finish;
                         "garbage": write text that is not py-spy's format
Wrong arguments: a message on stderr and exit status 2 (py-spy's argument
parser does the same).
"""
import json
import os
import signal
import sys
import time

GONE = "Error: Failed to get process executable name. Check that the process is running.\n"


def fail(why):
    sys.stderr.write(f"error: {why}\n")
    sys.exit(2)


def program_of(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        args = [a for a in f.read().split(b"\0") if a]
    for a in args[1:]:
        if a.endswith(b".py"):
            return a.decode(errors="replace")
    return args[0].decode(errors="replace") if args else "(unknown)"


def main(argv):
    mode = "ok"
    stacks_file = os.environ.get("PYSPY_STANDIN_STACKS", "")
    log = None
    while argv and argv[0].startswith("--standin-"):
        opt, _, value = argv.pop(0).partition("=")
        if opt == "--standin-log":
            log = value
        elif opt == "--standin-stacks":
            stacks_file = value
        elif opt == "--standin-mode":
            mode = value
        else:
            fail(f"unknown stand-in option {opt!r}")
    if log:
        with open(log, "a") as f:
            f.write(json.dumps({"argv": argv, "pid": os.getpid()}) + "\n")
    shape = ["record", "-r", None, "-d", None, "--nonblocking", "--format", "raw", "-F",
             "--output", None, "-p", None, "--full-filenames", "--gil"]
    if len(argv) != len(shape) or any(s is not None and a != s for a, s in zip(argv, shape)):
        fail(f"unexpected arguments {argv!r}, expected gProfiler's "
             "'record -r F -d D --nonblocking --format raw -F --output FILE -p PID "
             "--full-filenames --gil'")
    try:
        rate, duration, out, pid = int(argv[2]), int(argv[4]), argv[10], int(argv[12])
    except ValueError:
        fail(f"non-numeric rate, duration or pid in {argv!r}")
    if not 1 <= rate <= 50 or duration < 1:
        fail(f"bad rate {rate} (gProfiler's limit is 50) or duration {duration}")

    if mode == "hang":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True:
            time.sleep(60)
    if mode == "exited" or not os.path.exists(f"/proc/{pid}"):
        sys.stderr.write(GONE)
        sys.exit(1)

    if stacks_file:
        with open(stacks_file) as f:
            stacks = [line.rstrip("\n") for line in f if line.strip()]
    else:
        prog = program_of(pid)
        stacks = [f"<module> ({prog}:1);work ({prog}:5)",
                  f"<module> ({prog}:1);idle ({prog}:9)"]
    print(f"Sampling process {rate} times a second for {duration} seconds. "
          "Press Control-C to exit.", flush=True)
    time.sleep(duration)
    samples = rate * duration
    with open(out, "w") as f:
        if mode == "garbage":
            f.write("this is not what py-spy writes\n\x01\x02 nor this\n")
            return
        for i, stack in enumerate(stacks):
            count = samples // len(stacks) + (1 if i < samples % len(stacks) else 0)
            if count == 0:
                continue
            if i % 2 == 1:  # Granulate's fork: _[p] on every frame
                stack = ";".join(frame + "_[p]" for frame in stack.split(";"))
            f.write(f"{stack} {count}\n")
    print(f"Wrote raw flamegraph data to '{out}'. Samples: {samples} Errors: 0")


if __name__ == "__main__":
    main(sys.argv[1:])

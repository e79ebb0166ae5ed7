#!/usr/bin/env python3
"""A stand-in rbspy for the Ruby runtime profiler's tests (rbspy is not in
Debian). It accepts only the command line gProfiler runs,

    rbspy record --silent -r FREQ -d DURATION --nonblocking --oncpu \\
        --format=collapsed --file OUT --raw-file /dev/null -p PID

records for DURATION seconds as rbspy does, then writes rbspy's collapsed
format to OUT: one line per stack, root frame first, frames
"NAME - PATH:LINE" named after the Ruby script the target runs (the first
argument of its command line that ends in .rb), C functions as
"NAME [c function] - (unknown):0". One line is in upstream rbspy's format
(no suffix), the others in Granulate's fork's (_[rb] on Ruby frames).

Options of the stand-in itself, before rbspy's arguments:
  --standin-log=FILE   append the arguments (one JSON list per call) to FILE
  --standin-mode=MODE  "ok" (default), or "garbage": write text that is not
                       rbspy's format
Wrong arguments: a message on stderr and exit status 2, as rbspy.
"""
import json
import os
import sys
import time


def fail(why):
    sys.stderr.write(f"error: {why}\n")
    sys.exit(2)


def script_of(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        args = f.read().split(b"\0")
    for a in args[1:]:
        if a.endswith(b".rb"):
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
    shape = ["record", "--silent", "-r", None, "-d", None, "--nonblocking", "--oncpu",
             "--format=collapsed", "--file", None, "--raw-file", "/dev/null", "-p", None]
    if len(argv) != len(shape) or any(s is not None and a != s for a, s in zip(argv, shape)):
        fail(f"unexpected arguments {argv!r}")
    rate, duration, out, pid = int(argv[3]), int(argv[5]), argv[10], int(argv[14])
    if not 1 <= rate <= 100 or duration < 1:
        fail(f"bad rate {rate} or duration {duration}")
    script = script_of(pid)
    time.sleep(duration)
    if not os.path.exists(f"/proc/{pid}"):
        fail(f"process {pid} exited")
    samples = rate * duration
    with open(out, "w") as f:
        if mode == "garbage":
            f.write("this is not what rbspy writes\n\x01\x02 nor this\n")
            return
        main_ = f"<main> - {script}:2"
        fib = f"fib - {script}:1"
        # upstream rbspy: no suffix
        f.write(f"{main_};loop [c function] - (unknown):0;{fib};{fib} {samples // 2}\n")
        # Granulate's fork: _[rb] on Ruby frames
        f.write(f"{main_}_[rb];loop [c function] - (unknown):0;{fib}_[rb] "
                f"{samples - samples // 2}\n")


if __name__ == "__main__":
    main(sys.argv[1:])

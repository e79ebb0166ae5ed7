#!/usr/bin/env python3
"""A stand-in dotnet-trace for the .NET runtime profiler's tests (neither
dotnet-trace nor a .NET runtime is in Debian). It accepts only the command
line gProfiler runs,

    dotnet-trace collect --format speedscope --process-id PID \\
        --profile cpu-sampling --duration H:MM:SS --output OUT

with TMPDIR=/proc/PID/root/tmp and DOTNET_ROOT set, traces for the duration
as dotnet-trace does, then writes OUT.nettrace (the trace; any bytes) and
OUT.speedscope.json: speedscope's JSON as dotnet-trace writes it, one
evented profile in milliseconds whose stack is dotnet-trace's process and
thread frames, then "MODULE!Program.Main()" and
"MODULE!Program.Fib(int32)" (MODULE: the base name of the target's
executable), then the CPU_TIME marker, for the whole duration.

Options of the stand-in itself, before dotnet-trace's arguments:
  --standin-log=FILE   append the arguments and the two variables (one JSON
                       object per call) to FILE
  --standin-mode=MODE  "ok" (default), or "garbage": write JSON that is not
                       speedscope's
"""
import json
import os
import sys
import time


def fail(why):
    sys.stderr.write(f"{why}\n")
    sys.exit(1)


def main(argv):
    mode = "ok"
    while argv and argv[0].startswith("--standin-"):
        opt, _, value = argv.pop(0).partition("=")
        if opt == "--standin-log":
            with open(value, "a") as f:
                f.write(json.dumps({"argv": argv, "TMPDIR": os.environ.get("TMPDIR"),
                                    "DOTNET_ROOT": os.environ.get("DOTNET_ROOT")}) + "\n")
        elif opt == "--standin-mode":
            mode = value
    shape = ["collect", "--format", "speedscope", "--process-id", None, "--profile",
             "cpu-sampling", "--duration", None, "--output", None]
    if len(argv) != len(shape) or any(s is not None and a != s for a, s in zip(argv, shape)):
        fail(f"unexpected arguments {argv!r}")
    pid, duration, out = int(argv[4]), argv[8], argv[10]
    if os.environ.get("TMPDIR") != f"/proc/{pid}/root/tmp" or not os.environ.get("DOTNET_ROOT"):
        fail("TMPDIR or DOTNET_ROOT not set as gProfiler sets them")
    h, m, s = (int(x) for x in duration.split(":"))
    seconds = h * 3600 + m * 60 + s
    module = os.path.basename(os.readlink(f"/proc/{pid}/exe"))
    time.sleep(seconds)
    with open(out + ".nettrace", "wb") as f:
        f.write(b"Nettrace\0" * 8)
    with open(out + ".speedscope.json", "w") as f:
        if mode == "garbage":
            f.write('{"profiles": "this is not speedscope"}')
            return
        frames = [f"Process64 Process({pid}) ({pid}) Args: ", "(Non-Activities)", "Threads",
                  f"Thread ({pid})", f"{module}!Program.Main()", f"{module}!Program.Fib(int32)",
                  "CPU_TIME"]
        end = seconds * 1000.0
        events = [{"type": "O", "frame": i, "at": 0.0} for i in range(len(frames))]
        events += [{"type": "C", "frame": i, "at": end} for i in reversed(range(len(frames)))]
        json.dump({"exporter": "speedscope@1.3.2", "name": os.path.basename(out),
                   "activeProfileIndex": 0,
                   "$schema": "https://www.speedscope.app/file-format-schema.json",
                   "shared": {"frames": [{"name": n} for n in frames]},
                   "profiles": [{"type": "evented", "name": f"Thread ({pid})",
                                 "unit": "milliseconds", "startValue": "0",
                                 "endValue": str(end), "events": events}]}, f)


if __name__ == "__main__":
    main(sys.argv[1:])

#!/usr/bin/env python3
"""A stand-in for async-profiler's asprof (the command line of async-profiler
3 and later, src/launcher/main.cpp) for the Java profiler's tests, since
async-profiler is not packaged in Debian and cannot be downloaded here.

- Every call is appended, as a JSON list of its arguments, to the file named
  by $GPA_ASPROF_LOG (if set).
- `asprof jcmd PID COMMAND`: runs the real `jattach PID jcmd COMMAND`, as
  asprof's jcmd action is jattach's.
- `asprof [collect] OPTIONS PID`: checks the options as asprof parses them
  (an unknown one: "Unrecognized option: X", exit 1, as asprof), checks that
  PID is a JVM (libjvm.so mapped; else exit 1 as a failed attach), wants
  `-o collapsed`, `-a` and `-g` (gProfiler's collapsed,ann,sig) and `-d N`,
  then sleeps N seconds (SIGTERM ends the sleep early, as asprof stops and
  prints on SIGTERM), and prints collapsed stacks for that PID on stdout in
  async-profiler's annotated format: `_[j]` Java frames with signatures
  (`|` for the `;` in them), `_[i]` inlined, `_[k]` kernel, a thread frame
  first with `-t`. The frame `StandIn.pid<PID>()V_[j]` names the PID.
"""
import json
import os
import signal
import sys
import time

# asprof 3.x's options: those that take a value, and flags.
WITH_VALUE = {"-d", "-f", "-o", "-e", "--event", "-i", "--interval", "-j",
              "--jstackdepth", "-I", "--include", "-X", "--exclude", "-L",
              "--log", "-F", "--features", "--filter", "--title", "--width",
              "--height", "--minwidth", "--alloc", "--lock", "--wall",
              "--chunksize", "--chunktime", "--cstack", "--signal", "--clock",
              "--begin", "--end", "--safe-mode", "--jfrsync", "--timeout",
              "--loop"}
FLAGS = {"-t", "--threads", "-s", "--simple", "-n", "--norm", "-g", "--sig",
         "-a", "--ann", "-l", "--lib", "--reverse", "--samples", "--total",
         "--sched", "--live", "--ttsp", "--all-user", "--fdtransfer"}
ACTIONS = {"start", "resume", "stop", "dump", "check", "status", "meminfo",
           "list", "collect"}


def fail(message, code=1):
    print(message, file=sys.stderr)
    sys.exit(code)


def main(args):
    log = os.environ.get("GPA_ASPROF_LOG")
    if log:
        with open(log, "a") as f:
            f.write(json.dumps(args) + "\n")
    if args[:1] == ["jcmd"]:
        if len(args) != 3 or not args[1].isdigit():
            fail("stand-in: jcmd PID COMMAND expected")
        os.execvp("jattach", ["jattach", args[1], "jcmd", args[2]])
    action, options, pid = "collect", {}, None
    i = 0
    while i < len(args):
        a = args[i]
        if a in ACTIONS:
            action = a
        elif a in WITH_VALUE:
            if i + 1 >= len(args):
                fail("Missing required parameter")
            options[a] = args[i + 1]
            i += 1
        elif a in FLAGS:
            options[a] = True
        elif a.isdigit() and pid is None:
            pid = int(a)
        else:
            fail(f"Unrecognized option: {a}")
        i += 1
    if pid is None:
        fail("Usage: asprof [action] [options] <pid>")
    if action != "collect":
        fail(f"stand-in: only collect is played, not {action}", 2)
    for needed in ("-d", "-o", "-a", "-g"):
        if needed not in options:
            fail(f"stand-in: {needed} missing", 2)
    if options["-o"] != "collapsed":
        fail("stand-in: -o collapsed expected", 2)
    try:
        with open(f"/proc/{pid}/maps") as f:
            if "/libjvm.so" not in f.read():
                raise OSError("not a JVM")
    except OSError:
        fail("Could not start attach mechanism: No such file or directory")

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    end = time.monotonic() + int(options["-d"])
    while not stop and time.monotonic() < end:
        time.sleep(0.1)

    thread = f"[main tid={pid}];" if "-t" in options else ""
    me = f"StandIn.pid{pid}()V_[j]"
    main_frame = "Hot.main([Ljava/lang/String|)V_[j]"
    lines = [
        f"{thread}{main_frame};{me};Hot.fib(I)J_[j];Hot.fib(I)J_[i] 70",
        f"{thread}{main_frame};{me};java/lang/System.currentTimeMillis()J_[j];"
        f"os::javaTimeMillis();clock_gettime;__vdso_clock_gettime_[k] 30",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])

#!/usr/bin/env python3
"""Writes the runtime-profiler fixtures of this folder and their .expected
files (see README.md). None of rbspy, py-spy, phpspy or dotnet-trace runs
here, so each tool's output is produced from its documented output format
(and, for dotnet-trace, by replaying TraceEvent's speedscope writer on a list
of samples); each .expected file is computed here, in Python, from the rules in
format/runtime_stacks.hpp, independently of the C++ parser.

Usage: python3 make_fixtures.py  (writes into the folder of this script)
"""

import math
import os
from collections import Counter, defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))


def write(name, text):
    with open(os.path.join(HERE, name), "w", encoding="utf-8", newline="") as f:
        f.write(text)


def expected_text(processes):
    """processes: {pid: (comm, Counter(stack -> count))} -> .expected text."""
    out = []
    for pid in sorted(processes):
        comm, stacks = processes[pid]
        out.append(f"# pid {pid} comm {comm}\n")
        for stack in sorted(stacks):
            if stacks[stack] > 0:
                out.append(f"{stack} {stacks[stack]}\n")
    return "".join(out)


# -- rbspy -------------------------------------------------------------------
# Samples of gProfiler's tests/containers/ruby/fibonacci.rb (Ruby 2.6, run as
# /app/fibonacci.rb). rbspy's collapsed format: frames root first, each
# "NAME - PATH:LINE", joined by ';', then " COUNT". Granulate's fork (the
# rbspy gProfiler ships) appends "_[rb]" to frames whose name does not hold
# "[c function]"; upstream rbspy appends nothing.

R1 = "<main> - /app/fibonacci.rb:22"
EACH = "each [c function] - (unknown):0"
B23 = "block in <main> - /app/fibonacci.rb:23"
B24 = "block in <main> - /app/fibonacci.rb:24"
F19 = "fibonacci - /app/fibonacci.rb:19"
F18 = "fibonacci - /app/fibonacci.rb:18"
INCL = "include? [c function] - (unknown):0"
PUTS = "puts [c function] - (unknown):0"
WRITE = "write [c function] - (unknown):0"
FLUSH = "flush [c function] - (unknown):0"
UNKNOWN_C = "(unknown) [c function] - (unknown):0"

RUBY_STACKS = [
    ([R1, EACH, B23] + [F19] * 3 + [F18, INCL], 17),
    ([R1, EACH, B23] + [F19] * 2 + [F18], 9),
    ([R1, EACH, B23] + [F19] * 4 + [F18, INCL], 23),
    ([R1, EACH, B23] + [F19] * 4, 12),
    ([R1, EACH, B23] + [F19] * 9 + [F18], 31),
    ([R1, EACH, B23] + [F19] * 9 + [F18, INCL], 4),
    ([R1, EACH, B23, PUTS, WRITE], 2),
    ([R1, EACH, B24, FLUSH], 1),
    ([UNKNOWN_C], 1),
]
RUBY_PID, RUBY_COMM = 4242, "ruby"


def fork_frame(frame):
    name = frame.split(" - ")[0]
    return frame if "[c function]" in name else frame + "_[rb]"


def ruby_fixtures():
    write(
        "rbspy_fork.collapsed",
        "".join(";".join(map(fork_frame, s)) + f" {n}\n" for s, n in RUBY_STACKS),
    )
    # upstream rbspy: no suffix, and HashMap order (here: reversed)
    write(
        "rbspy_upstream.collapsed",
        "".join(";".join(s) + f" {n}\n" for s, n in reversed(RUBY_STACKS)),
    )
    stacks = Counter()
    for s, n in RUBY_STACKS:
        stacks[";".join([RUBY_COMM] + [fork_frame(f) for f in s])] += n
    write("rbspy.expected", expected_text({RUBY_PID: (RUBY_COMM, stacks)}))


# -- py-spy ------------------------------------------------------------------
# Samples of gProfiler's tests/containers/python/lister.py (Python 3.8, run
# as /app/lister.py) as gProfiler records them: `py-spy record --format raw -F
# --full-filenames --gil` (src/flamegraph.rs: frames root first, each
# "NAME (FILENAME:LINE)", "NAME (FILENAME)" without a line, joined by ';',
# then " COUNT"; -F: LINE is the function's first line; --full-filenames:
# whole paths; no thread or process frames without --threads and
# --subprocesses). Granulate's fork (the py-spy gProfiler ships) ends every
# frame with "_[p]"; upstream py-spy appends nothing, and writes its HashMap
# in any order (here: reversed).

THREADING = "/usr/local/lib/python3.8/threading.py"
BOOT = f"_bootstrap ({THREADING}:882)"
BOOT_INNER = f"_bootstrap_inner ({THREADING}:914)"
RUN = f"run ({THREADING}:852)"
MODULE = "<module> (/app/lister.py:17)"
LISTER = "lister (/app/lister.py:22)"
BURNER = "burner (/app/lister.py:29)"
PARSER = "parser (/app/lister.py:35)"
YAML = "/usr/local/lib/python3.8/site-packages/yaml"
YAML_PARSE = f"parse ({YAML}/__init__.py:34)"
YAML_GET = f"get_event ({YAML}/parser.py:94)"
NO_LINE = "<lambda> (<frozen importlib._bootstrap>)"

PYTHON_STACKS = [
    ([BOOT, BOOT_INNER, RUN, BURNER], 48),
    ([MODULE, LISTER], 21),
    ([MODULE], 3),
    ([BOOT, BOOT_INNER, RUN, PARSER, YAML_PARSE, YAML_GET], 17),
    ([BOOT, BOOT_INNER, RUN, PARSER, YAML_PARSE], 6),
    ([BOOT, BOOT_INNER, RUN, PARSER, NO_LINE], 2),
]
PYTHON_PID, PYTHON_COMM = 5353, "python"


def python_fixtures():
    write(
        "pyspy_fork.raw",
        "".join(";".join(f + "_[p]" for f in s) + f" {n}\n"
                for s, n in PYTHON_STACKS),
    )
    write(
        "pyspy_upstream.raw",
        "".join(";".join(s) + f" {n}\n" for s, n in reversed(PYTHON_STACKS)),
    )
    stacks = Counter()
    for s, n in PYTHON_STACKS:
        stacks[";".join([PYTHON_COMM] + [f + "_[p]" for f in s])] += n
    write("pyspy.expected",
          expected_text({PYTHON_PID: (PYTHON_COMM, stacks)}))


# -- phpspy ------------------------------------------------------------------
# phpspy (Granulate's fork) with gProfiler's --verbose-fields=p: per trace,
# frame lines "DEPTH CLASS::FUNC FILE:LINE" leaf first (event_fout.c's
# "%d %.*s%s%.*s %.*s:%d"), then "# pid = PID", then the trace delimiter
# '\n'. Internal functions have the file "<internal>" and line -1, a script's
# top level is "<main>". Pid 3101 runs gProfiler's
# tests/containers/php/fibonacci.php, pid 3102 is a php-fpm worker (frames
# after phpspy's README example).

FIB_MAIN = "<main> /app/fibonacci.php:32"
FIB26 = "Fibonacci /app/fibonacci.php:26"
FIB27 = "Fibonacci /app/fibonacci.php:27"
FPM = [
    "<main> /var/www/htdocs/v3/public.php:5",
    "<main> /var/www/lib/bootstrap/api.php:49",
    "Security_Rule_Engine::evaluateActionRules /var/www/lib/Security/Rule/Engine.php:116",
    "IpDb_CacheBase::get /var/www/lib/IpDb/CacheBase.php:107",
    "Cache_Memcached::get /var/www/lib/Cache/Memcached.php:251",
    "Memcached::get <internal>:-1",
]

PHP_TRACES = [  # (pid, frames root first)
    (3101, [FIB_MAIN] + [FIB26] * 5),
    (3102, FPM),
    (3101, [FIB_MAIN] + [FIB26] * 3 + [FIB27]),
    (3101, [FIB_MAIN] + [FIB26] * 5),
    (3102, FPM[:4]),
    (3101, [FIB_MAIN] + [FIB26] * 12 + [FIB27, FIB26]),
    (3102, FPM),
    (3101, [FIB_MAIN]),
    (3101, [FIB_MAIN] + [FIB26] * 3 + [FIB27]),
    (3102, FPM[:2] + ["json_encode <internal>:-1"]),
    (3101, [FIB_MAIN] + [FIB26] * 5),
]


def php_fixtures():
    out = []
    stacks = defaultdict(Counter)
    for pid, frames in PHP_TRACES:
        for depth, frame in enumerate(reversed(frames)):
            out.append(f"{depth} {frame}\n")
        out.append(f"# pid = {pid}\n\n")
        stacks[pid][";".join(["php"] + [f + "_[php]" for f in frames])] += 1
    write("phpspy.txt", "".join(out))
    write("phpspy.expected", expected_text({p: ("php", s) for p, s in stacks.items()}))


# -- async-profiler ----------------------------------------------------------
# async-profiler's collapsed output with gProfiler's "ann,sig" options
# (Granulate's fork replaces the ';' of signatures by '|'): Java frames
# "_[j]", inlined "_[i]", kernel "_[k]", native frames plain. Frame names
# follow the assertions of gProfiler's tests/test_java.py on its
# tests/containers/java/Fibonacci.java.

J_MAIN = "Fibonacci.main([Ljava/lang/String|)V_[j]"
J_FIB = "Fibonacci.fibonacci(I)J_[j]"
J_RUN = "java/lang/Thread.run()V_[j]"
J_ANON = "Fibonacci$1.run()V_[j]"
J_LIST = "java/io/File.list()[Ljava/lang/String|_[j]"
J_UFS = "java/io/UnixFileSystem.list(Ljava/io/File|)[Ljava/lang/String|_[j]"
JAVA_STACKS = [
    ([J_MAIN] + [J_FIB] * 7, 311),
    ([J_MAIN] + [J_FIB] * 12, 97),
    ([J_MAIN] + [J_FIB] * 11 + ["Fibonacci.fibonacci(I)J_[i]"], 40),
    ([J_RUN, J_ANON, J_LIST, J_UFS, "Java_java_io_UnixFileSystem_list",
      "readdir64", "__getdents64", "entry_SYSCALL_64_after_hwframe_[k]",
      "do_syscall_64_[k]", "__x64_sys_getdents64_[k]",
      "iterate_dir_[k]"], 58),
    ([J_RUN, J_ANON, J_LIST, J_UFS, "Java_java_io_UnixFileSystem_list",
      "opendir", "__open_nocancel", "entry_SYSCALL_64_after_hwframe_[k]",
      "do_syscall_64_[k]"], 21),
    (["start_thread", "thread_native_entry(Thread*)", "Thread::call_run()",
      "JavaThread::thread_main_inner()",
      "CompileBroker::compiler_thread_loop()",
      "CompileBroker::invoke_compiler_on_method(CompileTask*)",
      "C2Compiler::compile_method(ciEnv*, ciMethod*, int, bool, DirectiveSet*)"],
     6),
]
JAVA_PID, JAVA_COMM = 5151, "java"


def java_fixtures():
    write("async_profiler.collapsed",
          "".join(";".join(s) + f" {n}\n" for s, n in JAVA_STACKS))
    stacks = Counter()
    for s, n in JAVA_STACKS:
        stacks[";".join([JAVA_COMM] + s)] += n
    write("async_profiler.expected",
          expected_text({JAVA_PID: (JAVA_COMM, stacks)}))


# -- dotnet-trace ------------------------------------------------------------
# dotnet-trace collect --format speedscope converts its trace with TraceEvent:
# SampleProfilerThreadTimeComputer gives every sample of a thread a stack
# "Process64 ... ;(Non-Activities);Threads;Thread (TID);methods...;MARKER"
# (MARKER: CPU_TIME when the thread ran managed code, UNMANAGED_CODE_TIME
# otherwise) and a metric that reaches the thread's next sample; then
# SpeedScopeStackSourceWriter (StackSourceWriterHelper) writes evented
# profiles. Below is that writer's algorithm, replayed on runs of 1 ms
# samples of gProfiler's tests/containers/dotnet/Fibonacci.cs.

PROC = "Process64 Process(4711) (4711) Args: "
MAIN = "Fibonacci!dotnet.Program.Main()"
FIB = "Fibonacci!dotnet.Program.Fibonacci(int32)"
CPU, UNMANAGED = "CPU_TIME", "UNMANAGED_CODE_TIME"


def thread_root(tid):
    return [PROC, "(Non-Activities)", "Threads", f"Thread ({tid})"]


T1 = thread_root(4711)
T2 = thread_root(4725)
WAIT = [
    "System.Private.CoreLib!System.Threading.Thread.StartCallback()",
    "System.Private.CoreLib!System.Threading.PortableThreadPool+GateThread.GateThreadStart()",
    "System.Private.CoreLib!System.Threading.WaitHandle.WaitOneNoCheck(int32)",
]
# (thread frame, first sample time in ms, [(stack, number of 1 ms samples)])
DOTNET_THREADS = [
    ("Thread (4711)", 1523.25, [
        (T1 + [MAIN] + [FIB] * 3 + [CPU], 30),
        (T1 + [MAIN] + [FIB] * 5 + [CPU], 20),
        (T1 + [MAIN] + [FIB] * 2 + [CPU], 10),
        (T1 + [MAIN] + [FIB] * 3 + [CPU], 20),
        (T1 + [MAIN] + [FIB] + [UNMANAGED], 10),
        (T1 + [MAIN] + [FIB] * 4 + [CPU], 40),
    ]),
    ("Thread (4725)", 1530.5, [
        (T2 + WAIT + [UNMANAGED], 70),
        (T2 + WAIT[:2] + [CPU], 10),
        (T2 + WAIT + [UNMANAGED], 30),
    ]),
]
DOTNET_PID, DOTNET_COMM, DOTNET_HZ = 4711, "dotnet", 100
METRIC = 1.0


def csharp_r(x):
    """double.ToString("R", InvariantCulture) for the values used here."""
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return repr(x).replace("e", "E")


def speedscope_writer(threads):
    """TraceEvent's StackSourceWriterHelper + SpeedScopeStackSourceWriter."""
    frame_ids = {}
    profiles = []
    for name, start, runs in threads:
        samples = []  # (time, metric, stack)
        t = start
        for stack, n in runs:
            for _ in range(n):
                # GetSortedSamplesPerThread: metric - 1e-7 against overlap
                samples.append((t, METRIC - 1e-7, stack))
                t += METRIC
        # WalkTheStackAndExpandSamples: one sample per frame of the stack
        per_frame = {}
        for time, metric, stack in samples:
            for depth, frame in enumerate(stack):
                fid = frame_ids.setdefault(frame, len(frame_ids))
                caller = tuple(stack[:depth])
                per_frame.setdefault(fid, []).append((depth, time, metric, caller))
        # GetAggregatedOrderedProfileEvents
        events = []  # (type, frame, time, depth)
        for fid, fs in per_frame.items():
            fs.sort(key=lambda s: (s[0], s[1], s[2]))
            open_s = fs[0]
            for prev, cur in zip(fs, fs[1:]):
                if (prev[0] != cur[0] or prev[3] != cur[3]
                        or prev[1] + prev[2] * 1.2 < cur[1]):
                    events.append(("O", fid, open_s[1], open_s[0]))
                    events.append(("C", fid, prev[1] + prev[2], prev[0]))
                    open_s = cur
            events.append(("O", fid, open_s[1], open_s[0]))
            events.append(("C", fid, fs[-1][1] + fs[-1][2], fs[-1][0]))
        # OrderForExport: by time; closes by descending depth, then opens by
        # ascending depth (stable)
        ordered = []
        for time in sorted({e[2] for e in events}):
            group = [e for e in events if e[2] == time]
            ordered += sorted((e for e in group if e[0] == "C"),
                              key=lambda e: -e[3])
            ordered += sorted((e for e in group if e[0] == "O"),
                              key=lambda e: e[3])
        profiles.append((name, ordered))
    profiles.sort(key=lambda p: p[1][0][2])
    names = sorted(frame_ids, key=frame_ids.get)
    out = ['{"exporter": "speedscope@1.3.2", ',
           '"name": "dotnet-trace-3fa9c1-4711.speedscope", ',
           '"activeProfileIndex": 0, ',
           '"$schema": "https://www.speedscope.app/file-format-schema.json", ',
           '"shared": { "frames": [ ']
    out.append(", ".join(
        '{ "name": "%s" }' % n.replace("\\", "\\\\").replace('"', '\\"')
        for n in names))
    out.append("] }, ")
    out.append('"profiles": [ ')
    rendered = []
    for name, events in profiles:
        p = ['{ "type": "evented", ', f'"name": "{name}", ',
             '"unit": "milliseconds", ',
             f'"startValue": "{csharp_r(events[0][2])}", ',
             f'"endValue": "{csharp_r(events[-1][2])}", ', '"events": [ ']
        p.append(", ".join(
            '{ "type": "%s", "frame": %d, "at": %s }' % (t, f, csharp_r(at))
            for t, f, at, _ in events))
        p.append("]}")
        rendered.append("".join(p))
    out.append(", ".join(rendered))
    out.append("] }")
    return "".join(out), names, profiles


def replay_like_gprofiler(names, profiles, hz):
    """gProfiler's load_speedscope_as_collapsed, with each interval's
    expected sample count (elapsed / interval) instead of its random draw."""
    interval = 1000.0 / hz
    time_per_stack = Counter()
    for _, events in profiles:
        stack, last = [], events[0][2]
        for kind, fid, at, _ in events:
            elapsed, last = at - last, at
            if kind == "O":
                stack.append(fid)
            else:
                assert stack[-1] == fid
                stack.pop()
            if elapsed > 0 and stack:
                time_per_stack[tuple(stack)] += elapsed
    return Counter({
        ";".join([DOTNET_COMM] + [names[f] + "_[net]" for f in s]):
            math.floor(t / interval + 0.5)
        for s, t in time_per_stack.items()})


def from_runs(threads, hz):
    """What the replay must give: every run's time, k samples of METRIC
    less the writer's 1e-7, to its stack without the leaf marker."""
    interval = 1000.0 / hz
    time_per_stack = Counter()
    for _, _, runs in threads:
        for stack, n in runs:
            key = ";".join([DOTNET_COMM] + [f + "_[net]" for f in stack[:-1]])
            time_per_stack[key] += n * METRIC - 1e-7
    return Counter({k: math.floor(t / interval + 0.5)
                    for k, t in time_per_stack.items()})


def dotnet_fixtures():
    text, names, profiles = speedscope_writer(DOTNET_THREADS)
    write("dotnet.speedscope.json", text)
    replayed = +replay_like_gprofiler(names, profiles, DOTNET_HZ)
    expected = +from_runs(DOTNET_THREADS, DOTNET_HZ)
    assert replayed == expected, (replayed, expected)
    write("dotnet.expected",
          expected_text({DOTNET_PID: (DOTNET_COMM, expected)}))


if __name__ == "__main__":
    ruby_fixtures()
    python_fixtures()
    php_fixtures()
    java_fixtures()
    dotnet_fixtures()

#!/usr/bin/env python3
"""As root: --perf-path is a wrapper that runs the real perf for the start-up
check but hangs (ignoring SIGTERM) on every recording. With -c -d 5 for 60 s
the agent still writes a profile every 5 s (plus or minus 1), each with the
system profiler's timeout error stack, and no process of the hung wrapper
lives past its deadline (--perf-start-timeout) plus the kill grace.

Usage: hung_perf_test.py /path/to/gprofiler-agent
"""
import glob
import os
import shutil
import signal
import sys
import tempfile
import time
import unittest

from common import parse_col, read_text, start_agent, ts

AGENT = None
WRAPPER = """#!/bin/sh
# Real perf for the test recording and its perf script; a hang for the
# recording itself.
case "$*" in
  *--switch-output*) trap '' TERM; exec sleep 100000 ;;
  *) exec {perf} "$@" ;;
esac
"""


def hung_wrappers():
    """PIDs of the wrapper's hanging processes (sleep 100000)."""
    result = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if f.read() == b"sleep\x00100000\x00":
                    result.append(int(entry))
        except OSError:
            pass
    return result


class HungPerf(unittest.TestCase):
    def test_profiles_keep_coming_with_timeout_stacks(self):
        work = tempfile.mkdtemp(prefix="gpa-hung-")
        wrapper = os.path.join(work, "perf-wrapper")
        with open(wrapper, "w") as f:
            f.write(WRAPPER.format(perf=shutil.which("perf")))
        os.chmod(wrapper, 0o755)
        out = os.path.join(work, "out")
        start_timeout, grace = 5, 2
        agent = start_agent(self, AGENT, ["-o", out, "-c", "-d", "5",
                                    "--perf-path", wrapper,
                                    "--perf-start-timeout", str(start_timeout),
                                    "--kill-grace-ms", str(grace * 1000)],
                            os.path.join(work, "agent.log"))
        log = lambda: read_text(os.path.join(work, "agent.log"))
        first_seen = {}
        lifetimes = {}
        end = time.time() + 60
        while time.time() < end:
            now = time.time()
            alive = set(hung_wrappers())
            for pid in alive:
                first_seen.setdefault(pid, now)
            for pid in list(first_seen):
                if pid not in alive and pid not in lifetimes:
                    lifetimes[pid] = now - first_seen[pid]
            time.sleep(0.1)
        agent.send_signal(signal.SIGTERM)
        self.assertEqual(agent.wait(timeout=10), 0, log())
        time.sleep(0.5)
        self.assertEqual(hung_wrappers(), [], "hung wrapper left behind")
        # Each hung recording lived at most its deadline plus the grace
        # (plus the agent's 100 ms polling and this loop's 100 ms).
        self.assertGreaterEqual(len(lifetimes), 3, log())
        for pid, life in lifetimes.items():
            self.assertLessEqual(life, start_timeout + grace + 1.0, f"pid {pid}")
        files = sorted(glob.glob(os.path.join(out, "profile_*.col")))
        self.assertGreaterEqual(len(files), 8, log())
        ends = []
        for f in files:
            header, stacks = parse_col(f)
            ends.append(ts(header["end_time"]))
            errors = [s for s in stacks if s[2] == "perf" and s[3]
                      and s[3][0].startswith("[Profiling timed out")]
            self.assertEqual(len(errors), 1, (f, stacks))
        # Written every 5 s: the windows end 5 s apart (the files appear as
        # their snapshots are cut, one window later).
        for a, b in zip(ends, ends[1:]):
            self.assertAlmostEqual(b - a, 5.0, delta=1.0)
        mtimes = [os.path.getmtime(f) for f in files]
        for a, b in zip(mtimes, mtimes[1:]):
            self.assertAlmostEqual(b - a, 5.0, delta=1.0)
        shutil.rmtree(work)


if __name__ == "__main__":
    AGENT = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)

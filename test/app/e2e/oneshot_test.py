#!/usr/bin/env python3
"""As root: one window of the real agent while a CPU-bound program runs
gives one .col in gProfiler's format with the program's hot functions under
its comm, kernel frames marked _[k], and as many samples as perf takes.

Usage: oneshot_test.py /path/to/gprofiler-agent
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

from common import (HEADER_KEYS, METADATA_KEYS, build_hot, error_stacks,
                    parse_col, read_text, start_agent, wait_for)

AGENT = None


class OneShot(unittest.TestCase):
    def run_agent_beside_hot(self, work, args):
        """Runs one agent window while the CPU-bound program runs; args is a
        list, or a function of the program's PID giving one. Returns the
        program's (ended) Popen and the agent's log."""
        hot = subprocess.Popen([build_hot(work), "60"])
        try:
            agent = start_agent(self, AGENT, args(hot.pid) if callable(args) else args,
                                os.path.join(work, "agent.log"))
            rc = agent.wait(timeout=120)
            log = read_text(os.path.join(work, "agent.log"))
            self.assertEqual(rc, 0, log)
        finally:
            hot.kill()
            hot.wait()
        return hot, log

    def test_one_window_profile(self):
        work = tempfile.mkdtemp(prefix="gpa-e2e-")
        out = os.path.join(work, "out")
        freq, secs = 99, 5
        hot, log = self.run_agent_beside_hot(work, ["-o", out, "-d", str(secs),
                                                    "-f", str(freq)])
        cols = [f for f in os.listdir(out) if f.startswith("profile_") and f.endswith(".col")]
        self.assertEqual(len(cols), 1, os.listdir(out))
        self.assertEqual(os.readlink(os.path.join(out, "last_profile.col")), cols[0])
        header, stacks = parse_col(os.path.join(out, cols[0]))
        for key in HEADER_KEYS:
            self.assertIn(key, header)
        for key in METADATA_KEYS:
            self.assertIn(key, header["metadata"])
        self.assertTrue(header["application_metadata_enabled"])
        # Index 0 is null; other entries belong to Python, Java, Ruby or
        # Node processes that happen to run on the host (appid_test.py).
        meta = header["application_metadata"]
        self.assertIsNone(meta[0])
        self.assertTrue(all(isinstance(m, dict) for m in meta[1:]), meta)
        self.assertEqual(header["metadata"]["run_arguments"]["profiling_duration"], secs)
        self.assertIn("cpu_avg", header["metrics"])
        self.assertIn("mem_avg", header["metrics"])
        self.assertGreater(len(stacks), 0)
        for index, container, comm, frames, count in stacks:
            self.assertLess(index, len(meta))
            self.assertGreater(count, 0)
            # A native program (and the agent's perf) has no metadata.
            if comm in ("hot", "perf"):
                self.assertEqual(index, 0, (comm, frames))
        # The hot program's functions, root first, under its comm.
        hot_stacks = [s for s in stacks if s[2] == "hot"]
        self.assertTrue(hot_stacks, "no stack of the hot program")
        hot_samples = sum(s[4] for s in hot_stacks)
        chained = sum(s[4] for s in hot_stacks
                      if "hot_middle" in s[3] and "hot_leaf" in s[3]
                      and s[3].index("hot_middle") < s[3].index("hot_leaf"))
        self.assertGreater(chained, hot_samples // 2, hot_stacks[:5])
        # Kernel frames are marked.
        kernel = [f for s in stacks for f in s[3] if f.endswith("_[k]")]
        self.assertTrue(kernel, "no kernel frame")
        # The counts add up to the samples perf recorded (the perf profiler
        # logs how many records perf script gave for the window) ...
        total = sum(s[4] for s in stacks) - sum(s[4] for s in error_stacks(stacks))
        recorded = [int(m) for m in re.findall(r"window 1: perf recorded (\d+) samples", log)]
        self.assertEqual(recorded, [total], log)
        # ... and perf took one sample per 1/frequency of the busy CPU at
        # least, and of every CPU at most.
        self.assertGreaterEqual(total, freq * secs * 0.9, f"{total} samples")
        self.assertLessEqual(total, freq * secs * os.cpu_count() * 1.1, f"{total} samples")
        # No error stack: perf worked.
        self.assertEqual(error_stacks(stacks), [])
        shutil.rmtree(work)

    def test_pids_restricts_the_profile(self):
        work = tempfile.mkdtemp(prefix="gpa-e2e-")
        out = os.path.join(work, "out")
        hot, log = self.run_agent_beside_hot(
            work, lambda pid: ["-o", out, "-d", "3", "-f", "99", "--pids", str(pid)])
        header, stacks = parse_col(os.path.join(out, "last_profile.col"))
        self.assertEqual(header["metadata"]["run_arguments"]["pids"], [hot.pid])
        self.assertTrue(stacks, log)
        self.assertEqual({s[2] for s in stacks}, {"hot"}, stacks[:5])
        shutil.rmtree(work)

    def test_perf_mode_smart_records_twice_and_keeps_deep_stacks(self):
        work = tempfile.mkdtemp(prefix="gpa-e2e-")
        out = os.path.join(work, "out")
        hot, log = self.run_agent_beside_hot(
            work, ["-o", out, "-d", "4", "-f", "99", "--perf-mode", "smart"])
        # Two recordings, one with DWARF call graphs, each gave its window.
        self.assertIn("[perf-dwarf] [info] perf: sampling with", log)
        self.assertIn("DWARF call graphs", log)
        fp = re.findall(r"\[perf\] \[info\] window 1: perf recorded (\d+) samples", log)
        dwarf = re.findall(r"\[perf-dwarf\] \[info\] window 1: perf recorded (\d+) samples",
                           log)
        self.assertEqual(len(fp), 1, log)
        self.assertEqual(len(dwarf), 1, log)
        header, stacks = parse_col(os.path.join(out, "last_profile.col"))
        self.assertEqual(header["metadata"]["run_arguments"]["perf_mode"], "smart")
        self.assertEqual(error_stacks(stacks), [])
        # One profile's worth of samples, not two: the merged total is the
        # frame-pointer recording's, less processes only DWARF saw (and
        # rounding of the scaled ones).
        total = sum(s[4] for s in stacks)
        self.assertLessEqual(total, int(fp[0]) + len(stacks), log)
        self.assertGreaterEqual(total, int(fp[0]) * 0.8, log)
        hot_stacks = [s for s in stacks if s[2] == "hot"]
        chained = sum(s[4] for s in hot_stacks
                      if "hot_middle" in s[3] and "hot_leaf" in s[3])
        self.assertGreater(chained, sum(s[4] for s in hot_stacks) // 2, hot_stacks[:5])
        shutil.rmtree(work)

    def test_pids_naming_no_running_process_is_an_error(self):
        work = tempfile.mkdtemp(prefix="gpa-e2e-")
        gone = subprocess.Popen(["true"])
        gone.wait()  # reaped: its PID names no process now
        agent = start_agent(self, AGENT, ["-o", os.path.join(work, "out"), "-d", "2",
                                    "--pids", str(gone.pid)],
                            os.path.join(work, "agent.log"))
        rc = agent.wait(timeout=30)
        log = read_text(os.path.join(work, "agent.log"))
        self.assertEqual(rc, 2, log)
        self.assertIn(f"--pids: no process {gone.pid} is running", log)
        self.assertFalse(os.path.exists(os.path.join(work, "out", "last_profile.col")))
        shutil.rmtree(work)

    def test_pids_target_that_exits(self):
        # The only target exits during the run: perf is not restarted in a
        # loop; the later windows carry an error stack that says why.
        work = tempfile.mkdtemp(prefix="gpa-e2e-")
        out = os.path.join(work, "out")
        target = subprocess.Popen(["sleep", "1000"])
        agent = start_agent(self, AGENT, ["-o", out, "-c", "-d", "2", "--pids", str(target.pid)],
                            os.path.join(work, "agent.log"))
        last = os.path.join(out, "last_profile.col")
        gone = f"none of the --pids processes ({target.pid}) is running"
        wait_for(lambda: "perf record is running" in read_text(os.path.join(work, "agent.log")))
        target.kill()
        target.wait()
        # Until a profile written after the target's exit says so.
        wait_for(lambda: os.path.exists(last) and gone in read_text(last), timeout=30)
        agent.send_signal(signal.SIGTERM)
        rc = agent.wait(timeout=30)
        log = read_text(os.path.join(work, "agent.log"))
        self.assertEqual(rc, 0, log)
        self.assertIn("perf record ended: a --pids process exited", log)
        self.assertNotIn("exited unexpectedly", log)
        self.assertEqual(log.count("perf record is running"), 1, log)
        header, stacks = parse_col(os.path.join(out, "last_profile.col"))
        self.assertTrue(any(gone in s[3][0] for s in error_stacks(stacks)), stacks)
        shutil.rmtree(work)


if __name__ == "__main__":
    AGENT = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)

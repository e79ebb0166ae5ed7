#!/usr/bin/env python3
"""As root: gProfiler's start-up rules. In a PID namespace of its own the
agent refuses to start with gProfiler's message, unless
--disable-pidns-check; the tools it starts (perf here, through a wrapper that
records its own limits) run with a core-file limit of 0, unless
--dont-disable-core-files, which leaves the limit the agent was given. With
more processes on the host than --skip-system-profilers-above at start, perf
does not run at all (the wrapper never starts), with one line saying why.

Usage: compat_test.py /path/to/gprofiler-agent
"""
import glob
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import unittest

from common import agent_env, parse_col

AGENT = None
WRAPPER = """#!/bin/sh
grep '^Max core file size' /proc/self/limits >> {limits}
exec {perf} "$@"
"""


def run_agent(args, preexec=None, prefix=()):
    return subprocess.run(list(prefix) + [AGENT, "--pid-file", "", "--log-file", ""] + args,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=agent_env(), timeout=120, preexec_fn=preexec)


class Compat(unittest.TestCase):
    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="gpa-compat-")
        self.addCleanup(shutil.rmtree, self.work, True)

    def test_refuses_to_run_in_a_pid_namespace_unless_told(self):
        unshare = ["unshare", "--pid", "--fork", "--mount-proc"]
        out = os.path.join(self.work, "out")
        r = run_agent(["-o", out, "-d", "1"], prefix=unshare)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("Please run me in the init PID namespace!", r.stdout)
        self.assertIn("--disable-pidns-check", r.stdout)
        self.assertEqual(glob.glob(os.path.join(out, "*")), [])
        r = run_agent(["-o", out, "-d", "2", "--disable-pidns-check"], prefix=unshare)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertNotIn("init PID namespace", r.stdout)
        cols = glob.glob(os.path.join(out, "profile_*.col"))
        self.assertEqual(len(cols), 1, r.stdout)
        header, stacks = parse_col(cols[0])
        self.assertTrue(stacks)
        # In the host's namespace the check passes by itself.
        r = run_agent(["-o", out, "-d", "1"])
        self.assertEqual(r.returncode, 0, r.stdout)

    def core_limits(self, extra, preexec=None):
        """The core-file limits (soft, hard) the perf wrapper ran with."""
        limits = os.path.join(self.work, "limits-" + str(len(extra)))
        wrapper = os.path.join(self.work, "perf-wrapper")
        with open(wrapper, "w") as f:
            f.write(WRAPPER.format(perf=shutil.which("perf"), limits=limits))
        os.chmod(wrapper, 0o755)
        out = os.path.join(self.work, "out-" + str(len(extra)))
        r = run_agent(["-o", out, "-d", "1", "--perf-path", wrapper] + extra, preexec)
        self.assertEqual(r.returncode, 0, r.stdout)
        with open(limits) as f:
            lines = f.read().splitlines()
        self.assertTrue(lines, "the wrapper never ran")
        values = {tuple(line.split()[4:6]) for line in lines}
        self.assertEqual(len(values), 1, lines)
        return values.pop()

    def test_tools_run_without_core_files_unless_told(self):
        def allow_cores():
            resource.setrlimit(resource.RLIMIT_CORE, (1 << 20, 1 << 20))

        self.assertEqual(self.core_limits([], allow_cores), ("0", "0"))
        self.assertEqual(self.core_limits(["--dont-disable-core-files"], allow_cores),
                         ("1048576", "1048576"))


    def test_perf_is_skipped_above_the_process_limit(self):
        wrapper = os.path.join(self.work, "perf-wrapper")
        limits = os.path.join(self.work, "limits")
        with open(wrapper, "w") as f:
            f.write(WRAPPER.format(perf=shutil.which("perf"), limits=limits))
        os.chmod(wrapper, 0o755)
        running = len([d for d in os.listdir("/proc") if d.isdigit()])
        out = os.path.join(self.work, "out-skip")
        r = run_agent(["-o", out, "-d", "1", "--perf-path", wrapper,
                       "--skip-system-profilers-above", "1"])
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertEqual(r.stdout.count("skipping the system profilers (perf)"), 1, r.stdout)
        self.assertFalse(os.path.exists(limits), "perf ran")
        self.assertEqual(len(glob.glob(os.path.join(out, "profile_*.col"))), 1, r.stdout)
        # Under the limit perf runs as usual.
        r = run_agent(["-o", out, "-d", "1", "--perf-path", wrapper,
                       "--skip-system-profilers-above", str(running * 10)])
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertNotIn("skipping the system profilers", r.stdout)
        self.assertTrue(os.path.exists(limits), "perf did not run")


if __name__ == "__main__":
    AGENT = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)

#!/usr/bin/env python3
"""As root: SIGTERM to a running agent makes it exit 0 within 5 s, with no
child process left behind and its private temporary directory removed, also
while perf is still starting (--perf-start-timeout 600); a second signal
forces the exit; SIGUSR1 and SIGUSR2 are logged and ignored; SIGHUP reloads.

Usage: term_test.py /path/to/gprofiler-agent
"""
import glob
import json
import os
import signal
import sys
import tempfile
import subprocess
import time
import unittest
import urllib.request

from common import alive, children_of, read_text, start_agent, wait_for

AGENT = None
SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "support",
                      "server.py")


class Term(unittest.TestCase):
    def run_and_stop(self, sig):
        work = tempfile.mkdtemp(prefix="gpa-term-")
        out = os.path.join(work, "out")
        temp_root = os.path.join(work, "tmp")
        os.mkdir(temp_root)
        agent = start_agent(self, AGENT, ["-o", out, "-c", "-d", "2", "--temp-dir", temp_root],
                            os.path.join(work, "agent.log"))
        # Wait until it profiles (perf record running, a profile written).
        wait_for(lambda: glob.glob(os.path.join(out, "profile_*.col")))
        log = lambda: read_text(os.path.join(work, "agent.log"))
        self.assertTrue(glob.glob(os.path.join(out, "profile_*.col")), log())
        children = children_of(agent.pid)
        self.assertTrue(children, "perf record should be running")
        self.assertEqual(len(glob.glob(os.path.join(temp_root, "gprofiler-agent.*"))), 1)
        t0 = time.time()
        agent.send_signal(sig)
        rc = agent.wait(timeout=10)
        took = time.time() - t0
        self.assertEqual(rc, 0, log())
        self.assertLess(took, 5.0)
        time.sleep(0.5)
        left = [pid for pid in children if alive(pid)]
        self.assertEqual(left, [], "children left behind")
        self.assertEqual(glob.glob(os.path.join(temp_root, "gprofiler-agent.*")), [])
        self.assertIn("shutting down", log())

    def test_second_signal_forces_the_exit(self):
        # A backend that takes a minute to answer an upload keeps the
        # orderly shutdown waiting (the upload in flight gets up to 2 s to
        # finish, so that it is not sent again after a restart); a second
        # signal must cut that short, kill perf and exit 1 at once.
        work = tempfile.mkdtemp(prefix="gpa-term2-")
        out = os.path.join(work, "out")
        backend = subprocess.Popen([sys.executable, SERVER, "--token", "term-token",
                                    "--service", "term-test"],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.addCleanup(lambda: (backend.kill(), backend.wait()))
        port, control = (int(x) for x in backend.stdout.readline().split()[1:3])
        req = urllib.request.Request(f"http://127.0.0.1:{control}/config",
                                     data=json.dumps({"latency": 60}).encode(), method="POST")
        urllib.request.urlopen(req, timeout=10).read()
        log_path = os.path.join(work, "agent.log")
        agent = start_agent(self, AGENT, ["-o", out, "-c", "-d", "1", "-u",
                                          "--token", "term-token",
                                          "--service-name", "term-test",
                                          "--server-host", f"http://127.0.0.1:{port}",
                                          "--server-upload-timeout", "120",
                                          "--spool-dir", os.path.join(work, "spool")],
                            log_path)
        log = lambda: read_text(log_path)
        # The first profile is written once it is in the spool, as its
        # upload starts.
        self.assertTrue(wait_for(lambda: glob.glob(os.path.join(out, "profile_*.col"))), log())
        time.sleep(0.3)
        children = children_of(agent.pid)
        self.assertTrue(children, "perf record should be running")
        agent.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        self.assertIsNone(agent.poll(), "the orderly shutdown should still be waiting:\n" + log())
        t0 = time.time()
        agent.send_signal(signal.SIGTERM)
        rc = agent.wait(timeout=10)
        took = time.time() - t0
        self.assertEqual(rc, 1, log())
        self.assertLess(took, 2.0, log())
        self.assertIn("forcing the exit", log())
        time.sleep(0.5)
        self.assertEqual([pid for pid in children if alive(pid)], [], "children left behind")

    def test_sigterm_while_perf_starts(self):
        # perf that never gets ready (its start-up check hangs and ignores
        # SIGTERM), with a start timeout of ten minutes: a stop request
        # must not wait for it.
        work = tempfile.mkdtemp(prefix="gpa-term3-")
        wrapper = os.path.join(work, "perf-wrapper")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\ntrap '' TERM\nexec sleep 100001\n")
        os.chmod(wrapper, 0o755)
        temp_root = os.path.join(work, "tmp")
        os.mkdir(temp_root)
        log_path = os.path.join(work, "agent.log")
        agent = start_agent(self, AGENT, ["-o", os.path.join(work, "out"), "-c", "-d", "5",
                                          "--perf-path", wrapper, "--perf-start-timeout", "600",
                                          "--temp-dir", temp_root], log_path)
        log = lambda: read_text(log_path)
        self.assertTrue(wait_for(lambda: children_of(agent.pid), timeout=10), log())
        time.sleep(1)
        children = children_of(agent.pid)
        t0 = time.time()
        agent.send_signal(signal.SIGTERM)
        try:
            rc = agent.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.fail("still running 20 s after SIGTERM:\n" + log())
        took = time.time() - t0
        self.assertEqual(rc, 0, log())
        self.assertLess(took, 5.0, log())
        time.sleep(0.5)
        self.assertEqual([pid for pid in children if alive(pid)], [], "children left behind")
        self.assertEqual(glob.glob(os.path.join(temp_root, "gprofiler-agent.*")), [])

    def test_hup_reloads_and_usr_signals_are_ignored(self):
        work = tempfile.mkdtemp(prefix="gpa-term4-")
        out = os.path.join(work, "out")
        log_path = os.path.join(work, "agent.log")
        agent = start_agent(self, AGENT, ["-o", out, "-c", "-d", "1", "--no-perf"], log_path)
        log = lambda: read_text(log_path)
        self.assertTrue(wait_for(lambda: "running" in log(), timeout=10), log())
        for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP):
            agent.send_signal(sig)
            time.sleep(0.3)
            self.assertIsNone(agent.poll(), f"{sig.name} stopped the agent:\n" + log())
        # SIGUSR1/2 are ignored; SIGHUP reads the configuration again (here
        # the same: nothing to apply; root.control tests real changes).
        self.assertTrue(wait_for(lambda: log().count("ignored, still running") == 2,
                                 timeout=5), log())
        self.assertTrue(wait_for(lambda: log().count(
            "SIGHUP: nothing changed that applies while running") == 2, timeout=5), log())
        # Still profiling after them.
        before = len(glob.glob(os.path.join(out, "profile_*.col")))
        self.assertTrue(wait_for(lambda: len(glob.glob(os.path.join(out, "profile_*.col")))
                                 > before, timeout=10), log())
        agent.send_signal(signal.SIGTERM)
        self.assertEqual(agent.wait(timeout=10), 0, log())

    def test_sigterm(self):
        self.run_and_stop(signal.SIGTERM)

    def test_sigint(self):
        self.run_and_stop(signal.SIGINT)


if __name__ == "__main__":
    AGENT = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)

#!/usr/bin/env python3
"""As root: SIGTERM to a running agent makes it exit 0 within 5 s, with no
child process left behind and its private temporary directory removed.

Usage: term_test.py /path/to/gprofiler-agent
"""
import glob
import os
import signal
import socket
import sys
import tempfile
import time
import unittest

from common import alive, children_of, read_text, start_agent, wait_for

AGENT = None


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
        # A backend that accepts connections and never answers keeps the
        # uploader busy, so the orderly shutdown waits for it; a second
        # signal must cut that short, kill perf and exit 1 at once.
        work = tempfile.mkdtemp(prefix="gpa-term2-")
        out = os.path.join(work, "out")
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        port = server.getsockname()[1]
        agent = start_agent(self, AGENT, ["-o", out, "-c", "-d", "1", "-u", "--token", "t",
                                    "--service-name", "term-test",
                                    "--server-host", f"http://127.0.0.1:{port}",
                                    "--server-upload-timeout", "60",
                                    "--spool-dir", os.path.join(work, "spool")],
                            os.path.join(work, "agent.log"))
        log = lambda: read_text(os.path.join(work, "agent.log"))
        try:
            # The uploader is stuck once the backend has a connection.
            server.settimeout(60)
            conn, _ = server.accept()
            time.sleep(0.5)
            children = children_of(agent.pid)
            self.assertTrue(children, "perf record should be running")
            agent.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            self.assertIsNone(agent.poll(), "the orderly shutdown should still be waiting:\n" + log())
            t0 = time.time()
            agent.send_signal(signal.SIGTERM)
            rc = agent.wait(timeout=10)
            took = time.time() - t0
            conn.close()
        finally:
            server.close()
        self.assertEqual(rc, 1, log())
        self.assertLess(took, 2.0, log())
        self.assertIn("forcing the exit", log())
        time.sleep(0.5)
        self.assertEqual([pid for pid in children if alive(pid)], [], "children left behind")

    def test_sigterm(self):
        self.run_and_stop(signal.SIGTERM)

    def test_sigint(self):
        self.run_and_stop(signal.SIGINT)


if __name__ == "__main__":
    AGENT = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)

#!/usr/bin/env python3
"""As root: -c -d 3 for 60 s writes about 20 profiles whose windows neither
overlap nor leave gaps of more than a second, and last_profile.col is always
a complete profile.

Usage: continuous_test.py /path/to/gprofiler-agent
"""
import glob
import os
import signal
import sys
import tempfile
import time
import unittest

from common import parse_col, read_text, start_agent, ts, wait_for

AGENT = None


class Continuous(unittest.TestCase):
    def test_sixty_seconds_of_three_second_windows(self):
        work = tempfile.mkdtemp(prefix="gpa-cont-")
        out = os.path.join(work, "out")
        agent = start_agent(self, AGENT, ["-o", out, "-c", "-d", "3"],
                            os.path.join(work, "agent.log"))
        log = lambda: read_text(os.path.join(work, "agent.log"))
        # Wait for the first profile, then run 60 s, reading
        # last_profile.col all along.
        self.assertTrue(wait_for(lambda: os.path.exists(os.path.join(out, "last_profile.col")),
                                 step=0.1), log())
        end = time.time() + 60
        reads = 0
        while time.time() < end:
            parse_col(os.path.join(out, "last_profile.col"))  # complete, or raises
            reads += 1
            time.sleep(0.05)
        agent.send_signal(signal.SIGTERM)
        self.assertEqual(agent.wait(timeout=10), 0, log())
        files = sorted(glob.glob(os.path.join(out, "profile_*.col")))
        self.assertGreaterEqual(len(files), 19, log())
        self.assertLessEqual(len(files), 23, log())
        windows = []
        for f in files:
            header, stacks = parse_col(f)
            windows.append((ts(header["start_time"]), ts(header["end_time"])))
            self.assertTrue(stacks)
        windows.sort()
        for (s1, e1), (s2, e2) in zip(windows, windows[1:]):
            self.assertGreater(e1, s1)
            self.assertLessEqual(e1, s2 + 0.001, "windows overlap")
            self.assertLessEqual(s2 - e1, 1.0, "gap of more than a second")
        print(f"{len(files)} profiles, last_profile.col read {reads} times", file=sys.stderr)


if __name__ == "__main__":
    AGENT = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)

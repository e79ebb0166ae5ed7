#!/usr/bin/env python3
"""As root: with memory thresholds set low in a config file, the real agent
is under memory pressure at once; each level's action is logged once in the
episode, the actors act on it once, and profiles keep coming.

Usage: pressure_test.py /path/to/gprofiler-agent
"""
import glob
import json
import os
import re
import signal
import sys
import tempfile
import time
import unittest

from common import parse_col, read_text, start_agent

AGENT = None


class Pressure(unittest.TestCase):
    def test_low_thresholds(self):
        work = tempfile.mkdtemp(prefix="gpa-pressure-")
        out = os.path.join(work, "out")
        config = os.path.join(work, "agent.json")
        with open(config, "w") as f:
            json.dump({"continuous": True, "profiling_duration": 2,
                       "output_dir": out, "monitor_interval": 1,
                       "agent_rss_warning_mb": 1, "agent_rss_critical_mb": 2,
                       "agent_rss_emergency_mb": 3}, f)
        agent = start_agent(self, AGENT, ["--config", config],
                            os.path.join(work, "agent.log"))
        time.sleep(20)
        agent.send_signal(signal.SIGTERM)
        self.assertEqual(agent.wait(timeout=10), 0)
        log = read_text(os.path.join(work, "agent.log"))
        # The monitor: one line per level for the one episode.
        for level in ["warning", "critical", "emergency"]:
            lines = re.findall(rf"memory pressure {level} \(episode 1\).*action: .*", log)
            self.assertEqual(len(lines), 1, f"{level}:\n{log}")
        self.assertNotIn("(episode 2)", log)
        # The listeners: each acted once.
        self.assertEqual(len(re.findall(r"runtime profilers sit out", log)), 1, log)
        self.assertEqual(len(re.findall(r"released free heap memory", log)), 1, log)
        self.assertLessEqual(len(re.findall(r"restarting perf", log)), 1, log)
        # And the agent kept profiling.
        files = sorted(glob.glob(os.path.join(out, "profile_*.col")))
        self.assertGreaterEqual(len(files), 5, log)
        header, stacks = parse_col(files[-1])
        self.assertTrue(stacks)


if __name__ == "__main__":
    AGENT = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)

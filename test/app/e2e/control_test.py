#!/usr/bin/env python3
"""As root, the real agent with real perf: Performance Studio's control plane
against the stand-in Studio on 127.0.0.1 (test/support/server.py), and
configuration reloads by SIGHUP.

Studio: the agent profiles only on command; a continuous start command runs
windows of the commanded duration at the commanded frequency, an ad-hoc one
pauses it (its window in progress is closed early and kept), runs one window
and the continuous run resumes; a stop ends profiling; a command id handed
out again is not run twice, not even by the next run of the agent; each
command's completion is reported.

SIGHUP: a changed good config file changes the windows from the next
boundary on (the log says what changed and prints the effective
configuration); a bad one keeps the running configuration and the log says
why.

Usage: control_test.py /path/to/gprofiler-agent
"""
import glob
import json
import os
import signal
import sys
import tempfile
import time
import unittest

from common import parse_col, read_text, start_agent, ts, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "support"))
from backend import Backend  # noqa: E402

AGENT = None
TOKEN = "control-token-4f9a2c"
SERVICE = "control-svc"


def profiles(out):
    """(start, end, sampling_frequency) of every profile written, in order."""
    result = []
    for f in sorted(glob.glob(os.path.join(out, "profile_*.col"))):
        header, _ = parse_col(f)
        result.append((ts(header["start_time"]), ts(header["end_time"]),
                       header["sampling_frequency"]))
    result.sort()
    return result


class StudioControl(unittest.TestCase):
    def agent(self, work, backend, spool):
        out = os.path.join(work, "out")
        log_path = os.path.join(work, f"agent-{len(glob.glob(work + '/agent-*'))}.log")
        proc = start_agent(self, AGENT, [
            "-o", out, "-u", "--token", TOKEN, "--service-name", SERVICE,
            "--server-host", backend.url, "--api-server", backend.url,
            "--enable-heartbeat-server", "--heartbeat-interval", "1",
            "--spool-dir", spool, "--dont-send-logs", "--temp-dir", work], log_path)
        return proc, out, log_path

    def queue(self, backend, command_id, command_type, deliver="once", **config):
        backend.call("/commands", {"command_id": command_id, "command_type": command_type,
                                   "combined_config": config, "deliver": deliver})

    def completions(self, backend, command_id):
        return [c for c in backend.call("/completions") if c.get("command_id") == command_id]

    def test_commands_start_pause_resume_stop_once(self):
        work = tempfile.mkdtemp(prefix="gpa-control-")
        spool = os.path.join(work, "spool")
        backend = Backend(self, TOKEN, SERVICE)
        agent, out, log_path = self.agent(work, backend, spool)
        log = lambda: read_text(log_path)
        # Heartbeats, and no profiling before a command.
        self.assertTrue(wait_for(lambda: len(backend.call("/heartbeats")) >= 3, 30), log())
        self.assertEqual(profiles(out), [], log())
        beat = backend.call("/heartbeats")[-1]
        self.assertEqual(beat["service_name"], SERVICE)
        self.assertNotIn(TOKEN, log())

        # A continuous command: 2 s windows at 7 Hz; Studio hands it out in
        # every heartbeat (a lost "sent" mark): it runs once.
        self.queue(backend, "cmd-cont-1", "start", deliver="always",
                   duration=2, frequency=7, continuous=True)
        self.assertTrue(wait_for(lambda: len(profiles(out)) >= 4, 60), log())
        got = profiles(out)
        for start, end, hz in got:
            self.assertEqual(hz, 7, got)
            self.assertAlmostEqual(end - start, 2.0, delta=0.3)
        self.assertTrue(wait_for(lambda: self.completions(backend, "cmd-cont-1"), 10), log())
        self.assertEqual(self.completions(backend, "cmd-cont-1")[0]["status"], "completed")
        self.assertEqual(log().count("session 1 started"), 1, log())

        # An ad-hoc command: one 5 s window at 3 Hz; continuous pauses and
        # resumes.
        before = len(profiles(out))
        self.queue(backend, "cmd-adhoc-1", "start", duration=5, frequency=3, continuous=False)
        self.assertTrue(wait_for(lambda: self.completions(backend, "cmd-adhoc-1"), 30), log())
        done = self.completions(backend, "cmd-adhoc-1")[0]
        self.assertEqual(done["status"], "completed")
        self.assertGreaterEqual(done["execution_time"], 5)
        adhoc = [p for p in profiles(out)[before:] if p[2] == 3]
        self.assertEqual(len(adhoc), 1, profiles(out))
        self.assertAlmostEqual(adhoc[0][1] - adhoc[0][0], 5.0, delta=0.3)
        self.assertIn("paused for ad-hoc command cmd-adhoc-1", log())
        # Continuous resumed: 7 Hz windows after the ad-hoc one.
        self.assertTrue(wait_for(lambda: [p for p in profiles(out) if p[0] > adhoc[0][1]
                                          and p[2] == 7], 30), log())
        self.assertIn("resuming continuous command cmd-cont-1", log())
        windows = profiles(out)
        for (s1, e1, _), (s2, e2, _) in zip(windows, windows[1:]):
            self.assertLessEqual(e1, s2 + 0.001, "windows overlap")

        # A stop: profiling ends.
        self.queue(backend, "cmd-stop-1", "stop", stop_level="host")
        self.assertTrue(wait_for(lambda: self.completions(backend, "cmd-stop-1"), 30), log())
        time.sleep(1)
        count = len(profiles(out))
        time.sleep(5)
        self.assertEqual(len(profiles(out)), count, log())

        # The next run of the agent does not run an executed id again.
        agent.send_signal(signal.SIGTERM)
        self.assertEqual(agent.wait(timeout=30), 0, log())
        agent2, out2, log2_path = self.agent(work, backend, spool)
        log2 = lambda: read_text(log2_path)
        self.queue(backend, "cmd-adhoc-1", "start", duration=2, frequency=3, continuous=False)
        self.assertTrue(wait_for(lambda: "cmd-adhoc-1 was executed before" in log2(), 30),
                        log2())
        beat = backend.call("/heartbeats")[-1]
        self.assertIn("cmd-adhoc-1", beat["executed_command_ids"])
        time.sleep(4)
        self.assertEqual(len(profiles(out2)), count, log2())
        self.assertEqual(len(self.completions(backend, "cmd-adhoc-1")), 1)
        self.assertNotIn(TOKEN, log() + log2())
        agent2.send_signal(signal.SIGTERM)
        self.assertEqual(agent2.wait(timeout=30), 0, log2())


def write_conf(path, text):
    """Replaces the config file at once (as a deployment tool does): a reload
    never reads it half written."""
    with open(path + ".new", "w") as f:
        f.write(text)
    os.rename(path + ".new", path)


class Reload(unittest.TestCase):
    def test_sighup_applies_a_good_file_and_keeps_the_config_on_a_bad_one(self):
        work = tempfile.mkdtemp(prefix="gpa-reload-")
        out = os.path.join(work, "out")
        conf = os.path.join(work, "config.ini")
        write_conf(conf, "profiling-duration = 2\nprofiling-frequency = 11\n")
        log_path = os.path.join(work, "agent.log")
        agent = start_agent(self, AGENT, ["--config", conf, "-o", out, "-c",
                                          "--temp-dir", work], log_path)
        log = lambda: read_text(log_path)
        self.assertTrue(wait_for(lambda: len(profiles(out)) >= 2, 60), log())
        # A good change: 3 s windows at 29 Hz from the next boundary.
        write_conf(conf, "profiling-duration = 3\nprofiling-frequency = 29\n")
        sent = time.time()
        agent.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: [p for p in profiles(out) if p[2] == 29][1:], 60),
                        log())
        text = log()
        self.assertIn("SIGHUP: profiling_frequency: 11 -> 29", text)
        self.assertIn("SIGHUP: profiling_duration: 2 -> 3", text)
        effective = text.split("effective configuration: ", 1)[1].split("\n", 1)[0]
        self.assertEqual(json.loads(effective)["profiling_frequency"], 29)
        self.assertEqual(json.loads(effective)["profiling_duration"], 3)
        got = profiles(out)
        old = [p for p in got if p[2] == 11]
        new = [p for p in got if p[2] == 29]
        # The window in progress at the SIGHUP ran to its end (2 s) with the
        # old options; the new ones have 3 s windows; none overlap.
        self.assertTrue(all(abs(e - s - 2.0) < 0.3 for s, e, _ in old), got)
        self.assertTrue(any(e > sent for s, e, _ in old), got)
        self.assertTrue(all(abs(e - s - 3.0) < 0.3 for s, e, _ in new), got)
        for (s1, e1, _), (s2, e2, _) in zip(got, got[1:]):
            self.assertLessEqual(e1, s2 + 0.001, "windows overlap")
        # The new session starts once the old one is merged; its perf takes
        # about a second and a half to record (the event is not probed again).
        self.assertLess(new[0][0] - old[-1][1], 3.0, "gap at the reload")
        # An option that needs a restart is said so and kept.
        write_conf(conf, "profiling-duration = 3\nprofiling-frequency = 29\n"
                   "log-rotate-backup-count = 7\n")
        agent.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: "SIGHUP: log_rotate_backup_count (" in log(), 20),
                        log())
        line = [l for l in log().splitlines() if "SIGHUP: log_rotate_backup_count (" in l][-1]
        self.assertIn("-> 7", line)
        self.assertIn("applies at the next start of the agent only", line)
        self.assertTrue(wait_for(lambda: "nothing changed that applies while running" in log(),
                                 20), log())
        # A bad file: nothing changes, the log says why (file and line).
        write_conf(conf, "profiling-duration = 3\nprofiling-frequency = fast\n")
        agent.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: "the configuration was not reloaded" in log(), 20),
                        log())
        line = [l for l in log().splitlines() if "was not reloaded" in l][-1]
        self.assertIn(conf, line)
        self.assertIn("fast", line)
        count = len(profiles(out))
        self.assertTrue(wait_for(lambda: len(profiles(out)) >= count + 2, 30), log())
        self.assertTrue(all(p[2] == 29 for p in profiles(out)[count:]), profiles(out))
        self.assertEqual(agent.poll(), None)
        agent.send_signal(signal.SIGTERM)
        self.assertEqual(agent.wait(timeout=30), 0, log())


if __name__ == "__main__":
    AGENT = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)

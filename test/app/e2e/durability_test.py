#!/usr/bin/env python3
"""The write-ahead spool against kill -9: the real agent is killed at random
points, many times, while it uploads to the test backend (test/support/
server.py on 127.0.0.1, answering every upload after a delay so that kills
land in the middle of uploads) and while the backend is down. Then one last
agent runs until its spool is empty.

Asserts: every profile the agent wrote to its output directory reached the
backend (nothing written locally is lost), and none was stored twice. The
one duplicate the protocol cannot rule out (it has no idempotent uploads) is
a kill in the instant between the backend storing a profile and the agent
removing it from its spool: a profile stored twice passes only if its first
copy was answered to an agent run that was killed within ANSWER_TO_REMOVAL
seconds after the answer, and its second copy came from a later run. Two
copies from one run fail the test, whatever the timing. Such duplicates are
counted and printed.

Usage: durability_test.py /path/to/gprofiler-agent [KILLS]
"""
import glob
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "support"))
import backend as support  # noqa: E402
from common import agent_env, read_text, wait_for  # noqa: E402

AGENT = None
KILLS = 24
# How long the agent may take from the backend's answer to removing the
# profile from its spool on this 2-core machine under load (curl reads the
# answer, the sender thread hands it to the uploader actor, which unlinks
# the file): generous, so that it stays a bound and not a measurement.
ANSWER_TO_REMOVAL = 0.1
TOKEN = "durability-token"
SERVICE = "durability"


class Backend(support.Backend):
    def __init__(self, test):
        super().__init__(test, TOKEN, SERVICE)

    def uploads(self):
        return [r for r in self.requests() if r["path"] == "/api/v2/profiles"]


class Durability(unittest.TestCase):
    def test_kill_9_loses_nothing_and_sends_nothing_twice(self):
        rng = random.Random(int(os.environ.get("GPA_SEED", time.time())))
        work = tempfile.mkdtemp(prefix="gpa-durability-")
        out, spool, tmp = (os.path.join(work, d) for d in ("out", "spool", "tmp"))
        os.mkdir(tmp)
        backend = Backend(self)
        backend.call("/config", {"latency": 0.4})
        # No profiler reads other processes (this is about the spool): a
        # fresh agent's Python profiler attaches to every Python process of
        # the host in its first window, which 24 restarts would repeat.
        args = ["--pid-file", "", "--log-file", "", "--no-perf", "--no-python", "-c", "-d", "1",
                "-o", out, "-u", "--token", TOKEN, "--service-name", SERVICE,
                "--server-host", f"http://127.0.0.1:{backend.port}",
                "--server-upload-timeout", "5", "--spool-dir", spool,
                "--temp-dir", tmp]
        log_path = os.path.join(work, "agent.log")
        runs = []  # (started, killed) per agent run
        down = False
        for n in range(KILLS):
            # A backend outage now and then, across several agent runs.
            if n % 6 == 2:
                backend.call("/down", {})
                down = True
            elif down and n % 6 == 5:
                backend.call("/up", {})
                down = False
            started = time.time()
            with open(log_path, "a") as log:
                agent = subprocess.Popen([AGENT] + args, stdout=log,
                                         stderr=subprocess.STDOUT, env=agent_env())
            self.addCleanup(lambda a=agent: a.poll() is None and (a.kill(), a.wait()))
            time.sleep(rng.uniform(0.5, 3.0))
            agent.send_signal(signal.SIGKILL)
            runs.append((started, time.time()))
            agent.wait()
        if down:
            backend.call("/up", {})
        # A last agent sends what is left, then stops in order.
        runs.append((time.time(), float("inf")))
        with open(log_path, "a") as log:
            agent = subprocess.Popen([AGENT] + args, stdout=log,
                                     stderr=subprocess.STDOUT, env=agent_env())
        self.addCleanup(lambda: agent.poll() is None and (agent.kill(), agent.wait()))
        spooled = lambda: glob.glob(os.path.join(spool, "*.prof"))
        time.sleep(3)
        self.assertTrue(wait_for(lambda: not spooled(), timeout=120),
                        f"spool not drained: {spooled()}\n" + read_text(log_path)[-3000:])
        agent.send_signal(signal.SIGTERM)
        self.assertEqual(agent.wait(timeout=30), 0, read_text(log_path)[-3000:])

        uploads = backend.uploads()
        accepted = {}
        for r in uploads:
            if r["status"] == 200:
                accepted.setdefault(r["body"]["profile"], []).append(r)
        aborted = sum(1 for r in uploads if r["fault"] == "aborted")
        written = sorted(glob.glob(os.path.join(out, "profile_*.col")))
        self.assertGreater(len(written), KILLS, "too few profiles to mean anything")
        lost = []
        for path in written:
            with open(path) as f:
                if f.read() not in accepted:
                    lost.append(os.path.basename(path))
        self.assertEqual(lost, [], f"written locally but never accepted: {lost}")
        def run_of(t):
            return next(i for i, (start, end) in enumerate(runs) if start <= t <= end)

        unexplained, gaps = [], []
        for text, copies in accepted.items():
            first = copies[0]
            run = run_of(first["answered_at"])
            for again in copies[1:]:
                gap = runs[run][1] - first["answered_at"]
                if run_of(again["received_at"]) > run and gap <= ANSWER_TO_REMOVAL:
                    gaps.append(gap)
                else:
                    unexplained.append((text.split("\n", 1)[0][-60:], run,
                                        run_of(again["received_at"]), gap))
        self.assertEqual(unexplained, [], "profiles stored twice")
        print(f"{KILLS} kills; {len(written)} profiles written locally, "
              f"{len(accepted)} accepted, none lost; {aborted} upload(s) cut by a "
              f"kill; {len(gaps)} sent again after a kill in the instant after "
              f"the answer (kill {', '.join(f'{g * 1000:.1f}' for g in gaps) or '-'} ms "
              f"after it)", file=sys.stderr)
        # The kills did land in the middle of uploads.
        self.assertGreater(aborted, 0)


if __name__ == "__main__":
    AGENT = sys.argv.pop(1)
    if len(sys.argv) > 1 and sys.argv[1].isdigit():
        KILLS = int(sys.argv.pop(1))
    unittest.main()

#!/usr/bin/env python3
"""As root: container names in real profiles. A CPU-bound program is moved
into a container's cgroup as a runtime makes it (Docker's
/docker/<64 hex>, Kubernetes' /kubepods/besteffort/pod<uid>/<64 hex>), a
stand-in for the runtime answers on a unix socket (the Docker Engine API:
test/support/docker_standin.py; CRI's gRPC over h2c:
test/support/cri_standin.js), and one window of the real agent gives the
program's stacks the container's name as their container field
("<index>;<container>;<comm>;...") and lists it in the header's
"containers"; --disable-container-names takes both away.

Usage: containers_test.py /path/to/gprofiler-agent
"""
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

from common import build_hot, parse_col, read_text, start_agent

AGENT = None
HERE = os.path.dirname(os.path.abspath(__file__))
SUPPORT = os.path.join(HERE, "..", "..", "support")
COMM = "gpa_ctr_hot"


def cgroup_mount():
    """A cgroup hierarchy to make containers' cgroups in: a v1 one
    (pids, or any other) on a hybrid host, the v2 root on a unified one."""
    v1, v2 = [], []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.split(" - ", 1)
            fstype = right.split()[0]
            point = left.split()[4]
            if fstype == "cgroup":
                v1.append(point)
            elif fstype == "cgroup2":
                v2.append(point)
    v1.sort(key=lambda p: (not p.endswith("/pids"), p))
    return (v1 + v2)[0]


class ContainerCgroup:
    """The cgroup directory `relative` (e.g. docker/<id>) under `mount`,
    made for the test and removed afterwards with the directories it made."""

    def __init__(self, test, mount, relative):
        self.made = []
        path = mount
        for part in relative.split("/"):
            path = os.path.join(path, part)
            if not os.path.isdir(path):
                os.mkdir(path)
                self.made.append(path)
        self.path = path
        test.addCleanup(self.remove)

    def enter(self, pid):
        with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
            f.write(str(pid))

    def remove(self):
        for path in reversed(self.made):
            for _ in range(50):  # an exiting process leaves it a moment later
                try:
                    os.rmdir(path)
                    break
                except OSError:
                    time.sleep(0.1)


class Standin:
    """A runtime stand-in on a unix socket, until the test ends."""

    def __init__(self, test, argv):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        test.addCleanup(self.stop)
        line = self.proc.stdout.readline()
        test.assertEqual(line.strip(), b"READY", argv)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdin.close()
        self.proc.stdout.close()


class Containers(unittest.TestCase):
    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="gpa-containers-")
        self.addCleanup(shutil.rmtree, self.work, True)
        hot = build_hot(self.work)
        self.hot = os.path.join(self.work, COMM)
        os.rename(hot, self.hot)
        self.mount = cgroup_mount()

    def hot_in(self, relative):
        """Starts the CPU-bound program in the cgroup `relative`; returns its
        PID. Killed, and the cgroup removed, when the test ends."""
        cg = ContainerCgroup(self, self.mount, relative)
        proc = subprocess.Popen([self.hot, "120"])

        def stop():
            proc.kill()
            proc.wait()

        self.addCleanup(stop)
        cg.enter(proc.pid)
        with open(f"/proc/{proc.pid}/cgroup") as f:
            self.assertIn(relative, f.read())
        return proc.pid

    def profile(self, name, args):
        """One 3-second window of the agent; returns the header and the
        hot program's stacks."""
        out = os.path.join(self.work, "out-" + name)
        log = os.path.join(self.work, name + ".log")
        agent = start_agent(self, AGENT, ["-o", out, "-d", "3"] + args, log)
        rc = agent.wait(timeout=120)
        text = read_text(log)
        self.assertEqual(rc, 0, text)
        cols = [f for f in os.listdir(out) if f.startswith("profile_") and f.endswith(".col")]
        self.assertEqual(len(cols), 1, os.listdir(out))
        header, stacks = parse_col(os.path.join(out, cols[0]))
        hot = [s for s in stacks if s[2] == COMM]
        self.assertTrue(hot, f"no stack of {COMM}: {text}")
        return header, stacks, hot, text

    def check_named(self, name, args, container):
        # A busy process outside any container, so that the window surely
        # has stacks without a container name (the agent and perf alone may
        # go unsampled in a short window).
        outside = subprocess.Popen(["nice", "-n", "19", "sh", "-c", "while :; do :; done"])
        self.addCleanup(lambda: (outside.kill(), outside.wait()))
        header, stacks, hot, _ = self.profile(name, args)
        self.assertEqual({s[1] for s in hot}, {container})
        self.assertIn(container, header["containers"])
        self.assertTrue(header["container_names_enabled"])
        # Processes outside containers (the shell above, the agent, perf)
        # have none.
        self.assertIn("", {s[1] for s in stacks if s[2] != COMM})
        header, stacks, hot, _ = self.profile(name + "-disabled",
                                              args + ["--disable-container-names"])
        self.assertEqual({s[1] for s in stacks}, {""})
        self.assertEqual(header["containers"], [])
        self.assertFalse(header["container_names_enabled"])

    def test_docker(self):
        cid = secrets.token_hex(32)
        self.hot_in("docker/" + cid)
        listing = os.path.join(self.work, "docker.json")
        with open(listing, "w") as f:
            json.dump([{"Id": secrets.token_hex(32), "Names": ["/other"]},
                       {"Id": cid, "Names": ["/gpa-e2e-web"], "State": "running"}], f)
        sock = os.path.join(self.work, "docker.sock")
        Standin(self, [sys.executable, os.path.join(SUPPORT, "docker_standin.py"),
                       "--socket", sock, "--containers", listing])
        self.check_named("docker", ["--docker-socket", sock, "--cri-socket", ""],
                         "gpa-e2e-web")

    def test_cri(self):
        cid = secrets.token_hex(32)
        uid = "8d1b6a0e-5e3c-4c2b-9f0d-" + secrets.token_hex(6)
        self.hot_in(f"kubepods/besteffort/pod{uid}/{cid}")
        listing = os.path.join(self.work, "cri.json")
        with open(listing, "w") as f:
            json.dump([{"id": cid, "name": "hot", "attempt": 1,
                        "labels": {"io.kubernetes.container.name": "hot",
                                   "io.kubernetes.pod.name": "hot-5f7c9",
                                   "io.kubernetes.pod.namespace": "e2e",
                                   "io.kubernetes.pod.uid": uid},
                        "annotations": {"io.kubernetes.container.restartCount": "1"}}], f)
        sock = os.path.join(self.work, "cri.sock")
        Standin(self, [shutil.which("node"), os.path.join(SUPPORT, "cri_standin.js"),
                       "--socket", sock, "--containers", listing])
        self.check_named("cri", ["--docker-socket", "", "--cri-socket", sock],
                         f"k8s_hot_hot-5f7c9_e2e_{uid}_1")

    def test_no_runtime_socket(self):
        """Without any runtime: no names, one info line, no stall."""
        self.hot_in("docker/" + secrets.token_hex(32))
        missing = os.path.join(self.work, "missing.sock")
        start = time.monotonic()
        header, stacks, hot, log = self.profile(
            "none", ["--docker-socket", missing, "--cri-socket", missing])
        self.assertLess(time.monotonic() - start, 60)
        self.assertEqual({s[1] for s in hot}, {""})
        self.assertEqual(header["containers"], [])
        self.assertTrue(header["container_names_enabled"])
        self.assertEqual(log.count("no container runtime answers"), 1, log)


if __name__ == "__main__":
    AGENT = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)

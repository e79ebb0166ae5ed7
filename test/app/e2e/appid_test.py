#!/usr/bin/env python3
"""As root: application ids and application metadata in a real profile. A
real `python3 -m http.server` kept busy with requests and a real
`java -jar` program (built here with OpenJDK 17's javac and jar) run while the
agent profiles one window: their stacks carry gProfiler's app id frame right
after the comm ("appid: python: -m http.server", "appid: java: spin.jar"), and
each line's application metadata index points at the header entry holding
their exe, execfn and arch. --disable-application-identifiers removes the
frames; --disable-application-metadata the indexes and the entries.

Usage: appid_test.py /path/to/gprofiler-agent
"""
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import unittest
import urllib.request

from common import parse_col, read_text, start_agent, wait_for

AGENT = None
PYTHON = "/usr/bin/python3"
JDK = "/usr/lib/jvm/java-17-openjdk-amd64/bin"

SPIN_JAVA = """
public class Spin {
    public static void main(String[] args) {
        long x = 0;
        long end = System.currentTimeMillis() + 120000;
        while (System.currentTimeMillis() < end) {
            for (int i = 0; i < 1000000; i++) x = x * 31 + i;
        }
        System.out.println(x);
    }
}
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def appid_frames(stacks):
    """{app id frame: [(index, comm, count)]} of parse_col's stacks."""
    found = {}
    for index, _container, comm, frames, count in stacks:
        if frames and frames[0].startswith("appid: "):
            found.setdefault(frames[0], []).append((index, comm, count))
    return found


class AppIds(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        missing = [p for p in (PYTHON, JDK + "/javac", JDK + "/jar", JDK + "/java")
                   if not os.access(p, os.X_OK)]
        if missing:
            raise unittest.SkipTest(f"missing {missing}")
        cls.work = tempfile.mkdtemp(prefix="gpa-appid-")
        with open(os.path.join(cls.work, "Spin.java"), "w") as f:
            f.write(SPIN_JAVA)
        with open(os.path.join(cls.work, "manifest.txt"), "w") as f:
            f.write("Main-Class: Spin\n")
        subprocess.run([JDK + "/javac", "-d", cls.work, os.path.join(cls.work, "Spin.java")],
                       check=True)
        subprocess.run([JDK + "/jar", "cfm", "spin.jar", "manifest.txt", "Spin.class"],
                       check=True, cwd=cls.work)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work, True)

    def setUp(self):
        self.port = free_port()
        quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.server = subprocess.Popen(
            [PYTHON, "-m", "http.server", "--bind", "127.0.0.1", str(self.port)],
            cwd=self.work, **quiet)
        self.java = subprocess.Popen([JDK + "/java", "-Xmx64m", "-jar", "spin.jar"],
                                     cwd=self.work, **quiet)
        for p in (self.server, self.java):
            self.addCleanup(p.wait)
            self.addCleanup(p.kill)
        url = f"http://127.0.0.1:{self.port}/spin.jar"

        def up():
            try:
                urllib.request.urlopen(url, timeout=1).read()
                return True
            except OSError:
                return False

        self.assertTrue(wait_for(up, timeout=30), "http.server did not answer")
        # Keep the server busy while the agent profiles.
        self.stop = threading.Event()

        def hammer():
            while not self.stop.is_set():
                try:
                    urllib.request.urlopen(url, timeout=2).read()
                except OSError:
                    pass

        self.threads = [threading.Thread(target=hammer) for _ in range(4)]
        for t in self.threads:
            t.start()
        self.addCleanup(self.stop_hammer)

    def stop_hammer(self):
        self.stop.set()
        for t in self.threads:
            t.join()

    def profile(self, extra):
        """One 5 s window of the agent with `extra` flags; returns the .col's
        path."""
        out = os.path.join(self.work, "out-" + "-".join(a.strip("-") for a in extra))
        log = os.path.join(self.work, "agent.log")
        agent = start_agent(self, AGENT, ["-o", out, "-d", "5", "-f", "99"] + extra, log)
        self.assertEqual(agent.wait(timeout=120), 0, read_text(log))
        cols = [f for f in os.listdir(out) if f.startswith("profile_") and f.endswith(".col")]
        self.assertEqual(len(cols), 1, os.listdir(out))
        return os.path.join(out, cols[0]), read_text(log)

    def test_app_ids_and_metadata(self):
        path, log = self.profile([])
        header, stacks = parse_col(path)
        self.assertTrue(header["application_metadata_enabled"])
        meta = header["application_metadata"]
        self.assertIsNone(meta[0])
        found = appid_frames(stacks)
        python_id = "appid: python: -m http.server"
        java_id = "appid: java: spin.jar"
        self.assertIn(python_id, found, sorted(found))
        self.assertIn(java_id, found, sorted(found))
        machine = platform.machine()
        for frame, exe, execfn in [
                (python_id, os.path.realpath(PYTHON), PYTHON),
                (java_id, os.path.realpath(JDK + "/java"), JDK + "/java")]:
            indexes = {index for index, _comm, _count in found[frame]}
            self.assertEqual(len(indexes), 1, (frame, indexes))
            index = indexes.pop()
            self.assertGreater(index, 0, frame)
            self.assertLess(index, len(meta), frame)
            got = meta[index]
            # The runtime profiler's fields come first (root.runtime and
            # root.python check their values).
            runtime_keys = (["java_version", "libjvm_elfid", "jvm_flags"] if frame == java_id
                            else ["python_version", "exe_elfid", "libpython_elfid",
                                  "sys_maxunicode"])
            self.assertEqual(list(got)[:len(runtime_keys)], runtime_keys, got)
            got = {k: v for k, v in got.items() if k not in runtime_keys}
            self.assertEqual(got, {"exe": exe, "execfn": execfn, "arch": machine}, frame)
        # Every index points into the list; a frame is never an app id but
        # right after the comm.
        for index, _container, comm, frames, _count in stacks:
            self.assertLess(index, len(meta))
            self.assertFalse(any(f.startswith("appid: ") for f in frames[1:]), frames)
        # Native processes perf profiled alone get neither (gProfiler gives
        # perf-only processes metadata and ids for Node.js and Go only), nor
        # do the agent and its children: Debian's perf links libpython,
        # yet it is no Python application.
        agent_comm = [s for s in stacks if s[2] in ("gprofiler-agen", "perf")]
        for index, _container, _comm, frames, _count in agent_comm:
            self.assertEqual(index, 0)
            self.assertFalse(frames and frames[0].startswith("appid: "))

    def test_disable_application_identifiers(self):
        path, _ = self.profile(["--disable-application-identifiers"])
        header, stacks = parse_col(path)
        self.assertEqual(appid_frames(stacks), {})
        # Metadata stays.
        self.assertGreater(len(header["application_metadata"]), 1)
        self.assertTrue(any(index > 0 for index, *_ in stacks))

    def test_no_java(self):
        """gProfiler gives Java ids and metadata through its Java profiler:
        none with --no-java; Python's stay."""
        path, _ = self.profile(["--no-java"])
        header, stacks = parse_col(path)
        found = appid_frames(stacks)
        self.assertNotIn("appid: java: spin.jar", found)
        self.assertIn("appid: python: -m http.server", found)
        java = os.path.realpath(JDK + "/java")
        self.assertFalse([m for m in header["application_metadata"][1:]
                          if m["exe"] == java], header["application_metadata"])

    def test_disable_application_metadata(self):
        path, _ = self.profile(["--disable-application-metadata"])
        with open(path) as f:
            lines = f.read().splitlines()
        header = json.loads(lines[0][2:])
        self.assertFalse(header["application_metadata_enabled"])
        self.assertEqual(header["application_metadata"], [None])
        # Lines are "<container>;<comm>;[appid: ...;]frames <count>": no index.
        ids = set()
        for line in lines[1:]:
            fields = line.rsplit(" ", 1)[0].split(";")
            self.assertGreaterEqual(len(fields), 2, line)
            if len(fields) > 2 and fields[2].startswith("appid: "):
                ids.add(fields[2])
        self.assertIn("appid: python: -m http.server", ids)
        self.assertIn("appid: java: spin.jar", ids)


if __name__ == "__main__":
    AGENT = os.path.abspath(sys.argv.pop(1))
    unittest.main()

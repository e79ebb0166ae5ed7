#!/usr/bin/env python3
"""Hostile input to the real binary's file subcommands and from the server
(issue 12, defects 5 and 7): a .col whose header nests deeper than a
recursive parser's stack, special files (/dev/zero, a FIFO), files over the
size limit, and a server answer nested as deep. Each must end with exit 1 and
one clear line naming the file and what is wrong, quickly, never a crash
(exit 139), a hang or a bad_alloc.

Usage: untrusted_input_test.py /path/to/gprofiler-agent /path/to/server.py
"""
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

AGENT = None
SERVER_PY = None
# Deep enough to overflow an 8 MB stack in a recursive JSON parser (the old
# agent crashed from about 130,000 levels of '[').
DEPTH = 1000000
TOKEN = "untrusted-input-token"


def small_stack():
    """A 2 MB stack (systemd's LimitSTACK= or a container may set one; glibc
    gives threads the same): the client keeps 64 KB of a server's answer,
    about 65,000 levels of '[', which a recursive parser needs ~4 MB for."""
    resource.setrlimit(resource.RLIMIT_STACK, (2 << 20, 2 << 20))


def run(args, stdin=subprocess.DEVNULL, timeout=20, preexec_fn=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPROFILER_")}
    env["GPROFILER_DONT_SEND_LOGS"] = "1"  # never to gProfiler's API server
    return subprocess.run([AGENT] + args, env=env, capture_output=True,
                          stdin=stdin, timeout=timeout, preexec_fn=preexec_fn)


def deep_col(path, depth=DEPTH):
    with open(path, "w") as f:
        f.write("# " + "[" * depth + "]" * depth + "\n0;;app;main 3\n")


class Backend:
    """test/support/server.py as a child process."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, SERVER_PY, "--token", TOKEN, "--service", "svc"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready = self.proc.stdout.readline().split()
        assert ready[0] == "READY", ready
        self.port, self.control = int(ready[1]), int(ready[2])

    def post(self, path, obj):
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.control}{path}", data=json.dumps(obj).encode(),
            method="POST")
        urllib.request.urlopen(req, timeout=10).read()

    def requests(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.control}/requests",
                                    timeout=10) as r:
            return json.load(r)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def assert_fails(self, r, *needles):
        err = r.stderr.decode(errors="replace")
        self.assertEqual(r.returncode, 1, err)
        self.assertEqual(r.stdout, b"")
        lines = err.strip().splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertTrue(lines[0].startswith("gprofiler-agent: error: "), lines[0])
        self.assertNotIn("invalid_request", lines[0])
        for needle in needles:
            self.assertIn(needle, lines[0])

    def upload_file(self, path, backend_port=1, preexec_fn=None):
        return run(["upload-file", "--file-path", path, "--token", TOKEN,
                    "--service-name", "svc", "--server-host",
                    f"http://127.0.0.1:{backend_port}", "--log-file",
                    self.path("agent.log")], preexec_fn=preexec_fn)


class DeepJson(Base):
    def test_flamegraph_refuses_a_deeply_nested_header(self):
        deep_col(self.path("deep.col"))
        self.assert_fails(run(["flamegraph", self.path("deep.col")]),
                          self.path("deep.col"), "nested deeper than 64 levels")

    def test_flamegraph_refuses_a_deep_header_on_stdin(self):
        deep_col(self.path("deep.col"))
        with open(self.path("deep.col"), "rb") as f:
            self.assert_fails(run(["flamegraph", "-"], stdin=f),
                              "nested deeper than 64 levels")

    def test_upload_file_refuses_a_deeply_nested_header(self):
        deep_col(self.path("deep.col"))
        backend = Backend()
        try:
            r = self.upload_file(self.path("deep.col"), backend.port)
            self.assert_fails(r, self.path("deep.col"), "is not a .col profile",
                              "nested deeper than 64 levels")
            self.assertEqual(backend.requests(), [])
        finally:
            backend.close()

    def test_a_deeply_nested_server_answer_does_not_crash_upload_file(self):
        with open(self.path("ok.col"), "w") as f:
            f.write('# {"application_metadata_enabled": true}\n0;;app;main 3\n')
        backend = Backend()
        try:
            # Accepted, but with an answer nobody should parse recursively:
            # the upload counts, the gpid is not read from it. Run with a
            # 2 MB stack: the 64 KB the client keeps of the answer crashed
            # the old agent there (on 8 MB it needed a larger answer).
            backend.post("/faults", ["deep"])
            r = self.upload_file(self.path("ok.col"), backend.port, small_stack)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(b"gpid none", r.stdout)
            # Refused, with such an answer: exit 1 with the status.
            backend.post("/faults", ["deep500"])
            r = self.upload_file(self.path("ok.col"), backend.port, small_stack)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn(b"HTTP 500", r.stderr)
        finally:
            backend.close()


class Agent(Base):
    def test_deeply_nested_server_answers_do_not_crash_the_agent(self):
        backend = Backend()
        try:
            backend.post("/faults", ["deep", "deep500", "deep"])
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith("GPROFILER_")}
            env["GPROFILER_DONT_SEND_LOGS"] = "1"  # never to gProfiler's API server
            os.mkdir(self.path("tmp"))
            agent = subprocess.Popen(
                [AGENT, "--pid-file", "", "--log-file", "", "--no-perf", "-c",
                 "-d", "1", "-o", self.path("out"), "-u", "--token", TOKEN,
                 "--service-name", "svc", "--server-host",
                 f"http://127.0.0.1:{backend.port}", "--spool-dir",
                 self.path("spool"), "--temp-dir", self.path("tmp")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                preexec_fn=small_stack)
            try:
                deadline = time.time() + 60
                uploads = []
                while time.time() < deadline and len(uploads) < 4:
                    time.sleep(0.5)
                    uploads = [r for r in backend.requests()
                               if r["path"] == "/api/v2/profiles"]
                    self.assertIsNone(agent.poll(), "the agent died")
                self.assertGreaterEqual(len(uploads), 4)
                self.assertEqual([r["fault"] for r in uploads[:3]],
                                 ["deep", "deep500", "deep"])
                agent.send_signal(signal.SIGTERM)
                self.assertEqual(agent.wait(timeout=30), 0)
            finally:
                if agent.poll() is None:
                    agent.kill()
                    agent.wait()
        finally:
            backend.close()


class SpecialFiles(Base):
    def test_dev_zero_is_refused_at_once(self):
        for args in (["flamegraph", "/dev/zero"], ["collapse-perf", "/dev/zero"]):
            self.assert_fails(run(args, timeout=10), "'/dev/zero'",
                              "a character device, not a regular file")
        self.assert_fails(self.upload_file("/dev/zero"), "'/dev/zero'",
                          "a character device, not a regular file")

    def test_a_fifo_is_refused_without_blocking(self):
        fifo = self.path("pipe.col")
        os.mkfifo(fifo)
        for args in (["flamegraph", fifo], ["collapse-perf", fifo]):
            self.assert_fails(run(args, timeout=10), fifo, "a FIFO")
        self.assert_fails(self.upload_file(fifo), fifo, "a FIFO")

    def test_files_over_the_limit_are_refused_before_reading(self):
        # Sparse files: the size is checked before a byte is read.
        big = self.path("big.col")
        with open(big, "w") as f:
            f.truncate((1 << 30) + 1)
        self.assert_fails(self.upload_file(big), big,
                          "larger than the limit of 1073741824 bytes")
        huge = self.path("huge.col")
        with open(huge, "w") as f:
            f.truncate((64 << 30) + 1)
        self.assert_fails(run(["flamegraph", huge]), huge,
                          "larger than the limit of 68719476736 bytes")


def main():
    global AGENT, SERVER_PY
    AGENT = sys.argv.pop(1)
    SERVER_PY = sys.argv.pop(1)
    unittest.main(verbosity=2)


if __name__ == "__main__":
    main()

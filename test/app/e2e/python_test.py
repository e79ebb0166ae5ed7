#!/usr/bin/env python3
"""As root: the Python profiler (the built-in CPython reader) with real
interpreters, real perf and the real agent.

- Every CPython 3.7-3.13 on the machine (pyenv's under /root/.pyenv/versions
  and Debian's python3.11) runs a script with known nested functions in two
  busy threads: the profile shows, under the interpreter's comm, each
  thread's exact call chain as gProfiler writes py-spy's frames
  (`name (file:first line)_[p]`), the threading module's frames carrying
  `[standard-library==<python -V>]`, and the process's application metadata
  holds gProfiler's Python fields, checked against the interpreter.
- CPython 2.7 and 3.6 (not read) keep their perf stacks, which carry an
  error frame naming the version; --no-python-versions drops the versions;
  --python-mode disabled leaves Python to perf; pyperf mode says it uses the
  built-in reader.
- A target killed in the middle of the window keeps the stacks it gave, and
  the agent goes on.
- --py-spy-path runs py-spy (a stand-in that checks gProfiler's arguments)
  instead of the reader; its stacks get the comm, `_[p]` and the versions.

Usage: python_test.py /path/to/gprofiler-agent
"""
import glob
import os
import re
import struct
import subprocess
import sys
import time
import unittest

from common import ProcessTest, parse_col, read_text, start_agent, wait_for

AGENT = None
PYENV = "/root/.pyenv/versions"

# Runs on Python 2.7 too (the versions that are not read).
TARGET = """import os, sys, threading, time


def alpha_leaf():
    while True:
        end = time.time() + 0.01
        while time.time() < end:
            pass
        time.sleep(0.03)


def alpha_middle():
    alpha_leaf()


def alpha_outer():
    alpha_middle()


class Beta(object):
    def leaf(self):
        while True:
            end = time.time() + 0.01
            while time.time() < end:
                pass
            time.sleep(0.03)


def beta_outer():
    Beta().leaf()


def main():
    # Busy a quarter of the time per thread, at the lowest priority: a dozen
    # of them leave the agent and perf their share of this 2-core machine.
    os.nice(19)
    for target in (alpha_outer, beta_outer):
        t = threading.Thread(target=target)
        t.daemon = True
        t.start()
    sys.stdout.write("ready\\n")
    sys.stdout.flush()
    time.sleep(600)


main()
"""


def def_line(name):
    """The line of `def name` in TARGET (a function's first line, which
    py-spy -F reports)."""
    for n, line in enumerate(TARGET.split("\n"), start=1):
        if line.strip().startswith("def " + name + "("):
            return n
    raise AssertionError(name)


def interpreters():
    """(tag, path) of the CPythons on this machine."""
    found = []
    for d in sorted(glob.glob(os.path.join(PYENV, "*"))):
        m = re.match(r"^(\d+)\.(\d+)", os.path.basename(d))
        if not m:
            continue
        exe = os.path.join(d, "bin", "python%s.%s" % m.groups())
        if os.access(exe, os.X_OK):
            found.append(("pyenv-" + os.path.basename(d), exe))
    if os.access("/usr/bin/python3.11", os.X_OK):
        found.append(("debian-3.11", "/usr/bin/python3.11"))
    return found


def version_of(exe):
    r = subprocess.run([exe, "-V"], capture_output=True, text=True)
    return (r.stdout or r.stderr).strip().split()[-1]


def build_id(path):
    """The GNU build id of an ELF64 file, read here independently of the
    agent; None if it has none."""
    with open(path, "rb") as f:
        data = f.read()
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3a)

    def section(i):
        name, type_, _, _, off, size = struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)
        return name, off, size
    _, str_off, _ = section(shstrndx)
    for i in range(shnum):
        name, off, size = section(i)
        if data[str_off + name:].split(b"\0", 1)[0] == b".note.gnu.build-id":
            namesz, descsz, _ = struct.unpack_from("<III", data, off)
            desc = off + 12 + (namesz + 3) // 4 * 4
            return data[desc:desc + descsz].hex()
    return None


def profiles(out):
    return sorted(glob.glob(os.path.join(out, "profile_*.col")))


class Python(ProcessTest):
    WORK_PREFIX = "gpa-python-"

    def start_target(self, tag, exe):
        """Runs TARGET as its own file (its path tells its stacks apart)
        and waits until its threads run."""
        script = os.path.join(self.work, "target_%s.py" % re.sub(r"\W", "_", tag))
        with open(script, "w") as f:
            f.write(TARGET)
        p = subprocess.Popen([exe, script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        self.assertEqual(p.stdout.readline().strip(), b"ready", tag)
        return p, script

    def run_agent(self, args, pids, seconds=6):
        out = os.path.join(self.work, "out%d" % len(os.listdir(self.work)))
        log = os.path.join(self.work, "agent%d.log" % len(os.listdir(self.work)))
        agent = start_agent(self, AGENT, ["-o", out, "-d", str(seconds), "--pids",
                                          ",".join(str(p) for p in pids)] + args, log)
        self.assertEqual(agent.wait(timeout=180), 0, read_text(log))
        return parse_col(profiles(out)[-1]), read_text(log)

    def test_every_interpreter(self):
        read, unread = [], []
        for tag, exe in interpreters():
            minor = tuple(int(x) for x in version_of(exe).split(".")[:2])
            if minor >= (3, 7) and minor <= (3, 13):
                read.append((tag, exe))
            elif minor in ((2, 7), (3, 6)):
                unread.append((tag, exe))
        self.assertTrue(any(t == "debian-3.11" for t, _ in read) or read,
                        "no CPython 3.7-3.13 on this machine")
        targets = {}
        for tag, exe in read + unread:
            p, script = self.start_target(tag, exe)
            targets[tag] = (exe, p, script)
        (header, stacks), log = self.run_agent([], [p.pid for _, p, _ in targets.values()])
        self.assertIn("python: the built-in CPython reader", log)

        for tag, exe in read:
            _, p, script = targets[tag]
            version = version_of(exe)
            comm = os.path.basename(os.readlink("/proc/%d/exe" % p.pid))[:15]
            mine = [s for s in stacks if any(("(%s:" % script) in f for f in s[3])]
            self.assertTrue(mine, "%s: no stack of %s in the profile" % (tag, script))
            self.assertTrue(all(s[2] == comm for s in mine), (tag, comm, mine[:2]))
            # Each thread's exact call chain, outermost first.
            alpha = ["%s (%s:%d)_[p]" % (n, script, def_line(n))
                     for n in ("alpha_outer", "alpha_middle", "alpha_leaf")]
            beta = ["beta_outer (%s:%d)_[p]" % (script, def_line("beta_outer")),
                    "leaf (%s:%d)_[p]" % (script, def_line("leaf"))]
            self.assertTrue(any(s[3][-3:] == alpha for s in mine),
                            "%s: no %s in %s" % (tag, alpha, [s[3] for s in mine][:4]))
            self.assertTrue(any(s[3][-2:] == beta for s in mine),
                            "%s: no %s in %s" % (tag, beta, [s[3] for s in mine][:4]))
            # The thread's start: threading's frames, with the interpreter's
            # version as gProfiler's standard-library package.
            std = [f for s in mine for f in s[3] if "/threading.py:" in f]
            self.assertTrue(std, tag)
            for f in std:
                self.assertTrue(f.endswith(" [standard-library==%s])_[p]" % version), (tag, f))
            # Only Python frames after the appid frame (perf's stacks of the
            # process are replaced, as gProfiler does).
            for s in mine:
                py = [f for f in s[3] if not f.startswith("appid: ")]
                self.assertTrue(all(f.endswith("_[p]") for f in py), (tag, s[3]))
            # gProfiler's Python metadata, before the common fields.
            md = header["application_metadata"][mine[0][0]]
            self.assertEqual(list(md)[:4], ["python_version", "exe_elfid",
                                            "libpython_elfid", "sys_maxunicode"], md)
            self.assertEqual(md["python_version"], "Python " + version, tag)
            real_exe = os.readlink("/proc/%d/exe" % p.pid)
            bid = build_id(real_exe)
            if bid:
                self.assertEqual(md["exe_elfid"], "buildid:" + bid, tag)
            else:
                self.assertTrue(md["exe_elfid"].startswith("sha1:"), md)
            with open("/proc/%d/maps" % p.pid) as f:
                libpython = [line.split()[-1] for line in f if "/libpython" in line]
            if libpython:
                self.assertEqual(md["libpython_elfid"], "buildid:" + build_id(libpython[0]), tag)
            else:
                self.assertIsNone(md["libpython_elfid"], tag)
            self.assertIsNone(md["sys_maxunicode"])
            self.assertIsNone(p.poll(), tag)

        for tag, exe in unread:
            _, p, _ = targets[tag]
            comm = os.path.basename(os.readlink("/proc/%d/exe" % p.pid))[:15]
            version = ".".join(version_of(exe).split(".")[:2])
            mine = [s for s in stacks if s[2] == comm]
            self.assertTrue(mine, "%s: perf has no stacks of %s" % (tag, comm))
            errors = [f for s in mine for f in s[3] if f.startswith("[Profiling error:")]
            self.assertTrue(errors, (tag, [s[3] for s in mine][:3]))
            self.assertTrue(all(version in f for f in errors), errors[:2])
            self.assertFalse(any(f.endswith("_[p]") for s in mine for f in s[3]), tag)

    def test_options(self):
        exe = "/usr/bin/python3.11" if os.access("/usr/bin/python3.11", os.X_OK) \
            else interpreters()[-1][1]
        p, script = self.start_target("opts", exe)
        (header, stacks), log = self.run_agent(["--no-python-versions"], [p.pid], 4)
        frames = [f for s in stacks for f in s[3]]
        self.assertTrue(any(f.startswith("alpha_leaf (%s:" % script) for f in frames), frames[:9])
        self.assertFalse(any("standard-library" in f for f in frames), frames[:9])

        (header, stacks), log = self.run_agent(["--python-mode", "disabled"], [p.pid], 4)
        frames = [f for s in stacks for f in s[3]]
        self.assertTrue(frames)
        self.assertFalse(any(f.endswith("_[p]") for f in frames), frames[:9])
        self.assertNotIn("built-in CPython reader", log)

        (header, stacks), log = self.run_agent(["--python-mode", "pyperf"], [p.pid], 4)
        self.assertIn("--python-mode pyperf: PyPerf (eBPF) is not built, the built-in "
                      "reader is used", log)
        frames = [f for s in stacks for f in s[3]]
        self.assertTrue(any(f.startswith("alpha_leaf (%s:" % script) for f in frames))

    def test_py_spy_path(self):
        # py-spy (a stand-in that checks gProfiler's arguments) instead of
        # the built-in reader: its stacks under the comm, _[p] on every
        # frame, the standard library's version added by the agent.
        exe = "/usr/bin/python3.11" if os.access("/usr/bin/python3.11", os.X_OK) \
            else interpreters()[-1][1]
        p, script = self.start_target("pyspy", exe)
        version = version_of(exe)
        stdlib = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(exe))),
                              "lib", "python" + ".".join(version.split(".")[:2]),
                              "threading.py")
        if not os.path.exists(stdlib):
            stdlib = "/usr/lib/python3.11/threading.py"
        stacks_file = os.path.join(self.work, "stacks.txt")
        with open(stacks_file, "w") as f:
            f.write("_bootstrap (%s:990);spied_work (%s:7)\n" % (stdlib, script))
        os.environ["PYSPY_STANDIN_STACKS"] = stacks_file
        self.addCleanup(os.environ.pop, "PYSPY_STANDIN_STACKS", None)
        standin = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                               "support", "pyspy_standin.py")
        (header, stacks), log = self.run_agent(["--py-spy-path", standin], [p.pid], 4)
        self.assertIn("records each Python process for the window", log)
        self.assertNotIn("built-in CPython reader", log)
        comm = os.path.basename(os.readlink("/proc/%d/exe" % p.pid))[:15]
        mine = [s for s in stacks if any(f.startswith("spied_work (") for f in s[3])]
        self.assertTrue(mine, [s[3] for s in stacks][:5])
        self.assertTrue(all(s[2] == comm for s in mine))
        self.assertEqual(mine[0][3][-2:], [
            "_bootstrap (%s:990 [standard-library==%s])_[p]" % (stdlib, version),
            "spied_work (%s:7)_[p]" % script])

    def test_target_killed_mid_window(self):
        exe = "/usr/bin/python3.11" if os.access("/usr/bin/python3.11", os.X_OK) \
            else interpreters()[-1][1]
        p, script = self.start_target("killed", exe)
        q, other = self.start_target("stays", exe)
        out = os.path.join(self.work, "out")
        log = os.path.join(self.work, "agent.log")
        agent = start_agent(self, AGENT, ["-o", out, "-d", "6", "-v", "--pids",
                                          "%d,%d" % (p.pid, q.pid)], log)
        # Killed 2 s into the window (which starts when perf is ready).
        self.assertTrue(wait_for(lambda: "Python process(es) to sample" in read_text(log), 60),
                        read_text(log))
        time.sleep(2)
        p.kill()
        p.wait()
        self.assertEqual(agent.wait(timeout=180), 0, read_text(log))
        header, stacks = parse_col(profiles(out)[-1])
        frames = [f for s in stacks for f in s[3]]
        self.assertTrue(any(f.startswith("alpha_leaf (%s:" % script) for f in frames),
                        "the killed target's samples are lost")
        self.assertTrue(any(f.startswith("alpha_leaf (%s:" % other) for f in frames))


if __name__ == "__main__":
    AGENT = sys.argv.pop(1)
    unittest.main(verbosity=2)

#!/usr/bin/env python3
"""As root: the Java runtime profiler with real perf and real processes.

- A Java program run with no special flags shows its own method names in the
  profile (perf names JIT frames from the map that jcmd/jattach
  Compiler.perfmap makes the JVM write).
- A tool that hangs on one of 50 targets does not delay the snapshot past
  its deadline: the profile comes on time, with one timeout error stack for
  that target, and the hung tool is stopped.
- A missing tool gives one clear line and the agent still profiles the rest.
- Node.js: a process started with --perf-basic-prof, and one started with no
  flags under --nodejs-mode attach-maps (the agent loads its perf-map addon
  through the inspector), show their own function names, with their appid
  frames and application metadata.

Usage: runtime_test.py /path/to/gprofiler-agent
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

from common import parse_col, read_text, start_agent, wait_for

AGENT = None
HOT_JAVA = """
public class Hot {
    static long fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
    public static void main(String[] a) throws Exception {
        long end = System.currentTimeMillis() + Long.parseLong(a[0]) * 1000;
        long s = 0;
        while (System.currentTimeMillis() < end) s += fib(22);
        System.out.println(s);
    }
}
"""
# A Node.js program whose hot function has a name of its own.
NODE_JS = """
function {name}(n) {{ return n < 2 ? n : {name}(n - 1) + {name}(n - 2); }}
const end = Date.now() + 60000;
(function loop() {{ {name}(24); if (Date.now() < end) setImmediate(loop); }})();
"""
# A process that maps a file named libjvm.so: a Java target by gProfiler's
# rule, without a JVM.
FAKE_JVM = ("import mmap, sys, time\n"
            "f = open(sys.argv[1], 'rb')\n"
            "m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)\n"
            "end = time.time() + 120\n"
            "while len(sys.argv) > 2 and time.time() < end: pass\n"
            "time.sleep(max(0, end - time.time()))\n")
# The stand-in jcmd: records each call, hangs (ignoring SIGTERM) on one pid.
STAND_IN = """#!/bin/sh
echo "$1" >> {calls}
if [ "$1" = "{hang}" ]; then trap '' TERM; exec sleep 1000; fi
echo "$1:"
exit 0
"""


def profiles(out):
    return sorted(glob.glob(os.path.join(out, "profile_*.col")))


class Runtime(unittest.TestCase):
    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="gpa-runtime-")
        self.addCleanup(shutil.rmtree, self.work, True)
        self.procs = []
        self.addCleanup(self.stop_procs)

    def stop_procs(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    def spawn(self, argv):
        # In the test's directory: node --perf-basic-prof writes a V8 log
        # into its working directory.
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             cwd=self.work)
        self.procs.append(p)
        return p

    def test_java_frames_are_named(self):
        with open(os.path.join(self.work, "Hot.java"), "w") as f:
            f.write(HOT_JAVA)
        subprocess.run(["javac", "-d", self.work, os.path.join(self.work, "Hot.java")],
                       check=True)
        java = self.spawn(["java", "-cp", self.work, "Hot", "60"])
        time.sleep(2)  # the JVM starts and compiles fib
        out = os.path.join(self.work, "out")
        log = os.path.join(self.work, "agent.log")
        agent = start_agent(self, AGENT, ["-o", out, "-d", "8"], log)
        self.assertEqual(agent.wait(timeout=120), 0, read_text(log))
        text = read_text(log)
        self.assertIn("java: JIT symbols through", text)
        header, stacks = parse_col(profiles(out)[-1])
        named = [s for s in stacks if any("Hot.fib" in f for f in s[3])]
        self.assertTrue(named, "no Hot.fib frame in the profile")
        self.assertTrue(all(s[2] == "java" for s in named), named[:3])
        self.assertIsNone(java.poll())

    def test_node_frames_are_named(self):
        scripts = {}
        for name in ("basicProfWork", "attachedWork"):
            scripts[name] = os.path.join(self.work, name + ".js")
            with open(scripts[name], "w") as f:
                f.write(NODE_JS.format(name=name))
        basic = self.spawn(["node", "--perf-basic-prof", scripts["basicProfWork"]])
        plain = self.spawn(["node", scripts["attachedWork"]])
        time.sleep(1)
        out = os.path.join(self.work, "out")
        log = os.path.join(self.work, "agent.log")
        agent = start_agent(self, AGENT, ["-o", out, "-d", "6",
                                          "--nodejs-mode", "attach-maps"], log)
        self.assertEqual(agent.wait(timeout=120), 0, read_text(log))
        text = read_text(log)
        self.assertIn("nodejs: attach-maps", text)
        header, stacks = parse_col(profiles(out)[-1])
        meta = header["application_metadata"]
        version = subprocess.run(["node", "--version"], capture_output=True,
                                 text=True, check=True).stdout.strip()
        for name, proc in (("basicProfWork", basic), ("attachedWork", plain)):
            named = [s for s in stacks if any(f.startswith("JS:") and name in f
                                              for f in s[3])]
            self.assertTrue(named, f"no {name} frame in the profile")
            for s in named:
                self.assertEqual(s[2], "node", s)
                appid = f"appid: nodejs: {scripts[name]} ({scripts[name]})"
                self.assertEqual(s[3][0], appid, s)
                self.assertGreater(s[0], 0, s)
                self.assertEqual(meta[s[0]]["exe"], "/usr/bin/node", meta[s[0]])
                # gProfiler's NodePerfMetadata members come first.
                self.assertEqual(list(meta[s[0]])[:3], ["node_version", "link", "libc"])
                self.assertEqual(meta[s[0]]["node_version"], version)
                self.assertEqual(meta[s[0]]["link"], "dynamic")
                self.assertEqual(meta[s[0]]["libc"], "glibc")
            self.assertIsNone(proc.poll())
        # At its exit the agent stopped the map it started (and removed it),
        # as gProfiler does; the map of --perf-basic-prof is the process's.
        self.assertIn("1 of 1 attached Node processes stopped", text)
        self.assertFalse(os.path.exists(f"/tmp/perf-{plain.pid}.map"))
        self.assertTrue(os.path.exists(f"/tmp/perf-{basic.pid}.map"))

    def spawned_node_run(self, extra):
        """A one-window run (8 s) during which a plain Node process starts,
        3 s in; returns (whether its frames are named, its pid)."""
        script = os.path.join(self.work, "spawnedWork.js")
        with open(script, "w") as f:
            f.write(NODE_JS.format(name="spawnedWork"))
        out = os.path.join(self.work, "out-" + str(len(extra)))
        log = os.path.join(self.work, "agent-" + str(len(extra)) + ".log")
        agent = start_agent(self, AGENT, ["-o", out, "-d", "8",
                                          "--nodejs-mode", "attach-maps"] + extra, log)
        # The window starts once perf is ready.
        self.assertTrue(wait_for(lambda: "profiler perf is ready" in read_text(log), 60),
                        read_text(log))
        time.sleep(3)
        node = self.spawn(["node", script])
        self.assertEqual(agent.wait(timeout=120), 0, read_text(log))
        header, stacks = parse_col(profiles(out)[-1])
        named = any(s[2] == "node" and any(f.startswith("JS:") and "spawnedWork" in f
                                           for f in s[3]) for s in stacks)
        node.kill()
        node.wait()
        return named, node.pid

    def test_processes_spawned_mid_window_are_attached_with_the_flag(self):
        named, pid = self.spawned_node_run(["--profile-spawned-processes"])
        self.assertTrue(named, "the process started mid-window was not named")
        named, pid = self.spawned_node_run([])
        self.assertFalse(named)
        self.assertFalse(os.path.exists(f"/tmp/perf-{pid}.map"))

    def test_node_perf_mode_names_jitdump_frames(self):
        script = os.path.join(self.work, "jitdumpWork.js")
        with open(script, "w") as f:
            f.write(NODE_JS.format(name="jitdumpWork"))
        node = self.spawn(["node", "--perf-prof", script])
        time.sleep(1)
        out = os.path.join(self.work, "out")
        log = os.path.join(self.work, "agent.log")
        agent = start_agent(self, AGENT, ["-o", out, "-d", "4",
                                          "--nodejs-mode", "perf"], log)
        self.assertEqual(agent.wait(timeout=120), 0, read_text(log))
        header, stacks = parse_col(profiles(out)[-1])
        named = [s for s in stacks if any(f.startswith("JS:") and "jitdumpWork" in f
                                          for f in s[3])]
        self.assertTrue(named, "no jitdumpWork frame in the profile")
        self.assertTrue(all(s[2] == "node" for s in named), named[:3])
        # perf inject wrote its ELF files next to the jitdump (the process's
        # working directory), as gProfiler's perf mode does.
        self.assertTrue(glob.glob(os.path.join(self.work, f"jitted-{node.pid}-*.so")))
        self.assertIsNone(node.poll())

    def test_a_hung_tool_on_one_of_fifty_targets_costs_no_snapshot(self):
        lib = os.path.join(self.work, "libjvm.so")
        with open(lib, "wb") as f:
            f.write(b"\0" * 4096)
        # The one the tool hangs on spins, so that perf has samples of it to
        # carry the error (gProfiler's merge).
        fakes = [self.spawn([sys.executable, "-c", FAKE_JVM, lib]
                            + (["spin"] if i == 17 else [])) for i in range(50)]

        def mapped():
            n = 0
            for p in fakes:
                try:
                    with open(f"/proc/{p.pid}/maps") as m:
                        n += lib in m.read()
                except OSError:
                    pass
            return n == len(fakes)

        self.assertTrue(wait_for(mapped, 60))
        hang = fakes[17].pid
        calls = os.path.join(self.work, "calls")
        tool = os.path.join(self.work, "jcmd")
        with open(tool, "w") as f:
            f.write(STAND_IN.format(calls=calls, hang=hang))
        os.chmod(tool, 0o755)
        out = os.path.join(self.work, "out")
        log = os.path.join(self.work, "agent.log")
        duration, grace = 4, 6
        began = time.time()
        agent = start_agent(self, AGENT, ["-o", out, "-d", str(duration),
                                          "--jcmd-path", tool,
                                          "--java-jattach-timeout", "600",
                                          "--profiler-grace", str(grace),
                                          "--runtime-concurrency", "4"], log)
        self.assertEqual(agent.wait(timeout=120), 0, read_text(log))
        took = time.time() - began
        print(f"one-shot run with a hung tool: {took:.1f} s "
              f"(window {duration} s, grace {grace} s)")
        with open(calls) as f:
            called = [int(x) for x in f.read().split()]
        # Every fake was asked once (other JVMs of the host may be too).
        for p in fakes:
            self.assertEqual(called.count(p.pid), 1, called)
        header, stacks = parse_col(profiles(out)[-1])
        # The error is on perf's stacks of that process, as the frame after
        # the comm (and its app id, if any), as gProfiler merges it; only
        # there.
        timeouts = [s for s in stacks if "[Profiling error: timed out]" in s[3]]
        self.assertGreaterEqual(len(timeouts), 1, stacks)
        for s in timeouts:
            self.assertEqual(s[2], "python3")
            frames = [f for f in s[3] if not f.startswith("appid: ")]
            self.assertEqual(frames[0], "[Profiling error: timed out]", s)
            self.assertGreater(len(frames), 1, s)
        # The hung tool was stopped with the snapshot.
        leftover = subprocess.run(["pgrep", "-f", "^sleep 1000$"], capture_output=True,
                                  text=True).stdout.split()
        self.assertEqual(leftover, [])
        text = read_text(log)
        self.assertIn("stopping the java children still running", text)

    def test_a_missing_tool_is_one_line_and_the_rest_goes_on(self):
        out = os.path.join(self.work, "out")
        log = os.path.join(self.work, "agent.log")
        agent = start_agent(self, AGENT, ["-o", out, "-d", "2",
                                          "--jcmd-path", "/nonexistent/jcmd"], log)
        self.assertEqual(agent.wait(timeout=120), 0, read_text(log))
        text = read_text(log)
        self.assertEqual(text.count("neither jattach nor jcmd"), 1, text)
        header, stacks = parse_col(profiles(out)[-1])
        self.assertTrue(stacks)


if __name__ == "__main__":
    AGENT = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)

#!/usr/bin/env python3
"""As root: the Java runtime profiler with real perf and real processes.

- A Java program run with no special flags shows its own method names in the
  profile (perf names JIT frames from the map that jcmd/jattach
  Compiler.perfmap makes the JVM write), marked `_[j]` as gProfiler marks
  Java frames, and its application metadata holds
  gProfiler's Java fields: the `java -version` text of its java, the build id
  of its libjvm.so and the flags --java-collect-jvm-flags chooses.
- A tool that hangs on one of 50 targets does not delay the snapshot past
  its deadline: the profile comes on time, with one timeout error stack for
  that target, and the hung tool is stopped.
- A missing tool gives one clear line and the agent still profiles the rest.
- Node.js: a process started with --perf-basic-prof, and one started with no
  flags under --nodejs-mode attach-maps (the agent loads its perf-map addon
  through the inspector), show their own function names, with their appid
  frames and application metadata.
- --java-mode ap with --java-async-profiler-path: a stand-in asprof
  (test/support/asprof_standin.py, which checks its arguments as asprof
  does) runs for a real JVM over the window with gProfiler's settings as
  asprof's options, and its stacks replace perf's for that JVM; without the
  path, ap is perf-map mode, said at start.

Usage: runtime_test.py /path/to/gprofiler-agent
"""
import glob
import json
import os
import re
import struct
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

from common import ProcessTest, parse_col, read_text, start_agent, wait_for

AGENT = None
HERE = os.path.dirname(os.path.abspath(__file__))
ASPROF = os.path.join(HERE, "..", "..", "support", "asprof_standin.py")
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
# The stand-in jcmd: records each call (pid and command), hangs (ignoring
# SIGTERM) on the perf map of one pid.
STAND_IN = """#!/bin/sh
echo "$1 $2" >> {calls}
if [ "$1 $2" = "{hang} Compiler.perfmap" ]; then trap '' TERM; exec sleep 1000; fi
echo "$1:"
exit 0
"""


def profiles(out):
    return sorted(glob.glob(os.path.join(out, "profile_*.col")))


def build_id(path):
    """The GNU build id of an ELF64 little-endian file, read here with
    struct, independently of the agent."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3a)
    def section(i):
        name, type_, _, _, off, size = struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)
        return name, type_, off, size
    _, _, str_off, _ = section(shstrndx)
    for i in range(shnum):
        name, type_, off, size = section(i)
        if data[str_off + name:].split(b"\0", 1)[0] == b".note.gnu.build-id":
            namesz, descsz, ntype = struct.unpack_from("<III", data, off)
            desc = off + 12 + (namesz + 3) // 4 * 4
            return data[desc:desc + descsz].hex()
    return None


def java_metadata(header, stacks):
    """The application metadata entries of the JVM's stacks (the profile of
    one JVM, with --pids)."""
    entries = {s[0] for s in stacks if s[2] == "java"}
    return [header["application_metadata"][i] for i in sorted(entries)]


class Runtime(ProcessTest):
    WORK_PREFIX = "gpa-runtime-"

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
        java = self.spawn(["java", "-Xmx256m", "-cp", self.work, "Hot", "90"])
        time.sleep(2)  # the JVM starts and compiles fib
        out = os.path.join(self.work, "out")
        log = os.path.join(self.work, "agent.log")
        # --pids: other JVMs of the host stay out of this test.
        agent = start_agent(self, AGENT, ["-o", out, "-d", "8", "--pids", str(java.pid)], log)
        self.assertEqual(agent.wait(timeout=120), 0, read_text(log))
        text = read_text(log)
        self.assertIn("java: JIT symbols through", text)
        header, stacks = parse_col(profiles(out)[-1])
        named = [s for s in stacks if any("Hot.fib" in f for f in s[3])]
        self.assertTrue(named, "no Hot.fib frame in the profile")
        self.assertTrue(all(s[2] == "java" for s in named), named[:3])
        self.assertIsNone(java.poll())
        # Java frames marked as gProfiler marks them: the JIT-compiled
        # methods of the JVM's perf map, not its VM stubs nor native code.
        frames = {f for s in stacks for f in s[3]}
        self.assertIn("long Hot.fib(int)_[j]", frames)
        self.assertNotIn("long Hot.fib(int)", frames)
        marked = {f for f in frames if f.endswith("_[j]")}
        method = re.compile(r"^[^ ()]+ [^ ()]+\.[^ ().]+\([^()]*\)_\[j\]$")
        self.assertTrue(all(method.match(f) for f in marked), marked)
        self.assertTrue(all(s[2] == "java" for s in stacks if set(s[3]) & marked))

        # gProfiler's Java metadata, each field checked against the JVM.
        entries = java_metadata(header, stacks)
        self.assertEqual(len(entries), 1, entries)
        md = entries[0]
        self.assertEqual(list(md)[:3], ["java_version", "libjvm_elfid", "jvm_flags"])
        exe = os.readlink(f"/proc/{java.pid}/exe")
        self.assertEqual(md["exe"], exe)
        version = subprocess.run([exe, "-version"], capture_output=True, text=True).stderr
        self.assertEqual(md["java_version"], version.strip())
        self.assertTrue(md["java_version"].startswith('openjdk version "17'), md)
        with open(f"/proc/{java.pid}/maps") as f:
            libjvm = next(line.split()[-1] for line in f if "/libjvm.so" in line)
        self.assertEqual(md["libjvm_elfid"], "buildid:" + build_id(libjvm))
        flags = {f["name"]: f for f in md["jvm_flags"]}
        self.assertEqual(flags["MaxHeapSize"], {
            "name": "MaxHeapSize", "type": "size_t", "value": str(256 << 20),
            "origin": "command line", "kind": ["product"]})
        self.assertEqual([f["name"] for f in md["jvm_flags"]], sorted(flags))
        for f in md["jvm_flags"]:
            self.assertNotEqual(f["origin"], "default", f)
            self.assertFalse({"pd", "manageable", "notproduct", "develop"} & set(f["kind"]), f)

        # A list of flags: those only, and the missing one is said.
        out2 = os.path.join(self.work, "out2")
        agent = start_agent(self, AGENT, ["-o", out2, "-d", "4", "--pids", str(java.pid),
                                          "--java-collect-jvm-flags",
                                          "MaxHeapSize,NoSuchFlag"], log)
        self.assertEqual(agent.wait(timeout=120), 0, read_text(log))
        header, stacks = parse_col(profiles(out2)[-1])
        entries = java_metadata(header, stacks)
        self.assertEqual(len(entries), 1, entries)
        self.assertEqual(entries[0]["jvm_flags"], [flags["MaxHeapSize"]])
        self.assertIn("missing requested JVM flags: NoSuchFlag", read_text(log))
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
                                          "--runtime-concurrency", "4",
                                          # the fake JVMs are Python processes:
                                          # their perf stacks, not Python's,
                                          # carry the Java tool's errors
                                          "--no-python"], log)
        self.assertEqual(agent.wait(timeout=120), 0, read_text(log))
        took = time.time() - began
        print(f"one-shot run with a hung tool: {took:.1f} s "
              f"(window {duration} s, grace {grace} s)")
        with open(calls) as f:
            called = [line.split() for line in f.read().splitlines()]
        # Each fake: its flags once (its metadata), its perf map once (other
        # JVMs of the host may be asked too).
        for p in fakes:
            asked = [c[1] for c in called if int(c[0]) == p.pid]
            self.assertEqual(sorted(asked), ["Compiler.perfmap", "VM.flags"], called)
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

    def test_async_profiler_through_asprof(self):
        with open(os.path.join(self.work, "Hot.java"), "w") as f:
            f.write(HOT_JAVA)
        subprocess.run(["javac", "-d", self.work, os.path.join(self.work, "Hot.java")],
                       check=True)
        java = self.spawn(["java", "-cp", self.work, "Hot", "90"])
        time.sleep(2)
        calls = os.path.join(self.work, "asprof.calls")
        os.environ["GPA_ASPROF_LOG"] = calls
        self.addCleanup(os.environ.pop, "GPA_ASPROF_LOG", None)
        out = os.path.join(self.work, "out")
        log = os.path.join(self.work, "agent.log")
        agent = start_agent(self, AGENT, [
            "-o", out, "-d", "6", "-f", "50", "--pids", str(java.pid),
            "--java-mode", "ap", "--java-async-profiler-path", ASPROF,
            "--java-async-profiler-mode", "itimer",
            "--java-async-profiler-safemode", "3",
            "--java-async-profiler-features", "probesp,comptask",
            "--java-async-profiler-args", "cstack=no,jstackdepth=512,mcache=7",
            "--java-collect-thread-names"], log)
        self.assertEqual(agent.wait(timeout=120), 0, read_text(log))
        text = read_text(log)
        self.assertIn("java: async-profiler " + ASPROF, text)
        self.assertIn("--java-async-profiler-args 'mcache=7' has no asprof", text)
        with open(calls) as f:
            called = [json.loads(line) for line in f]
        pid = str(java.pid)
        # The JVM's flags through asprof's jcmd, then the window.
        self.assertIn(["jcmd", pid, "VM.flags -all"], called)
        self.assertIn(["collect", "-d", "4", "-e", "itimer", "-i", "20000000",
                       "-o", "collapsed", "-a", "-g", "-t",
                       "-F", "probesp,comptask", "--safe-mode", "3",
                       "--cstack", "no", "-j", "512", pid], called)
        header, stacks = parse_col(profiles(out)[-1])
        mine = [s for s in stacks if s[2] == "java"]
        self.assertTrue(mine, stacks)
        # asprof's stacks replace perf's for the JVM (scaled to perf's
        # count): every stack is the stand-in's, under its thread frame.
        for s in mine:
            self.assertEqual(s[3][:4], ["appid: java: Hot", f"[main tid={pid}]",
                                        "Hot.main([Ljava/lang/String|)V_[j]",
                                        f"StandIn.pid{pid}()V_[j]"], s)
        self.assertTrue(any(s[3][-1] == "__vdso_clock_gettime_[k]" for s in mine))
        self.assertFalse(any("long Hot.fib(int)" in f for s in stacks for f in s[3]))
        md = java_metadata(header, stacks)
        self.assertEqual(len(md), 1, md)
        self.assertTrue(md[0]["java_version"].startswith('openjdk version "17'), md)
        self.assertTrue(md[0]["jvm_flags"], md)
        self.assertIsNone(java.poll())

        # Without the path: perf-map mode, said at start.
        out2 = os.path.join(self.work, "out2")
        # 10 s: the map is written at 80 % of the window, which must leave a
        # loaded machine time for jattach before perf script reads it (6 s
        # left 1.2 s, and the map came too late in 2 of 3 clean CI runs).
        agent = start_agent(self, AGENT, ["-o", out2, "-d", "10", "--pids", pid,
                                          "--java-mode", "ap"], log)
        self.assertEqual(agent.wait(timeout=120), 0, read_text(log))
        self.assertIn("async-profiler (--java-mode ap) needs --java-async-profiler-path",
                      read_text(log))
        header, stacks = parse_col(profiles(out2)[-1])
        self.assertTrue(any("long Hot.fib(int)_[j]" in s[3] for s in stacks), stacks[:5])

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

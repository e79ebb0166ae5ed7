#!/usr/bin/env python3
"""As root: the Ruby and PHP runtime profilers with real perf, real `ruby`
and `php` processes (Debian's ruby and php-cli) and stand-in rbspy and
phpspy (test/support/*_standin.py: neither tool is in Debian), which accept
only gProfiler's command lines and write each tool's documented output
format with frames named after the target's real script.

- The profile shows the stand-ins' frames under each target's comm, with
  gProfiler's suffixes (_[rb], _[php]) and the Ruby app id frame, in place
  of perf's stacks of those processes.
- A tool that writes garbage gives an error stack for its target.
- A missing tool gives exactly one line, and perf still profiles.

.NET is tested with a stand-in dotnet-trace at the actor level
(test/actors/runtime_profiler_test.cpp, suite runtime_tools_real): there is
no .NET runtime on this machine.

Usage: runtime_tools_test.py /path/to/gprofiler-agent
"""
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

from common import ProcessTest, parse_col, read_text, start_agent, wait_for

AGENT = None
SUPPORT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "support")
FIB_RB = "def fib(n) n < 2 ? n : fib(n - 1) + fib(n - 2) end\nloop { fib(20) }\n"
FIB_PHP = ("<?php\nfunction fib($n) { return $n < 2 ? $n : fib($n - 1) + fib($n - 2); }\n"
           "while (true) { fib(20); }\n")
# php-cli's comm is "php": the pattern leaves out every other name (the
# stand-in phpspy itself included).
PHP_FILTER = "^php$"


def profiles(out):
    return sorted(glob.glob(os.path.join(out, "profile_*.col")))


def error_stacks(stacks):
    """The stacks among parse_col's that carry an error frame: a runtime
    profiler's error goes onto perf's stacks of the process, after the comm
    and the app id frame (gProfiler's attach_error_to_stacks)."""
    return [s for s in stacks if any(f.startswith("[Profiling") for f in s[3])]


def error_frames(stacks):
    """The distinct error frames of `stacks`."""
    return sorted({f for s in stacks for f in s[3] if f.startswith("[Profiling")})


class RuntimeTools(ProcessTest):
    WORK_PREFIX = "gpa-rtools-"

    def setUp(self):
        super().setUp()
        self.rb = os.path.join(self.work, "fib.rb")
        self.php = os.path.join(self.work, "fib.php")
        with open(self.rb, "w") as f:
            f.write(FIB_RB)
        with open(self.php, "w") as f:
            f.write(FIB_PHP)
        self.ruby = self.spawn(["ruby", self.rb])
        self.phpproc = self.spawn(["php", self.php])
        self.assertTrue(wait_for(lambda: self.maps_have(self.ruby.pid, "/ruby"), 30))

    def spawn(self, argv):
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    @staticmethod
    def maps_have(pid, text):
        try:
            with open(f"/proc/{pid}/maps") as m:
                return text in m.read()
        except OSError:
            return False

    def standin(self, tool, options):
        """A wrapper running test/support/<tool>_standin.py with `options`."""
        path = os.path.join(self.work, tool)
        with open(path, "w") as f:
            f.write(f"#!/bin/sh\nexec {SUPPORT}/{tool}_standin.py {options} \"$@\"\n")
        os.chmod(path, 0o755)
        return path

    def run_agent(self, args):
        out = os.path.join(self.work, "out")
        log = os.path.join(self.work, "agent.log")
        agent = start_agent(self, AGENT, ["-o", out, "-d", "3"] + args, log)
        self.assertEqual(agent.wait(timeout=120), 0, read_text(log))
        header, stacks = parse_col(profiles(out)[-1])
        return read_text(log), stacks

    @staticmethod
    def of(stacks, comm):
        return [s for s in stacks if s[2] == comm]

    def test_ruby_and_php_frames_replace_perfs(self):
        calls_rb = os.path.join(self.work, "rbspy.calls")
        calls_php = os.path.join(self.work, "phpspy.calls")
        rbspy = self.standin("rbspy", f"--standin-log={calls_rb}")
        phpspy = self.standin("phpspy", f"--standin-log={calls_php}")
        text, stacks = self.run_agent(["--rbspy-path", rbspy, "--php-mode", "phpspy",
                                       "--phpspy-path", phpspy,
                                       "--php-proc-filter", PHP_FILTER])
        self.assertIn(f"ruby: {rbspy} records each Ruby process", text)
        self.assertIn(f"php: {phpspy} profiles the processes named like '{PHP_FILTER}'",
                      text)
        # gProfiler's command lines (the stand-ins refuse any other).
        with open(calls_rb) as f:
            rb_calls = [json.loads(line) for line in f]
        self.assertEqual(len(rb_calls), 1, rb_calls)
        self.assertEqual(rb_calls[0][:7], ["record", "--silent", "-r", "11", "-d", "3",
                                           "--nonblocking"])
        self.assertEqual(rb_calls[0][-2:], ["-p", str(self.ruby.pid)])
        with open(calls_php) as f:
            php_calls = [json.loads(line) for line in f]
        self.assertEqual(len(php_calls), 1, php_calls)
        self.assertEqual(php_calls[0][:5], ["--verbose-fields=p", "-P", f"'{PHP_FILTER}'",
                                            "-H", "11"])
        self.assertEqual(php_calls[0][-2:], ["-i", "3000"])
        # Ruby: every stack under the comm is rbspy's, with the app id frame
        # and _[rb] on Ruby frames.
        ruby = self.of(stacks, "ruby")
        self.assertTrue(ruby, stacks)
        for _, _, _, frames, _ in ruby:
            self.assertTrue(frames[0].startswith("appid: ruby: "), frames)
            self.assertIn(f"{self.rb}", frames[0])
            self.assertEqual(frames[1], f"<main> - {self.rb}:2_[rb]", frames)
            self.assertEqual(frames[2], "loop [c function] - (unknown):0", frames)
            self.assertTrue(all(f == f"fib - {self.rb}:1_[rb]" for f in frames[3:]), frames)
        # PHP: phpspy's stacks, root first, _[php] on every frame (PHP has no
        # app id in gProfiler).
        php = self.of(stacks, "php")
        self.assertTrue(php, stacks)
        for _, _, _, frames, _ in php:
            self.assertEqual(frames, [f"<main> {self.php}:3_[php]", f"fib {self.php}:2_[php]",
                                      f"fib {self.php}:2_[php]"])
        self.assertEqual(error_stacks(ruby + php), [])

    def test_garbage_is_an_error_stack(self):
        rbspy = self.standin("rbspy", "--standin-mode=garbage")
        phpspy = self.standin("phpspy", "--standin-mode=garbage")
        text, stacks = self.run_agent(["--rbspy-path", rbspy, "--php-mode", "phpspy",
                                       "--phpspy-path", phpspy,
                                       "--php-proc-filter", PHP_FILTER])
        ruby = error_frames(self.of(stacks, "ruby"))
        self.assertEqual(len(ruby), 1, stacks)
        self.assertTrue(ruby[0].startswith("[Profiling error: rbspy output has no valid"),
                        ruby)
        php = error_frames(self.of(stacks, "php"))
        self.assertEqual(len(php), 1, stacks)
        self.assertTrue(php[0].startswith("[Profiling error: phpspy output has no valid"),
                        php)
        # Every stack of the two processes carries the error: it is on perf's
        # stacks, which stand.
        for comm in ("ruby", "php"):
            mine = self.of(stacks, comm)
            self.assertEqual(len(error_stacks(mine)), len(mine), mine)

    def test_missing_tools_are_one_line_and_perf_goes_on(self):
        out = os.path.join(self.work, "out")
        log = os.path.join(self.work, "agent.log")
        agent = start_agent(self, AGENT, ["-o", out, "-d", "3", "-c",
                                          "--rbspy-path", "/nonexistent/rbspy",
                                          "--php-mode", "phpspy",
                                          "--phpspy-path", "/nonexistent/phpspy",
                                          "--php-proc-filter", PHP_FILTER,
                                          "--dotnet-mode", "dotnet-trace",
                                          "--dotnet-trace-path", "nonexistent-dotnet-trace"],
                            log)
        self.assertTrue(wait_for(lambda: len(profiles(out)) >= 2, 60), read_text(log))
        agent.send_signal(signal.SIGINT)
        self.assertEqual(agent.wait(timeout=60), 0, read_text(log))
        text = read_text(log)
        for line in ["rbspy ('/nonexistent/rbspy', --rbspy-path) was not found",
                     "phpspy ('/nonexistent/phpspy', --phpspy-path) was not found",
                     "dotnet-trace ('nonexistent-dotnet-trace', --dotnet-trace-path) was "
                     "not found"]:
            self.assertEqual(text.count(line), 1, text)
        # perf's stacks of the Ruby and PHP processes stand, without errors.
        for path in profiles(out)[:2]:
            _, stacks = parse_col(path)
            for comm in ("ruby", "php"):
                mine = self.of(stacks, comm)
                self.assertTrue(mine, (comm, stacks))
                self.assertEqual(error_stacks(mine), [])
                self.assertFalse(any(f.endswith(("_[rb]", "_[php]"))
                                     for s in mine for f in s[3]), mine)


if __name__ == "__main__":
    AGENT = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)

#!/usr/bin/env python3
"""As root, the real agent against the files it writes (issue 12, defects 1,
7, 8, 9): a PID file that is a device node, a FIFO, a symbolic link or
someone else's file is refused with exit 2 and left as it was; a PID file
swapped while the agent runs is not removed at exit; a FIFO or device as the
log file is refused at once (it used to hang start-up); temporary
directories of agents killed with SIGKILL are removed at the next start, a
live agent's is kept; an output directory that is a file or read-only is
refused at start with exit 2; output errors are logged once per episode;
a process whose name looks like perf script's sample header keeps its
stacks; --heartbeat-file is touched each window, and refused at start if it
is a link or not a regular file.

Device nodes are made with mknod in a scratch directory (never /dev).

Usage: hardening_test.py /path/to/gprofiler-agent
"""
import glob
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import unittest

from common import agent_env, read_text, wait_for

AGENT = None


class Hardening(unittest.TestCase):
    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="gpa-hardening-")
        self.addCleanup(shutil.rmtree, self.work, True)
        self.out = os.path.join(self.work, "out")
        self.tmp = os.path.join(self.work, "tmp")
        os.mkdir(self.tmp)
        self.n = 0

    def path(self, name):
        return os.path.join(self.work, name)

    def start(self, *args, pid_file="", log_file="", out=None):
        """Starts the agent (no perf: these tests are about its files); its
        console output goes to a file, returned with the process."""
        self.n += 1
        log_path = self.path(f"console.{self.n}")
        argv = [AGENT, "--pid-file", pid_file, "--log-file", log_file, "--no-perf",
                "-c", "-d", "1", "-o", out or self.out, "--temp-dir", self.tmp] + list(args)
        with open(log_path, "w") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                    env=agent_env())
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
        return proc, lambda: read_text(log_path)

    def finish(self, proc, log, timeout=5):
        """The agent's exit status; it must exit within `timeout` seconds."""
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.fail(f"still running after {timeout} s\n{log()}")

    def expect_exit(self, proc, log, code, timeout=5):
        """The agent exits with `code` within `timeout` seconds."""
        self.assertEqual(self.finish(proc, log, timeout), code, log())

    def running(self, proc, log, out=None):
        """Waits until the agent has written a profile into `out` (it is
        up)."""
        out = out or self.out
        self.assertTrue(wait_for(lambda: glob.glob(os.path.join(out, "profile_*.col"))
                                 or proc.poll() is not None, timeout=20), log())
        self.assertIsNone(proc.poll(), log())

    def stop(self, proc, log):
        proc.send_signal(signal.SIGTERM)
        self.expect_exit(proc, log, 0, timeout=15)

    # -- the PID file (defect 1) ----------------------------------------------

    def test_pid_file_device_node_is_refused_and_kept(self):
        dev = self.path("null")
        os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        proc, log = self.start(pid_file=dev)
        rc = self.finish(proc, log)
        self.assertTrue(os.path.lexists(dev) and stat.S_ISCHR(os.lstat(dev).st_mode),
                        "the device node was removed\n" + log())
        self.assertEqual(rc, 2, log())
        self.assertIn("a character device", log())
        self.assertIn(dev, log())

    def test_pid_file_fifo_is_refused_and_kept(self):
        fifo = self.path("fifo")
        os.mkfifo(fifo)
        proc, log = self.start(pid_file=fifo)
        rc = self.finish(proc, log)
        self.assertTrue(os.path.lexists(fifo) and stat.S_ISFIFO(os.lstat(fifo).st_mode),
                        "the FIFO was removed\n" + log())
        self.assertEqual(rc, 2, log())
        self.assertIn("a FIFO", log())

    def test_pid_file_symlink_is_refused_and_its_target_kept(self):
        victim = self.path("victim")
        with open(victim, "w") as f:
            f.write("precious\n")
        link = self.path("agent.pid")
        os.symlink(victim, link)
        proc, log = self.start(pid_file=link)
        self.expect_exit(proc, log, 2)
        self.assertIn("symbolic link", log())
        self.assertTrue(os.path.islink(link))
        self.assertEqual(read_text(victim), "precious\n")

    # -- the heartbeat file (gProfiler's --heartbeat-file) ---------------------

    def test_heartbeat_file_is_touched_each_window(self):
        beat = self.path("heartbeat")
        proc, log = self.start("--heartbeat-file", beat)
        self.running(proc, log)
        self.assertTrue(os.path.isfile(beat), log())
        self.assertEqual(stat.S_IMODE(os.stat(beat).st_mode) & 0o022, 0)
        first = os.stat(beat).st_mtime_ns
        # 1 s windows: touched again within a few.
        self.assertTrue(wait_for(lambda: os.stat(beat).st_mtime_ns > first, timeout=10), log())
        self.stop(proc, log)

    def test_heartbeat_file_symlink_or_fifo_is_refused(self):
        victim = self.path("victim")
        with open(victim, "w") as f:
            f.write("precious\n")
        before = os.stat(victim).st_mtime_ns
        link = self.path("beat-link")
        os.symlink(victim, link)
        proc, log = self.start("--heartbeat-file", link)
        self.expect_exit(proc, log, 2)
        self.assertIn("--heartbeat-file: cannot touch %s: it is a symbolic link" % link, log())
        self.assertEqual(os.stat(victim).st_mtime_ns, before)
        fifo = self.path("beat-fifo")
        os.mkfifo(fifo)
        proc, log = self.start("--heartbeat-file", fifo)
        self.expect_exit(proc, log, 2)
        self.assertIn("not a regular file", log())

    def test_pid_file_directory_is_refused(self):
        d = self.path("piddir")
        os.mkdir(d)
        proc, log = self.start(pid_file=d)
        self.expect_exit(proc, log, 2)
        self.assertIn("a directory", log())
        self.assertTrue(os.path.isdir(d))

    def test_pid_file_with_other_content_is_refused_and_kept(self):
        foreign = self.path("agent.pid")
        with open(foreign, "w") as f:
            f.write("not a pid: someone's data\n")
        proc, log = self.start(pid_file=foreign)
        rc = proc.wait(timeout=5) if wait_for(lambda: proc.poll() is not None, 3) else None
        # The old agent emptied it, wrote its PID into it and ran.
        self.assertTrue(os.path.exists(foreign), log())
        self.assertEqual(read_text(foreign), "not a pid: someone's data\n", log())
        self.assertEqual(rc, 2, log())
        self.assertIn("not a PID", log())

    def test_pid_file_of_a_dead_process_is_reused_and_removed_at_exit(self):
        dead = subprocess.Popen(["true"])
        dead.wait()
        pid_file = self.path("agent.pid")
        with open(pid_file, "w") as f:
            f.write(f"{dead.pid}\n")
        proc, log = self.start(pid_file=pid_file)
        self.running(proc, log)
        self.assertEqual(read_text(pid_file), f"{proc.pid}\n")
        self.stop(proc, log)
        self.assertFalse(os.path.exists(pid_file), "our PID file is left at exit")

    def test_pid_file_of_a_live_gprofiler_is_refused(self):
        # A process whose name is gprofiler's (the Python agent) and holds
        # no lock: a copy of sleep named so.
        fake = self.path("gprofiler")
        shutil.copy("/bin/sleep", fake)
        other = subprocess.Popen([fake, "60"])
        self.addCleanup(lambda: (other.kill(), other.wait()))
        pid_file = self.path("agent.pid")
        with open(pid_file, "w") as f:
            f.write(f"{other.pid}\n")
        proc, log = self.start(pid_file=pid_file)
        self.expect_exit(proc, log, 1)
        self.assertIn(f"PID {other.pid}", log())
        self.assertEqual(read_text(pid_file), f"{other.pid}\n")

    def test_a_second_agent_names_the_first(self):
        pid_file = self.path("agent.pid")
        first, first_log = self.start(pid_file=pid_file)
        self.running(first, first_log)
        second, second_log = self.start(pid_file=pid_file, out=self.path("out2"))
        self.expect_exit(second, second_log, 1)
        self.assertIn(f"PID {first.pid}", second_log())
        self.assertEqual(read_text(pid_file), f"{first.pid}\n")
        self.stop(first, first_log)

    def test_pid_file_replaced_while_running_is_not_removed(self):
        pid_file = self.path("agent.pid")
        proc, log = self.start(pid_file=pid_file)
        self.running(proc, log)
        # Someone puts another file at the name (a new inode).
        other = self.path("other")
        with open(other, "w") as f:
            f.write("12345\n")
        os.rename(other, pid_file)
        self.stop(proc, log)
        self.assertEqual(read_text(pid_file), "12345\n", "a file that is not ours was removed")

    # -- the log file (defect 7) ----------------------------------------------

    def test_log_file_fifo_is_refused_at_once(self):
        fifo = self.path("agent.log")
        os.mkfifo(fifo)
        proc, log = self.start(log_file=fifo)
        self.expect_exit(proc, log, 2)
        self.assertIn("a FIFO", log())
        self.assertTrue(stat.S_ISFIFO(os.lstat(fifo).st_mode))

    def test_log_file_device_is_refused(self):
        dev = self.path("agent.log")
        os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        proc, log = self.start(log_file=dev)
        self.expect_exit(proc, log, 2)
        self.assertIn("a character device", log())
        self.assertTrue(stat.S_ISCHR(os.lstat(dev).st_mode))

    def test_log_file_symlink_is_refused(self):
        victim = self.path("victim")
        with open(victim, "w") as f:
            f.write("precious\n")
        link = self.path("agent.log")
        os.symlink(victim, link)
        proc, log = self.start(log_file=link)
        self.expect_exit(proc, log, 2)
        self.assertIn("symbolic link", log())
        self.assertEqual(read_text(victim), "precious\n")

    def test_log_file_is_written_and_appended(self):
        log_file = self.path("logs/agent.log")  # its directory is created
        for n in range(2):
            out = self.path(f"out{n}")
            proc, log = self.start(log_file=log_file, out=out)
            self.running(proc, log, out)
            # Flushed each window, not only at exit.
            self.assertTrue(wait_for(lambda: read_text(log_file).count("running (PID") == n + 1,
                                     timeout=10), read_text(log_file))
            self.stop(proc, log)
        text = read_text(log_file)
        self.assertEqual(text.count("] [agent] [info] stopped"), 2, text)
        first_stop = text.index("[info] stopped")
        self.assertGreater(text.rindex("running (PID"), first_stop, "not appended: " + text)

    # -- temporary directories of dead agents (defect 8) ----------------------

    def temp_dirs(self):
        return sorted(os.path.basename(p)
                      for p in glob.glob(os.path.join(self.tmp, "gprofiler-agent.*")))

    def test_stale_temp_dirs_are_removed_live_ones_kept(self):
        live, live_log = self.start(out=self.path("out-live"))
        self.assertTrue(wait_for(lambda: len(self.temp_dirs()) == 1, timeout=10))
        live_dir = self.temp_dirs()[0]
        killed, killed_log = self.start(out=self.path("out-killed"))
        self.assertTrue(wait_for(lambda: len(self.temp_dirs()) == 2, timeout=10))
        killed_dir = [d for d in self.temp_dirs() if d != live_dir][0]
        # Something in it, as perf.data would be, and a subdirectory.
        os.mkdir(os.path.join(self.tmp, killed_dir, "sub"))
        with open(os.path.join(self.tmp, killed_dir, "sub", "perf.data"), "w") as f:
            f.write("x" * 1000)
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        # Things that are not a dead agent's: kept.
        victim_dir = self.path("victim")
        os.mkdir(victim_dir)
        with open(os.path.join(victim_dir, "precious"), "w") as f:
            f.write("precious\n")
        os.symlink(victim_dir, os.path.join(self.tmp, "gprofiler-agent.link00"))
        foreign = os.path.join(self.tmp, "gprofiler-agent.nolock")
        os.mkdir(foreign, 0o700)
        self.assertIn(killed_dir, self.temp_dirs())
        # The next start removes the dead agent's directory, only that.
        proc, log = self.start()
        self.running(proc, log)
        dirs = self.temp_dirs()
        self.assertNotIn(killed_dir, dirs, log())
        self.assertIn(live_dir, dirs)
        self.assertIn("gprofiler-agent.link00", dirs)
        self.assertIn("gprofiler-agent.nolock", dirs)
        self.assertEqual(read_text(os.path.join(victim_dir, "precious")), "precious\n")
        self.assertEqual(len(dirs), 4)  # and its own
        self.assertIn(f"removed the temporary directory of a dead agent: "
                      f"{os.path.join(self.tmp, killed_dir)}", log())
        self.stop(proc, log)
        self.stop(live, live_log)
        self.assertEqual(self.temp_dirs(), ["gprofiler-agent.link00", "gprofiler-agent.nolock"])

    # -- the output directory (defect 9) --------------------------------------

    def test_output_dir_that_is_a_file_is_refused_at_start(self):
        not_dir = self.path("file")
        with open(not_dir, "w") as f:
            f.write("precious\n")
        proc, log = self.start(out=not_dir)
        self.expect_exit(proc, log, 2)
        self.assertIn(f"output directory {not_dir}", log())
        self.assertIn("not a directory", log())
        self.assertEqual(read_text(not_dir), "precious\n")

    def read_only_dir(self):
        """A directory even root cannot write into: a read-only bind mount,
        else an immutable directory (chattr +i); None if neither works."""
        ro = self.path("ro")
        os.mkdir(ro)
        if subprocess.run(["mount", "--bind", ro, ro], capture_output=True).returncode == 0:
            self.addCleanup(subprocess.run, ["umount", ro], capture_output=True)
            if subprocess.run(["mount", "-o", "remount,bind,ro", ro, ro],
                              capture_output=True).returncode == 0:
                return ro, "read-only file system"
        if subprocess.run(["chattr", "+i", ro], capture_output=True).returncode == 0:
            self.addCleanup(subprocess.run, ["chattr", "-i", ro], capture_output=True)
            return ro, "operation not permitted"
        return None, None

    def test_read_only_output_dir_is_refused_at_start(self):
        ro, why = self.read_only_dir()
        if ro is None:
            self.skipTest("neither a read-only bind mount nor chattr +i works here")
        proc, log = self.start(out=ro)
        self.expect_exit(proc, log, 2)
        self.assertIn(f"output directory {ro}", log())
        self.assertIn(why, log().lower())

    # -- output errors once per episode (defect 9) ----------------------------

    def test_output_errors_are_logged_once_per_episode(self):
        """-o removed and replaced by a file while the agent runs: every
        window fails to write, the log says so once (the file names used to
        make each window's line differ); when the directory is back it says
        writing works again."""
        proc, log = self.start()
        self.running(proc, log)
        shutil.rmtree(self.out)
        with open(self.out, "w") as f:
            f.write("not a directory\n")
        errors = lambda: log().count("cannot write profile")
        self.assertTrue(wait_for(lambda: errors() >= 1, timeout=10), log())
        time.sleep(4)  # four more one-second windows fail
        self.assertEqual(errors(), 1, log())
        os.unlink(self.out)
        os.mkdir(self.out)
        self.assertTrue(wait_for(lambda: "writing profiles works again" in log(),
                                 timeout=10), log())
        self.assertTrue(glob.glob(os.path.join(self.out, "profile_*.col")), log())
        self.stop(proc, log)

    # -- a hostile process name (defect 9) -------------------------------------

    def test_a_comm_that_looks_like_a_sample_header_keeps_its_stacks(self):
        """A process named 'x 1/1 [000] 1:' (what perf script prints before a
        sample's time) is profiled by real perf: its stacks carry its whole
        name; the name was cut at the first space and the sample read as pid
        1's."""
        if shutil.which("perf") is None:
            self.skipTest("perf is not installed")
        name = "x 1/1 [000] 1:"
        spin = subprocess.Popen([sys.executable, "-c",
                                 "import ctypes, sys\n"
                                 "ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)\n"
                                 "x = 0\n"
                                 "while True: x += 1\n", name])
        self.addCleanup(lambda: (spin.kill(), spin.wait()))
        self.assertTrue(wait_for(lambda: read_text(f"/proc/{spin.pid}/comm").strip() == name,
                                 timeout=5))
        argv = [AGENT, "--pid-file", "", "--log-file", "", "-d", "3", "-o", self.out,
                "--temp-dir", self.tmp, "--pids", str(spin.pid)]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                           env=agent_env())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        col = read_text(os.path.join(self.out, "last_profile.col"))
        stacks = [line for line in col.splitlines() if line and not line.startswith("#")]
        self.assertTrue(stacks, col)
        for line in stacks:
            self.assertIn(f";{name};", line, col)


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("skipped: needs root (mknod, mount)")
        sys.exit(0)
    AGENT = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)

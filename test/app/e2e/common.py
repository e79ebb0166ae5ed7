"""Helpers of the end-to-end tests: build the hot program, run the agent,
read and validate .col files."""
import datetime
import json
import os
import shutil
import re
import signal
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
LINE = re.compile(r"^(\d+);([^;]*);([^;]+)((?:;[^;]*)*) (\d+)$")


def build_hot(workdir):
    """Compiles hot.c with frame pointers; returns the binary's path."""
    out = os.path.join(workdir, "hot")
    subprocess.run(["gcc", "-O0", "-fno-omit-frame-pointer", "-mno-omit-leaf-frame-pointer",
                    "-o", out, os.path.join(HERE, "hot.c")], check=True)
    return out


def agent_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPROFILER_")}
    # Runs with -u never send their logs to gProfiler's API server.
    env["GPROFILER_DONT_SEND_LOGS"] = "1"
    return env


def start_agent(test, agent, args, log_path):
    """Starts the agent with its output in log_path. However `test` ends, an
    agent still running then is killed (it runs as root, with perf)."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen([agent, "--pid-file", "", "--log-file", ""] + args,
                                stdout=log, stderr=subprocess.STDOUT, env=agent_env())

    def stop():
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    test.addCleanup(stop)
    return proc


def children_of(pid):
    """PIDs whose parent is pid, from /proc."""
    result = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[1]) == pid:
            result.append(int(entry))
    return result


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


def parse_col(path):
    """Reads a .col file; returns (header dict, [(index, container, comm,
    frames, count)]). Raises AssertionError on any malformed line."""
    with open(path) as f:
        text = f.read()
    assert text.endswith("\n"), f"{path}: does not end with a newline"
    lines = text.split("\n")[:-1]
    assert lines[0].startswith("# "), f"{path}: first line is not '# ' + JSON"
    header = json.loads(lines[0][2:])
    stacks = []
    for n, line in enumerate(lines[1:], start=2):
        m = LINE.match(line)
        assert m, f"{path}:{n}: malformed line {line!r}"
        frames = [f for f in m.group(4).split(";") if f != ""] if m.group(4) else []
        stacks.append((int(m.group(1)), m.group(2), m.group(3), frames, int(m.group(5))))
    return header, stacks


# gProfiler's header keys (see test/data/gprofiler_header.json); the
# metadata has no "python_version" (there is no Python), and "cloud_info"
# only on a known cloud.
HEADER_KEYS = ["containers", "container_names_enabled", "metadata", "metrics",
               "application_metadata", "application_metadata_enabled",
               "profiling_mode", "hwmetrics", "htmlblob", "flamegraph_html",
               "sampling_event", "sampling_mode", "sampling_frequency"]
METADATA_KEYS = ["cloud_provider", "agent_version", "spawn_time", "run_mode",
                 "deployment_type", "kernel_release", "kernel_version",
                 "system_name", "hypervisor", "processors", "cpu_model_name",
                 "cpu_arch_codename", "cpu_flags", "memory_capacity_mb",
                 "hostname", "system", "os_name", "os_release", "os_codename",
                 "libc_type", "libc_version", "hardware_type", "pid",
                 "mac_address", "private_ip", "spawn_uptime_ms", "run_arguments",
                 "big_data", "external_metadata", "current_time", "profiling_mode",
                 "sampling_event", "sampling_mode", "sampling_frequency"]


def read_text(path):
    """The whole text of a file (an agent's log), closed again."""
    with open(path) as f:
        return f.read()


def wait_for(predicate, timeout=60, step=0.2):
    """Polls predicate() until it is true or `timeout` seconds passed;
    returns its last value."""
    deadline = time.time() + timeout
    value = predicate()
    while not value and time.time() < deadline:
        time.sleep(step)
        value = predicate()
    return value


def error_stacks(stacks):
    """The error stacks ("<comm>;[Profiling ...]") among parse_col's stacks."""
    return [s for s in stacks if s[3] and s[3][0].startswith("[Profiling")]


def ts(text):
    """Seconds since the epoch of a header time ("2026-11-26T03:10:00.123Z")."""
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


class ProcessTest(unittest.TestCase):
    """A test with a work directory (self.work, removed at the end) and
    target processes (self.procs: killed, reaped and their pipes closed at
    the end, however the test ends). WORK_PREFIX names the directory."""
    WORK_PREFIX = "gpa-test-"

    def setUp(self):
        self.work = tempfile.mkdtemp(prefix=self.WORK_PREFIX)
        self.addCleanup(shutil.rmtree, self.work, True)
        self.procs = []
        self.addCleanup(self.stop_procs)

    def stop_procs(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            if p.stdout:
                p.stdout.close()

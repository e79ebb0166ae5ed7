#!/usr/bin/env python3
"""The command line of the real binary: --help, --version, exit status 2
with one clear line for every kind of configuration mistake, and each
precedence level (file < environment < flags) read back through
--print-config.

Usage: cli_test.py /path/to/gprofiler-agent
"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import unittest

AGENT = None
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "support"))
from backend import Backend  # noqa: E402
COL = os.path.join(HERE, "..", "data", "flamegraph.col")


def agent_env(env=None, send_logs=False):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("GPROFILER_")}
    # Never the host's /etc/gprofiler/config.ini: no default file unless the
    # test names one.
    full_env["GPA_DEFAULT_CONFIG"] = ""
    # Never logs to gProfiler's API server from a run with -u: only the tests
    # of log shipping send them, to a local server.
    if not send_logs:
        full_env["GPROFILER_DONT_SEND_LOGS"] = "1"
    full_env.update(env or {})
    return full_env


def run(args, env=None, config=None, send_logs=False):
    return subprocess.run([AGENT] + args, env=agent_env(env, send_logs),
                          capture_output=True, text=True, timeout=30)


def assert_usage_error(test, r, *needles):
    """Exit status 2, nothing on stdout, one line on stderr holding `needles`."""
    test.assertEqual(r.returncode, 2, r.stderr)
    test.assertEqual(r.stdout, "")
    lines = r.stderr.strip().splitlines()
    test.assertEqual(len(lines), 1, r.stderr)
    test.assertTrue(lines[0].startswith("gprofiler-agent: error: "), lines[0])
    for needle in needles:
        test.assertIn(needle, lines[0])


def write_config(text):
    f = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    f.write(text)
    f.close()
    return f.name


class Help(unittest.TestCase):
    def test_help_lists_gprofilers_flags(self):
        r = run(["--help"])
        self.assertEqual(r.returncode, 0)
        for flag in ["-d, --profiling-duration", "-f, --profiling-frequency",
                     "-o, --output-dir", "-c, --continuous", "-u, --upload-results",
                     "--token", "--service-name", "--server-host", "--no-verify",
                     "--pids", "--perf-mode", "--no-perf", "--java-mode",
                     "--no-java", "--python-mode", "--no-python", "--nodejs-mode",
                     "--no-flamegraph", "--rotating-output", "--log-file",
                     "-v, --verbose", "--config", "--pid-file", "--print-config"]:
            self.assertIn(flag, r.stdout)
        for line in r.stdout.splitlines():
            self.assertLessEqual(len(line), 80, line)

    def test_documented_help_is_current(self):
        docs = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                            "docs", "configuration.md")
        with open(docs) as f:
            text = f.read()
        block = text.split("## Every option", 1)[1].split("```\n", 1)[1].rsplit("```", 1)[0]
        self.assertEqual(block, run(["--help"]).stdout,
                         "docs/configuration.md lists an old --help: regenerate it")

    def test_version(self):
        r = run(["--version"])
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^gprofiler-agent \d+\.\d+\.\d+\n$")


class Mistakes(unittest.TestCase):
    def assert_usage_error(self, r, *needles):
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertEqual(r.stdout, "")
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertTrue(lines[0].startswith("gprofiler-agent: error: "), lines[0])
        for needle in needles:
            self.assertIn(needle, lines[0])

    def test_malformed_config_names_file_and_position(self):
        path = write_config('{\n  "profiling_duration": 5,\n  "output_dir": }\n')
        self.assert_usage_error(run(["--config", path]), path, "line 3, column 17")
        os.unlink(path)

    def test_unknown_key_is_named(self):
        path = write_config('{"output_dir": "/tmp/x", "profiling_durations": 5}')
        self.assert_usage_error(run(["--config", path]), path, "profiling_durations")
        os.unlink(path)

    def test_negative_duration_is_named(self):
        path = write_config('{"output_dir": "/tmp/x", "profiling_duration": -5}')
        self.assert_usage_error(run(["--config", path]), "/profiling_duration",
                                "minimum")
        os.unlink(path)

    def test_unknown_flag(self):
        self.assert_usage_error(run(["--frobnicate"]), "--frobnicate")

    def test_bad_value(self):
        self.assert_usage_error(run(["-o", "/tmp/x", "-f", "often"]), "-f", "often")

    def test_bad_environment_value(self):
        self.assert_usage_error(run(["-o", "/tmp/x"], env={"GPROFILER_PROFILING_DURATION": "-1"}),
                                "GPROFILER_PROFILING_DURATION")

    def test_upload_needs_token_and_service(self):
        self.assert_usage_error(run(["-u"]), "--token", "--service-name")

    def test_nothing_to_do(self):
        self.assert_usage_error(run([]), "--output-dir")


class Precedence(unittest.TestCase):
    def effective(self, args, env=None):
        r = run(args + ["--print-config"], env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_each_level_overrides_the_one_below(self):
        path = write_config('{"profiling_duration": 20, "profiling_frequency": 50,'
                            ' "service_name": "file", "token": "file-token"}')
        defaults = self.effective([])
        self.assertEqual(defaults["profiling_duration"], 60)
        from_file = self.effective(["--config", path])
        self.assertEqual(from_file["profiling_duration"], 20)
        self.assertEqual(from_file["profiling_frequency"], 50)
        from_env = self.effective(["--config", path],
                                  env={"GPROFILER_PROFILING_DURATION": "30",
                                       "GPROFILER_SERVICE_NAME": "env"})
        self.assertEqual(from_env["profiling_duration"], 30)
        self.assertEqual(from_env["profiling_frequency"], 50)
        self.assertEqual(from_env["service_name"], "env")
        from_flags = self.effective(["--config", path, "-d", "40",
                                     "--service-name", "flag"],
                                    env={"GPROFILER_PROFILING_DURATION": "30",
                                         "GPROFILER_SERVICE_NAME": "env"})
        self.assertEqual(from_flags["profiling_duration"], 40)
        self.assertEqual(from_flags["service_name"], "flag")
        self.assertEqual(from_flags["profiling_frequency"], 50)
        os.unlink(path)

    def test_secrets_are_redacted(self):
        r = run(["--print-config", "--token", "hunter2"])
        self.assertNotIn("hunter2", r.stdout + r.stderr)
        self.assertEqual(json.loads(r.stdout)["token"], "<redacted>")


class WireValues(unittest.TestCase):
    """Values that end up in HTTP requests are refused at configuration time
    (issue 12, defects 3 and 6), checked against the real binary and the
    stand-in server: a refused value never reaches it."""

    TOKEN = "T0k3n-secret-42"

    def upload(self, backend, token=None, service="svc", url=None, env=None,
               extra=()):
        self.log = tempfile.mktemp(prefix="gpa-cli-", suffix=".log")
        self.addCleanup(lambda: os.path.exists(self.log) and os.unlink(self.log))
        args = ["upload-file", "--file-path", COL, "--service-name", service,
                "--server-host", backend.url if url is None else url, "--log-file", self.log]
        if token is not None:
            args += ["--token", token]
        return run(args + list(extra), env=env)

    def logged(self):
        if not os.path.exists(self.log):
            return ""
        with open(self.log) as f:
            return f.read()

    def test_upload_file_refuses_external_metadata(self):
        """As gProfiler: upload-file sends the file's own header."""
        backend = Backend(self, self.TOKEN, "svc")
        r = self.upload(backend, token=self.TOKEN,
                        extra=["--external-metadata", COL])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("--external-metadata is not supported by upload-file", r.stderr)
        self.assertEqual(backend.requests(), [])

    def test_control_characters_in_headers_never_reach_the_server(self):
        backend = Backend(self, self.TOKEN, "svc")
        cases = [
            ("--token", dict(token=self.TOKEN + "\r\nX-Injected: yes")),
            ("GPROFILER_TOKEN", dict(env={"GPROFILER_TOKEN": self.TOKEN + "\n"})),
            ("--token", dict(token=self.TOKEN + "\n")),
            ("--service-name", dict(token=self.TOKEN, service="svc\r\nX-Injected: yes")),
        ]
        for where, kwargs in cases:
            with self.subTest(where=where, kwargs=kwargs):
                r = self.upload(backend, **kwargs)
                assert_usage_error(self, r, where, "would break the HTTP request")
                self.assertNotIn(self.TOKEN, r.stdout + r.stderr + self.logged())
                self.assertEqual(backend.requests(), [])
        # The same upload with sound values goes through: the server works.
        r = self.upload(backend, token=self.TOKEN)
        self.assertEqual(r.returncode, 0, r.stderr)
        posts = [q for q in backend.requests() if q["path"] == "/api/v2/profiles"]
        self.assertEqual(len(posts), 1)
        self.assertEqual(posts[0]["errors"], [])
        self.assertNotIn(self.TOKEN, r.stdout + r.stderr + self.logged())

    def test_bad_server_urls_exit_2_before_any_request(self):
        backend = Backend(self, self.TOKEN, "svc")
        port = backend.port
        for url, why in [("", "must not be empty"),
                         (f"127.0.0.1:{port}", "needs a scheme"),
                         (f"ftp://127.0.0.1:{port}", "https:// or http://"),
                         ("file:///etc/passwd", "https:// or http://"),
                         ("http://127.0.0.1:99999", "1..65535"),
                         (f"http://127.0.0.1:{port}#frag", "fragment"),
                         (f"http://127.0.0.1:{port}/?a=b", "query"),
                         ("http://", "no host")]:
            with self.subTest(url=url):
                r = self.upload(backend, token=self.TOKEN, url=url)
                assert_usage_error(self, r, "--server-host", why)
        for url in ["localhost:4040", "ftp://h"]:
            with self.subTest(pyroscope=url):
                assert_usage_error(self, run(["-o", "/tmp/x", "--pyroscope-url", url]),
                                   "--pyroscope-url")
        self.assertEqual(backend.requests(), [])

    def test_url_password_is_never_shown_and_short_tokens_do_not_mangle(self):
        # A closed port on loopback: the upload fails, its errors are logged
        # and printed. Token "t" is short: it is masked as a word only.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        url = f"http://user:hunter2@127.0.0.1:{port}"
        r = self.upload(None, token="t", url=url)
        self.assertEqual(r.returncode, 1, r.stderr)
        out = r.stdout + r.stderr + self.logged()
        self.assertNotIn("hunter2", out)
        self.assertIn(f"http://user:***@127.0.0.1:{port}/api/v2/profiles", r.stderr)
        self.assertIn("Couldn't connect", out)
        # Loopback: the token never leaves the host, so no plain-http warning
        # (test_config's plain_http_with_a_token_warns covers other hosts).
        self.assertNotIn("is plain http", self.logged())
        r = run(["--print-config", "--server-host", url])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("hunter2", r.stdout)
        self.assertEqual(json.loads(r.stdout)["server_host"],
                         f"http://user:<redacted>@127.0.0.1:{port}")


# spdlog's console line, as before journald support: "[time] [logger] [level] ".
PLAIN_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] \[[\w-]+\] "
                        r"\[(trace|debug|info|warning|error|critical)\] ")
JOURNAL_LINE = re.compile(r"^<([0-7])>([\w-]+): ")


def dev_ino(fd):
    st = os.fstat(fd)
    return f"{st.st_dev}:{st.st_ino}"


class Journal(unittest.TestCase):
    """Under systemd with stderr connected to the journal (JOURNAL_STREAM is
    stderr's device:inode), each console line is "<P>logger: message":
    journald's priority prefix, no time of our own, one line per record."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="gpa-journal-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", self.dir]))

    def run_agent(self, args, journal):
        """Runs the agent with stderr in a file; `journal`: "stderr" (the
        variable names that file), "other" (another file) or None."""
        err_path = os.path.join(self.dir, "stderr")
        other = os.path.join(self.dir, "other")
        open(other, "w").close()
        with open(err_path, "wb") as err, open(other) as o:
            env = {}
            if journal == "stderr":
                env["JOURNAL_STREAM"] = dev_ino(err.fileno())
            elif journal == "other":
                env["JOURNAL_STREAM"] = dev_ino(o.fileno())
            full_env = agent_env(env)
            if journal is None:
                full_env.pop("JOURNAL_STREAM", None)
            r = subprocess.run([AGENT, "--pid-file", "", "--log-file", ""] + args,
                               env=full_env, stdout=subprocess.PIPE, stderr=err,
                               timeout=60)
        with open(err_path, "rb") as f:
            return r.returncode, f.read().decode("utf-8", "replace")

    def one_window(self):
        """A short real run (one 1 s window, no perf, so any user can run it)
        that logs at info and warning level (--insert-dso-name is not built:
        one warning), and at debug level where it has something to say."""
        out = os.path.join(self.dir, "out")
        os.makedirs(out, exist_ok=True)
        return ["-o", out, "-d", "1", "--perf-mode", "disabled", "--no-java",
                "--no-python", "--no-ruby", "--disable-pidns-check",
                "--temp-dir", self.dir, "-v", "--insert-dso-name"]

    def test_journal_lines_carry_the_priority_and_no_time(self):
        rc, text = self.run_agent(self.one_window(), "stderr")
        self.assertEqual(rc, 0, text)
        lines = text.splitlines()
        self.assertGreater(len(lines), 3, text)
        priorities = set()
        for line in lines:
            m = JOURNAL_LINE.match(line)
            self.assertIsNotNone(m, line)
            self.assertIsNone(PLAIN_LINE.match(line), line)
            self.assertNotIn("\x1b[", line)  # no colours
            priorities.add(int(m.group(1)))
        # info and warning lines at least; -v's debug lines (7) if any.
        self.assertLessEqual({6, 4}, priorities, text)
        self.assertLessEqual(priorities, {7, 6, 4}, text)
        warning = [x for x in lines if "--insert-dso-name is not supported yet" in x]
        self.assertEqual(len(warning), 1, text)
        self.assertTrue(warning[0].startswith("<4>agent: "), warning[0])
        self.assertTrue(any(x.startswith("<6>agent: gprofiler-agent ") and "running" in x
                            for x in lines), text)

    def test_a_newline_in_a_message_does_not_forge_a_record(self):
        """A critical line (<2>) whose message holds a newline (from a path
        the user gave) stays one line, the newline written as \\n."""
        path = os.path.join(self.dir, "missing", "beat\n<0>forged: no")
        rc, text = self.run_agent(["-o", self.dir, "--heartbeat-file", path,
                                   "--disable-pidns-check"], "stderr")
        self.assertEqual(rc, 2, text)
        lines = text.splitlines()
        for line in lines:
            self.assertIsNotNone(JOURNAL_LINE.match(line), line)
        self.assertFalse(any(x.startswith("<0>") for x in lines), text)
        critical = [x for x in lines if x.startswith("<2>")]
        self.assertEqual(len(critical), 1, text)
        self.assertIn("--heartbeat-file", critical[0])
        self.assertIn("beat\\n<0>forged: no", critical[0])

    def test_elsewhere_the_lines_are_as_before(self):
        for journal in (None, "other"):
            with self.subTest(journal=journal):
                rc, text = self.run_agent(self.one_window(), journal)
                self.assertEqual(rc, 0, text)
                lines = text.splitlines()
                self.assertGreater(len(lines), 3, text)
                for line in lines:
                    self.assertIsNotNone(PLAIN_LINE.match(line), line)
                self.assertTrue(any("[agent] [warning] --insert-dso-name is not supported"
                                    in x for x in lines), text)


class LogShipping(unittest.TestCase):
    """The agent's logs go to the API server (--api-server) as gProfiler
    sends them, when it uploads and --dont-send-logs is not given."""

    TOKEN = "Ship-T0ken-987654"

    def setUp(self):
        self.backend = Backend(self, self.TOKEN, "svc")
        self.dir = tempfile.mkdtemp(prefix="gpa-ship-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", self.dir]))
        self.log = os.path.join(self.dir, "agent.log")

    def upload_file(self, extra=(), env=None, send_logs=True):
        return run(["upload-file", "--file-path", COL, "--token", self.TOKEN,
                    "--service-name", "svc", "--server-host", self.backend.url,
                    "--api-server", self.backend.url, "--log-file", self.log,
                    "--insert-dso-name"] + list(extra), env=env, send_logs=send_logs)

    def batches(self):
        posts = [q for q in self.backend.requests() if q["path"] == "/api/v1/logs"]
        for q in posts:
            self.assertEqual(q["errors"], [], q)
            self.assertEqual(q["status"], 200)
        return [q["logs_batch"] for q in posts]

    def test_upload_file_ships_its_lines(self):
        r = self.upload_file()
        self.assertEqual(r.returncode, 0, r.stderr)
        batches = self.batches()
        self.assertEqual(len(batches), 1, batches)
        b = batches[0]
        self.assertEqual(b["metadata"]["service_name"], "svc")
        self.assertRegex(b["metadata"]["gprofiler_version"], r"^\d+\.\d+\.\d+$")
        self.assertRegex(b["metadata"]["run_id"], r"^[0-9a-f-]{36}$")
        self.assertEqual(b["lost_logs_count"], 0)
        logs = b["logs"]
        warning = [e for e in logs
                   if "--insert-dso-name is not supported yet" in e["text"]["message"]]
        self.assertEqual(len(warning), 1, logs)
        self.assertEqual(warning[0]["severity"], 4)
        self.assertEqual(warning[0]["text"]["logger_name"], "gprofiler.agent")
        self.assertEqual([e["text"]["serial_no"] for e in logs], list(range(len(logs))))
        # Where they go is said in the log itself.
        self.assertIn(f"sending the agent's logs to {self.backend.url}/api/v1/logs",
                      [e["text"]["message"].split(" (")[0] for e in logs])
        with open(self.log) as f:
            logged = f.read()
        self.assertNotIn(self.TOKEN, r.stdout + r.stderr + logged)
        self.assertNotIn("cannot send logs", logged)

    def test_dont_send_logs_and_its_variable_stop_them(self):
        for extra, env in [(["--dont-send-logs"], None),
                           ([], {"GPROFILER_DONT_SEND_LOGS": "0"}),
                           (["--profile-api-version", "v1"], None)]:
            with self.subTest(extra=extra, env=env):
                r = self.upload_file(extra, env=env)
                self.assertEqual(r.returncode, 0, r.stderr)
                if "--profile-api-version" in extra:
                    # What v1 does and does not do, not "no effect".
                    with open(self.log) as f:
                        said = r.stdout + r.stderr + f.read()
                    self.assertIn("--profile-api-version: v1 stops sending the agent's logs",
                                  said)
                    self.assertNotIn("--profile-api-version is not supported yet", said)
        self.assertEqual(self.batches(), [])
        # The harness's own default, too.
        r = self.upload_file(send_logs=False)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.batches(), [])

    def test_an_agent_run_ships_its_start_up_lines(self):
        out = os.path.join(self.dir, "out")
        os.makedirs(out)
        r = run(["--pid-file", "", "--log-file", self.log, "-o", out, "-d", "1",
                 "--perf-mode", "disabled", "--no-java", "--no-python", "--no-ruby",
                 "--disable-pidns-check", "--temp-dir", self.dir,
                 "--spool-dir", os.path.join(self.dir, "spool"),
                 "-u", "--token", self.TOKEN, "--service-name", "svc",
                 "--server-host", self.backend.url, "--api-server", self.backend.url],
                send_logs=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        logs = [e for b in self.batches() for e in b["logs"]]
        messages = [e["text"]["message"] for e in logs]
        running = [e for e in logs if e["text"]["message"].startswith("gprofiler-agent ")
                   and "running" in e["text"]["message"]]
        self.assertEqual(len(running), 1, messages)
        self.assertEqual(running[0]["severity"], 3)
        self.assertEqual(running[0]["text"]["logger_name"], "gprofiler.agent")
        # The last line before the exit went out with the final flush.
        self.assertIn("stopped", messages)
        with open(self.log) as f:
            logged = f.read()
        self.assertNotIn(self.TOKEN, r.stdout + r.stderr + logged)


def write_file(text, suffix):
    f = tempfile.NamedTemporaryFile("w", suffix=suffix, delete=False)
    f.write(text)
    f.close()
    return f.name


class GProfilerConfigFile(unittest.TestCase):
    """Config files as gProfiler reads them (issue 14): configargparse's
    format, /etc/gprofiler/config.ini by default, beside our JSON."""

    def effective(self, args, env=None):
        r = run(args + ["--print-config"], env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_ini_and_json_files_with_precedence(self):
        default = write_file("# /etc/gprofiler/config.ini\n[gprofiler]\n"
                             "profiling-duration = 11\n"
                             "profiling-frequency: 12\n"
                             "service-name = from-default\n"
                             "max-children 13\n"
                             "continuous\n", ".ini")
        ini = write_file("profiling-frequency = 22  ; over the default\n"
                         "--service-name = \"from ini\"\n"
                         "pids = [1, 2]\n", ".ini")
        js = write_file('{"profiling_frequency": 32, "service_name": "from-json"}',
                        ".json")
        self.addCleanup(lambda: [os.unlink(p) for p in (default, ini, js)])
        base = self.effective([])
        only_default = self.effective([], env={"GPA_DEFAULT_CONFIG": default})
        self.assertEqual(only_default["profiling_duration"], 11)
        self.assertEqual(only_default["profiling_frequency"], 12)
        self.assertEqual(only_default["service_name"], "from-default")
        self.assertEqual(only_default["max_children"], 13)
        self.assertTrue(only_default["continuous"])
        self.assertNotEqual(base["max_children"], 13)
        for named, freq, service in [(ini, 22, "from ini"), (js, 32, "from-json")]:
            with self.subTest(named=named):
                env = {"GPA_DEFAULT_CONFIG": default}
                both = self.effective(["--config", named], env=env)
                self.assertEqual(both["profiling_duration"], 11)  # default file
                self.assertEqual(both["profiling_frequency"], freq)  # named file
                self.assertEqual(both["service_name"], service)
                env.update({"GPROFILER_PROFILING_FREQUENCY": "42",
                            "GPROFILER_MAX_CHILDREN": "43"})
                by_env = self.effective(["--config", named], env=env)
                self.assertEqual(by_env["profiling_frequency"], 42)
                self.assertEqual(by_env["max_children"], 43)
                self.assertEqual(by_env["service_name"], service)
                by_flag = self.effective(["--config", named, "-f", "52",
                                          "--service-name", "flag"], env=env)
                self.assertEqual(by_flag["profiling_frequency"], 52)
                self.assertEqual(by_flag["service_name"], "flag")
                self.assertEqual(by_flag["max_children"], 43)
        self.assertEqual(self.effective(["--config", ini])["pids"], [1, 2])

    def test_bad_line_names_file_and_line(self):
        for text, needle in [
                ("profiling-duration = 5\n# ok\nprofiling-frequency = fast\n",
                 "line 3: profiling-frequency: 'fast' must be a whole number"),
                ("[gprofiler]\nno-such-flag = 1\n",
                 "line 2: unknown option 'no-such-flag'"),
                ("continuous = perhaps\n", "line 1: continuous: 'perhaps'"),
                ("a = 1\n= 2\n", "line 2: expected a setting")]:
            with self.subTest(text=text):
                path = write_file(text, ".ini")
                assert_usage_error(self, run(["--config", path, "--print-config"]),
                                   f"config file {path}: " + needle)
                assert_usage_error(self, run(["--print-config"],
                                             env={"GPA_DEFAULT_CONFIG": path}),
                                   f"config file {path}: " + needle)
                os.unlink(path)

    def test_default_file_missing_is_fine_unreadable_is_not(self):
        d = tempfile.mkdtemp(prefix="gpa-cli-")
        missing = os.path.join(d, "gprofiler", "config.ini")
        self.assertEqual(self.effective([], env={"GPA_DEFAULT_CONFIG": missing}),
                         self.effective([]))
        assert_usage_error(self, run(["--print-config"], env={"GPA_DEFAULT_CONFIG": d}),
                           f"config file {d}", "directory")
        dangling = os.path.join(d, "link.ini")
        os.symlink(missing, dangling)
        assert_usage_error(self, run(["--print-config"],
                                     env={"GPA_DEFAULT_CONFIG": dangling}),
                           f"config file {dangling}")
        os.unlink(dangling)
        os.rmdir(d)

    def test_help_names_the_default_file(self):
        self.assertIn("/etc/gprofiler/config.ini", run(["--help"]).stdout)


class ConfigFile(unittest.TestCase):
    """The config file is read bounded and parsed depth-checked (issue 12,
    defects 5, 7, 9)."""

    def test_special_files_fail_fast(self):
        d = tempfile.mkdtemp(prefix="gpa-cli-")
        fifo = os.path.join(d, "fifo.json")
        os.mkfifo(fifo)
        big = os.path.join(d, "big.json")
        with open(big, "w") as f:
            f.write('{"service_name": "' + "x" * (1 << 20) + '"}')
        for path, why in [("/dev/zero", "character device"), (fifo, "FIFO"),
                          (d, "directory"), (big, "larger than the limit of 1048576")]:
            with self.subTest(path=path):
                start = time.monotonic()
                r = run(["--config", path, "--print-config"])
                self.assertLess(time.monotonic() - start, 5)
                assert_usage_error(self, r, path, why)
        for p in (fifo, big):
            os.unlink(p)
        os.rmdir(d)

    def test_deep_nesting_is_a_usage_error_not_a_crash(self):
        path = write_config("[" * 200000 + "]" * 200000)
        assert_usage_error(self, run(["--config", path, "--print-config"]), path,
                           "nested deeper than 64")
        os.unlink(path)

    def test_wrongly_typed_token_is_not_echoed(self):
        for value in ['12345678', '["hunter2-secret"]', '{"k": "hunter2-secret"}']:
            with self.subTest(value=value):
                path = write_config('{"token": %s}' % value)
                r = run(["--config", path, "--print-config"])
                assert_usage_error(self, r, path, "/token", "type")
                self.assertNotIn("12345678", r.stderr)
                self.assertNotIn("hunter2", r.stderr)
                os.unlink(path)

    def test_print_config_round_trips(self):
        r = run(["--print-config", "-d", "9", "--token", "hunter2-secret"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("hunter2", r.stdout)
        printed = json.loads(r.stdout)
        path = write_config(r.stdout)
        # With the token given by environment or flag, the file is taken
        # as it is and prints the same again.
        for args, env in [([], {"GPROFILER_TOKEN": "other"}), (["--token", "other"], {})]:
            back = run(["--config", path, "--print-config"] + args, env=env)
            self.assertEqual(back.returncode, 0, back.stderr)
            self.assertEqual(json.loads(back.stdout), printed)
            self.assertEqual(back.stderr, "")
        # Without it, the placeholder is refused, and the message says so.
        assert_usage_error(self, run(["--config", path, "--print-config"]), path,
                           "/token", "placeholder", "GPROFILER_TOKEN")
        os.unlink(path)
        # Without a token at all, the output needs nothing else.
        r = run(["--print-config"])
        path = write_config(r.stdout)
        back = run(["--config", path, "--print-config"])
        self.assertEqual(back.returncode, 0, back.stderr)
        self.assertEqual(back.stdout, r.stdout)
        os.unlink(path)

    def test_spool_bounds_have_minimums(self):
        assert_usage_error(self, run(["-o", "/tmp/x", "--spool-max-size", "0"]),
                           "--spool-max-size", ">= 1048576")
        assert_usage_error(self, run(["-o", "/tmp/x", "--spool-max-files", "0"]),
                           "--spool-max-files", ">= 1")


class Unsupported(unittest.TestCase):
    """Options parsed for gProfiler's command lines but read by nothing."""

    def test_help_and_start_say_not_supported(self):
        help_text = run(["--help"]).stdout

        def entry(flag):
            return " ".join(re.split(r"\n  (?:    )?-", help_text.split(flag + " ", 1)[1],
                                     1)[0].split())

        for flag in ["--rootless", "--pyperf-user-stacks-pages", "--python-pyperf-verbose"]:
            self.assertIn("(not supported yet)", entry(flag), flag)
        for flag in ["--perf-mode", "--java-mode", "--runtime-concurrency", "--nodejs-mode",
                     "--ruby-mode", "--no-php", "--dotnet-mode", "--rbspy-path",
                     "--phpspy-path", "--dotnet-trace-path", "--php-proc-filter",
                     "--python-mode", "--no-python", "--py-spy-path", "--no-python-versions",
                     "--python-pyspy-process"]:
            self.assertNotIn("(not supported yet)", entry(flag), flag)
        backend = Backend(self, "tok-123456789", "svc")
        log = tempfile.mktemp(prefix="gpa-cli-", suffix=".log")
        r = run(["upload-file", "--file-path", COL, "--token", "tok-123456789",
                 "--service-name", "svc", "--server-host", backend.url,
                 "--log-file", log, "--rootless", "--python-pyperf-verbose", "--no-python",
                 "--no-ruby", "--no-java"])
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(log) as f:
            text = f.read()
        os.unlink(log)
        self.assertEqual(text.count("--rootless is not supported yet"), 1, text)
        self.assertEqual(text.count("--python-pyperf-verbose is not supported yet"), 1, text)
        self.assertNotIn("--no-python is not supported", text)
        self.assertNotIn("--no-java is not supported", text)
        self.assertNotIn("--no-ruby is not supported", text)


FIXTURE = os.path.join(HERE, "..", "config", "gprofiler_flags.json")

# Where our --print-config shows a gProfiler flag, when not under the flag's
# own name with underscores.
KEYS = {"--flamegraph": "no_flamegraph", "--glogger-server": "api_server",
        "--no-java": "java_mode", "--no-python": "python_mode",
        "--no-perf": "perf_mode", "--no-php": "php_mode", "--no-ruby": "ruby_mode",
        "--no-dotnet": "dotnet_mode", "--no-nodejs": "nodejs_mode"}
# Values that the effective configuration shows differently.
EFFECTIVE = {("--flamegraph", True): False, ("--token", "tok-123456"): "<redacted>"}
# A value of the right type, where "a whole number" or "some text" is not
# enough.
VALUES = {"--profiling-frequency": "50", "--profiling-duration": "30",
          "--log-rotate-max-size": "2097152", "--perf-dwarf-stack-size": "16384",
          "--server-host": "https://profiler.example.test",
          "--api-server": "https://api.example.test",
          "--glogger-server": "https://api.example.test",
          "--alloc-interval": "100kb", "--token": "tok-123456",
          "--java-async-profiler-features": "probesp,comptask",
          "--java-collect-jvm-flags": "all", "--java-async-profiler-safemode": "7",
          "--java-async-profiler-mcache": "40", "--controller-pid": "1",
          "--pids": "1,2", "--python-pyspy-process": "3,4"}
# What else a flag needs to pass gProfiler's rules.
NEEDS = {"--upload-results": ["--token", "t", "--service-name", "s"],
         "--enable-heartbeat-server": ["-u", "--token", "t", "--service-name", "s"],
         "--perf-event-period": ["--perf-event", "cycles"],
         "--hw-events-file": ["--perf-event", "cycles"],
         "--alloc-interval": ["--mode", "allocation"]}
# Flags that do not set an option: tested on their own.
META = {"--help", "--version", "--config"}


def load_fixture():
    with open(FIXTURE) as f:
        return json.load(f)["flags"]


def long_name(flag):
    return next(n for n in flag["names"] if n.startswith("--"))


def cases(flag):
    """(arguments, print-config key, expected value) feeding `flag`: every
    choice of a choice, a value of the right type for the rest, each of its
    names."""
    name = long_name(flag)
    key = KEYS.get(name, name[2:].replace("-", "_"))
    result = []
    for spelling in flag["names"]:
        if flag["kind"] == "flag":
            expected = "disabled" if flag["action"] == "store_const" else True
            result.append(([spelling], key, EFFECTIVE.get((name, expected), expected)))
        elif flag["kind"] == "choice":
            for choice in flag["choices"]:
                expected = choice
                if choice == "none" and name.endswith("-mode") and name != "--mode":
                    expected = "disabled"  # gProfiler's legacy name
                result.append(([spelling, choice], key, expected))
        elif flag["kind"] in ("int_list",):
            # action="extend": given twice, the lists add up.
            first = VALUES[name]
            result.append(([spelling, first, spelling, "9"], key,
                           [int(x) for x in first.split(",")] + [9]))
        elif flag["action"] == "append":
            result.append(([spelling, "^--foo", spelling, "bar,baz"], key,
                           ["^--foo", "bar,baz"]))
        elif flag["kind"] == "int":
            value = VALUES.get(name, str((flag.get("default") or 0) + 2))
            result.append(([spelling, value], key, int(value)))
        else:
            value = VALUES.get(name, "/tmp/gpa-flag-value")
            result.append(([spelling, value], key,
                           EFFECTIVE.get((name, value), value)))
    return [(args + NEEDS.get(name, []), key, expected)
            for args, key, expected in result]


class GprofilerFlags(unittest.TestCase):
    """Every flag of gProfiler's CLI (test/config/gprofiler_flags.json, made
    by scripts/extract-gprofiler-flags.py from gProfiler's source) is
    accepted with its spelling, type, choices and action."""

    def test_fixture_is_complete(self):
        flags = load_fixture()
        self.assertGreaterEqual(len(flags), 99)
        names = {n for f in flags for n in f["names"]}
        for name in ["--disable-pidns-check", "--perf-mode", "--no-perf", "--pids",
                     "--app-id-args-filter", "--java-safemode", "-c", "-h"]:
            self.assertIn(name, names)

    def test_every_flag_is_in_help(self):
        help_text = run(["--help"]).stdout
        for flag in load_fixture():
            for name in flag["names"]:
                if name.startswith("--"):
                    pattern = r"(?m)^  (?:-\w, |    )" + re.escape(name) + r"( |$)"
                else:
                    pattern = r"(?m)^  " + re.escape(name) + r", --"
                self.assertRegex(help_text, pattern, name)

    def test_every_flag_and_choice_is_accepted(self):
        count = 0
        for flag in load_fixture():
            if long_name(flag) in META:
                continue
            for args, key, expected in cases(flag):
                with self.subTest(args=args):
                    r = run(args + ["--print-config"])
                    self.assertEqual(r.returncode, 0, r.stderr)
                    self.assertEqual(json.loads(r.stdout)[key], expected, args)
                    count += 1
        self.assertGreater(count, 120)

    def test_meta_flags(self):
        self.assertEqual(run(["-h"]).returncode, 0)
        self.assertEqual(run(["--version"]).returncode, 0)
        path = write_config("{}")
        self.addCleanup(os.unlink, path)
        self.assertEqual(run(["--config", path, "--print-config"]).returncode, 0)

    def test_nargs_optional_takes_its_const(self):
        r = run(["--java-safemode", "--print-config"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["java_safemode"], "all")
        r = run(["--java-safemode", "hserr", "--print-config"])
        self.assertEqual(json.loads(r.stdout)["java_safemode"], "hserr")

    def test_first_extend_on_the_command_line_replaces_the_environment(self):
        r = run(["--pids", "5", "--print-config"], env={"GPROFILER_PIDS": "1,2"})
        self.assertEqual(json.loads(r.stdout)["pids"], [5])

    def test_gprofilers_rules(self):
        ok = ["--print-config"]
        for args, needles in [
                (["-f", "101", "--perf-mode", "dwarf"], ["can't be larger than 100"]),
                (["-f", "101", "--perf-mode", "smart"], ["can't be larger than 100"]),
                (["--perf-dwarf-stack-size", "65529"], ["--perf-dwarf-stack-size", "65528"]),
                (["--nodejs-mode", "perf", "--perf-mode", "dwarf"],
                 ["--nodejs-mode perf or attach-maps requires --perf-mode 'fp' or 'smart'"]),
                (["--nodejs-mode", "attach-maps", "--no-perf"], ["requires --perf-mode"]),
                (["--pids", "1", "--profile-spawned-processes"],
                 ["--pids is not allowed when profiling spawned processes"]),
                (["--mode", "allocation", "-f", "10"], ["only allowed in cpu profiling"]),
                (["--alloc-interval", "1kb"], ["only allowed in allocation profiling"]),
                (["--enable-heartbeat-server"], ["requires --upload-results"]),
                (["--perf-event-period", "10"], ["requires --perf-event"]),
                (["--hw-events-file", "/x"], ["requires --perf-event"]),
                (["--perf-event", "cycles", "--perf-event-period", "9", "-f", "9"],
                 ["mutually exclusive"]),
                (["--perf-event", "cycles", "--mode", "none"], ["only supported in cpu"]),
                (["--java-async-profiler-safemode", "64"], ["<= 63"]),
                (["--java-async-profiler-features", "probesp,bogus"], ["comma-separated"]),
                (["--python-mode", "bogus"], ["must be one of"]),
                (["--heartbeat-interval", "0"], [">= 1"])]:
            with self.subTest(args=args):
                assert_usage_error(self, run(args + ok), *needles)
        for args in [["-f", "100", "--perf-mode", "dwarf"], ["-f", "500"],
                     ["--perf-dwarf-stack-size", "65528"],
                     ["--nodejs-mode", "perf", "--perf-mode", "smart"],
                     ["--profile-spawned-processes"], ["--mode", "allocation"],
                     ["--perf-mode", "none", "--nodejs-mode", "disabled"]]:
            with self.subTest(args=args):
                self.assertEqual(run(args + ok).returncode, 0, args)

    def test_unbuilt_flags_warn_once_at_start(self):
        """Every flag --help marks "(not supported yet)" logs one warning at
        start naming it; deprecated ones warn as gProfiler does."""
        help_text = run(["--help"]).stdout
        entries = re.split(r"\n(?=  (?:-\w, |    )--)", help_text)
        unsupported = set()
        for e in entries:
            m = re.match(r"  (?:-\w, |    )(--[\w-]+)", e)
            if m and "(not supported yet)" in " ".join(e.split()):
                unsupported.add(m.group(1))
        flags = {long_name(f): f for f in load_fixture()}
        self.assertIn("--insert-dso-name", unsupported)
        self.assertNotIn("--perf-mode", unsupported)
        self.assertNotIn("--perf-no-memory-restart", unsupported)
        deprecated = {long_name(f): f for f in load_fixture() if f["deprecated"]
                      and long_name(f) != "--glogger-server"}
        expected = unsupported & set(flags) - set(deprecated) - {"--alloc-interval"}
        args = []
        for name in sorted(expected):
            case_args, _, _ = cases(flags[name])[-1]
            args += [a for a in case_args if a not in ("-u", "--token", "t",
                                                         "--service-name", "s")]
        backend = Backend(self, "tok-123456789", "svc")

        def start(args):
            """The log of upload-file (a short real run) with `args`."""
            log = tempfile.mktemp(prefix="gpa-cli-", suffix=".log")
            self.addCleanup(lambda: os.path.exists(log) and os.unlink(log))
            r = run(["upload-file", "--file-path", COL, "--token", "tok-123456789",
                     "--service-name", "svc", "--server-host", backend.url,
                     "--log-file", log] + args)
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(log) as f:
                return f.read()

        text = start(args)
        for name in sorted(expected):
            # One warning each: "has no effect", or what a partly built one
            # does and does not do ("--profile-api-version: v1 stops ...").
            self.assertEqual(text.count(name + " is not supported yet: it has no effect")
                             + text.count(name + ": "), 1, name)
        # The help still marks many (the parse above found them).
        self.assertGreater(len(expected), 10)
        text = start(["--mode", "allocation", "--alloc-interval", "1kb",
                      "--spark-sample-period", "60", "--collect-spark-metrics",
                      "--databricks-job-name-as-service-name"])
        self.assertEqual(text.count("--mode allocation is not supported yet"), 1, text)
        self.assertEqual(text.count("--alloc-interval is not supported yet"), 1, text)
        self.assertEqual(len(deprecated), 3, deprecated)
        for name, version in [("--spark-sample-period", "1.42.0"),
                              ("--collect-spark-metrics", "1.42.0"),
                              ("--databricks-job-name-as-service-name", "1.49.0")]:
            self.assertIn(name, deprecated)
            self.assertEqual(text.count(f"{name} is deprecated and removed in version "
                                        f"{version}"), 1, name)
            self.assertNotIn(name + " is not supported", text)
        self.assertNotIn("--server-host is not supported", text)


if __name__ == "__main__":
    AGENT = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)

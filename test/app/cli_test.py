#!/usr/bin/env python3
"""The command line of the real binary: --help, --version, exit status 2
with one clear line for every kind of configuration mistake, and each
precedence level (file < environment < flags) read back through
--print-config.

Usage: cli_test.py /path/to/gprofiler-agent
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

AGENT = None


def run(args, env=None, config=None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("GPROFILER_")}
    full_env.update(env or {})
    return subprocess.run([AGENT] + args, env=full_env, capture_output=True,
                          text=True, timeout=30)


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


if __name__ == "__main__":
    AGENT = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)

#!/usr/bin/env python3
"""The real agent's header metadata: cloud metadata from a stand-in metadata
service on 127.0.0.1 when (and only when) the DMI data names a cloud, a
service that never answers costing start-up nothing, --disable-metadata-
collection, --disable-metrics-collection (header and upload) and
--external-metadata, and the header compared with gProfiler's
(test/data/gprofiler_header.json) key for key.

Runs the agent without perf (--perf-mode disabled: empty profiles, but a
full header each window), so it needs no root.

    metadata_test.py AGENT
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import parse_col, read_text, start_agent, wait_for  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SUPPORT = os.path.join(HERE, "..", "..", "support")
DMI = os.path.join(HERE, "..", "..", "data", "dmi")
GOLDEN = os.path.join(HERE, "..", "..", "data", "gprofiler_header.json")
AGENT = None

CLOUD_INFO_KEYS = {
    "aws": ["region", "zone", "instance_type", "life_cycle", "account_id", "image_id",
            "instance_id"],
    "gcp": ["zone", "instance_type", "preempted", "preemptible", "instance_id", "image_id",
            "name"],
    "azure": ["instance_type", "zone", "region", "subscription_id", "resource_group_name",
              "resource_id", "instance_id", "name", "image_info"],
}


class MetadataService:
    """test/support/cloud_metadata_server.py on 127.0.0.1."""

    def __init__(self, test, hang=False):
        args = [sys.executable, os.path.join(SUPPORT, "cloud_metadata_server.py")]
        self.proc = subprocess.Popen(args + (["--hang"] if hang else []),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        test.addCleanup(self.stop)
        line = self.proc.stdout.readline().split()
        assert line and line[0] == "READY", line
        self.url = f"http://127.0.0.1:{line[1]}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdin.close()
        self.proc.stdout.close()

    def requests(self):
        with urllib.request.urlopen(self.url + "/_requests", timeout=10) as resp:
            return json.loads(resp.read())


class Backend:
    """test/support/server.py, the stand-in Performance Studio."""

    def __init__(self, test):
        self.proc = subprocess.Popen([sys.executable, os.path.join(SUPPORT, "server.py"),
                                      "--token", "meta-token", "--service", "meta"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        test.addCleanup(self.stop)
        line = self.proc.stdout.readline().split()
        assert line and line[0] == "READY", line
        self.port, self.control = int(line[1]), int(line[2])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdin.close()
        self.proc.stdout.close()

    def uploads(self):
        url = f"http://127.0.0.1:{self.control}/requests"
        with urllib.request.urlopen(url, timeout=10) as resp:
            return [r for r in json.loads(resp.read()) if r["path"] == "/api/v2/profiles"]


def service_args(service, dmi):
    return ["--dmi-dir", os.path.join(DMI, dmi) if dmi else "/nonexistent/dmi",
            "--aws-metadata-url", service.url, "--gcp-metadata-url", service.url,
            "--azure-metadata-url", service.url]


class Metadata(unittest.TestCase):
    def run_agent(self, args, secs=2, expect_rc=0):
        """Runs the agent for one window of `secs` without perf; returns
        (header, log, seconds from start to the first .col)."""
        work = tempfile.mkdtemp(prefix="gpa-meta-")
        out = os.path.join(work, "out")
        log_path = os.path.join(work, "agent.log")
        start = time.monotonic()
        agent = start_agent(self, AGENT, ["-o", out, "-d", str(secs), "--perf-mode",
                                          "disabled", "--temp-dir", work] + args, log_path)

        def first_col():
            if not os.path.isdir(out):
                return None
            cols = [f for f in os.listdir(out) if f.startswith("profile_") and
                    f.endswith(".col")]
            return cols[0] if cols else None

        name = wait_for(lambda: first_col() or agent.poll() is not None, timeout=60,
                        step=0.01)
        first = time.monotonic() - start
        rc = agent.wait(timeout=60)
        log = read_text(log_path)
        self.assertEqual(rc, expect_rc, log)
        if expect_rc != 0:
            return None, log, None
        self.assertIsInstance(name, str, log)
        header, _ = parse_col(os.path.join(out, name))
        return header, log, first

    def test_each_cloud_from_its_dmi_and_service(self):
        for cloud, dmi in [("aws", "aws-nitro"), ("aws", "aws-xen"), ("gcp", "gcp"),
                           ("azure", "azure")]:
            with self.subTest(dmi=dmi):
                service = MetadataService(self)
                header, log, _ = self.run_agent(service_args(service, dmi))
                md = header["metadata"]
                self.assertEqual(md["cloud_provider"], cloud, log)
                self.assertEqual(list(md["cloud_info"]), CLOUD_INFO_KEYS[cloud])
                self.assertNotIn("provider", md["cloud_info"])
                for r in service.requests():
                    self.assertIsNone(r["error"], r)
                self.assertEqual(len(service.requests()), 3 if cloud == "aws" else 1)
        self.assertEqual(md["cloud_info"]["image_info"]["image_sku"], "22_04-lts-gen2")

    def test_no_dmi_match_no_request(self):
        service = MetadataService(self)
        for dmi in ["kvm", "hyperv", "dell", None]:
            with self.subTest(dmi=dmi):
                header, log, _ = self.run_agent(service_args(service, dmi))
                self.assertEqual(header["metadata"]["cloud_provider"], "unknown")
                self.assertNotIn("cloud_info", header["metadata"])
                self.assertIn("names no cloud; no metadata service asked", log)
        # The default DMI directory (none on these machines) likewise.
        header, _, _ = self.run_agent(service_args(service, "kvm")[2:])
        self.assertEqual(header["metadata"]["cloud_provider"], "unknown")
        self.assertEqual(service.requests(), [])

    def test_a_service_that_never_answers_costs_nothing(self):
        secs = 2
        quiet = MetadataService(self)
        started = time.monotonic()
        _, _, baseline = self.run_agent(service_args(quiet, "kvm"), secs)
        baseline_total = time.monotonic() - started
        hung = MetadataService(self, hang=True)
        started = time.monotonic()
        header, log, first = self.run_agent(service_args(hung, "aws-nitro"), secs)
        total = time.monotonic() - started
        delay = first - baseline
        print(f"\nfirst profile after {first:.3f} s with a never-answering metadata "
              f"service, {baseline:.3f} s without a cloud: {delay * 1000:+.0f} ms "
              f"(window {secs} s); the run took {total:.3f} s against "
              f"{baseline_total:.3f} s", flush=True)
        # The request was made and hangs: the header says unknown meanwhile.
        self.assertEqual([r["path"] for r in hung.requests()], ["/latest/api/token"])
        self.assertEqual(header["metadata"]["cloud_provider"], "unknown")
        self.assertLess(delay, 0.5)
        self.assertLess(first, secs + 1.5)
        # Stopping interrupts it: libcurl notices within about a second.
        self.assertLess(total - baseline_total, 1.5)
        self.assertIn("stopped before aws's metadata service answered", log)

    def test_disable_metadata_collection(self):
        service = MetadataService(self)
        header, _, _ = self.run_agent(service_args(service, "aws-nitro") +
                                      ["--disable-metadata-collection"])
        md = header["metadata"]
        self.assertEqual(list(md), ["hostname", "profiling_mode", "sampling_event",
                                    "sampling_mode", "sampling_frequency"])
        self.assertEqual(md["sampling_frequency"], 11)  # no system profiler
        self.assertEqual(service.requests(), [])  # no cloud lookup either
        self.assertIsNotNone(header["metrics"]["mem_avg"])

    def test_disable_metrics_collection(self):
        backend = Backend(self)
        work = tempfile.mkdtemp(prefix="gpa-meta-spool-")
        header, log, _ = self.run_agent(
            ["--disable-metrics-collection", "-u", "--token", "meta-token",
             "--service-name", "meta", "--server-host", f"http://127.0.0.1:{backend.port}",
             "--spool-dir", work])
        self.assertEqual(header["metrics"], {"cpu_avg": None, "mem_avg": None})
        self.assertIn("cloud_provider", header["metadata"])
        uploads = wait_for(backend.uploads, timeout=20)
        self.assertEqual(len(uploads), 1, log)
        self.assertEqual(uploads[0]["status"], 200, uploads[0])
        self.assertIsNone(uploads[0]["body"]["cpu_avg"])
        self.assertIsNone(uploads[0]["body"]["mem_avg"])

    def test_external_metadata(self):
        work = tempfile.mkdtemp(prefix="gpa-meta-ext-")
        path = os.path.join(work, "external.json")
        doc = {"static": {"value1": 555, "value2": "string"},
               "application": {"1": {"value3": "1234", "value4": False}}}
        with open(path, "w") as f:
            json.dump(doc, f)
        header, _, _ = self.run_agent(["--external-metadata", path])
        self.assertEqual(header["metadata"]["external_metadata"], doc["static"])
        # Missing: the agent does not start, and says which file.
        missing = os.path.join(work, "missing.json")
        _, log, _ = self.run_agent(["--external-metadata", missing], expect_rc=2)
        self.assertIn(missing, log)
        # Stale (not modified for over 5 minutes): refused, as gProfiler does,
        # unless metadata is not collected.
        old = time.time() - 600
        os.utime(path, (old, old))
        _, log, _ = self.run_agent(["--external-metadata", path], expect_rc=2)
        self.assertIn("stale", log)
        self.assertIn(path, log)
        header, log, _ = self.run_agent(["--external-metadata", path,
                                         "--disable-metadata-collection"])
        self.assertNotIn("external_metadata", header["metadata"])
        self.assertIn("stale", log)
        # Not in the format: a warning naming the file, no external metadata.
        with open(path, "w") as f:
            f.write('{"static": "not an object"}')
        header, log, _ = self.run_agent(["--external-metadata", path])
        self.assertEqual(header["metadata"]["external_metadata"], {})
        self.assertIn(path, log)
        self.assertIn('"static" is not a JSON object', log)

    def test_header_is_gprofilers_key_for_key(self):
        """The real header against gProfiler's: the same keys, in the same
        order, with the same JSON types (values are this host's), but for
        the differences docs/upload.md lists."""
        with open(GOLDEN) as f:
            golden = json.load(f)
        service = MetadataService(self)
        work = tempfile.mkdtemp(prefix="gpa-meta-golden-")
        path = os.path.join(work, "external.json")
        with open(path, "w") as f:
            json.dump({"static": {"team": "perf"}}, f)
        header, _, _ = self.run_agent(service_args(service, "aws-nitro") +
                                      ["--external-metadata", path])

        def kind(v):
            return "number" if isinstance(v, (int, float)) and not isinstance(v, bool) \
                else type(v).__name__

        ours = [k for k in header if k not in ("start_time", "end_time")]
        self.assertEqual(ours, list(golden))
        for key, value in golden.items():
            if key in ("metadata", "metrics"):
                continue
            if key.startswith(("container", "application_metadata")):
                self.assertEqual(kind(header[key]), kind(value), key)
            else:  # profiling_mode, hwmetrics, ..., sampling_frequency
                self.assertEqual(header[key], value, key)
        self.assertEqual(list(header["metrics"]), list(golden["metrics"]))
        md, gmd = header["metadata"], golden["metadata"]
        self.assertEqual(list(md), [k for k in gmd if k != "python_version"])
        for key, value in gmd.items():
            if key == "python_version":
                continue
            self.assertEqual(kind(md[key]), kind(value), key)
            if key in ("cloud_info", "big_data", "external_metadata"):
                self.assertEqual(list(md[key]), list(value), key)
        # Values that do not depend on the host.
        self.assertEqual(md["external_metadata"], {"team": "perf"})
        self.assertEqual(md["cloud_info"]["instance_id"], "i-0123456789abcdef0")
        for key in ("spawn_time", "current_time"):
            time.strptime(md[key], "%Y-%m-%dT%H:%M:%S")
        self.assertIsInstance(md["spawn_uptime_ms"], float)
        with open("/proc/uptime") as f:
            self.assertLess(md["spawn_uptime_ms"], float(f.read().split()[0]))


if __name__ == "__main__":
    AGENT = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)

#!/usr/bin/env python3
"""Checks the Kubernetes manifest and the Helm chart of deploy/.

Usage: kubernetes_test.py REPO_ROOT [--agent PATH]

The manifest (deploy/kubernetes/gprofiler-agent-daemonset.yaml) is parsed
with a YAML parser and every object is checked for what Kubernetes and the
agent need: apiVersion, kind, metadata.name and no namespace; a DaemonSet
whose selector matches its pods' labels, hostPID, root with the capabilities
perf and the runtime tools need (or privileged), requests <= limits below
gProfiler's 256Mi, the token from a Secret, config.ini mounted from the
ConfigMap at /etc/gprofiler/config.ini, a liveness probe that reaches the
metrics endpoint the config opens. With --agent, the agent itself reads the
ConfigMap's config.ini with the DaemonSet's arguments and environment
(--print-config) and must accept them.

Helm is not in Debian, so the chart cannot be rendered here: its structure
is checked (Chart.yaml's fields, every .Values path the templates read exists
in values.yaml, every included template is defined, the template actions
balance, the defaults agree with the manifest). When `helm` is on PATH,
`helm lint` and `helm template` run too: the rendered objects get the
manifest's checks (and the agent's reading, with --agent), a Pyroscope-only
privileged variant is rendered, and rendering without a token or a service
name must fail; otherwise that part is skipped, and said so.

Each check is also run against broken copies of the manifest, which it must
reject, so that a check that cannot fail is found.
"""

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

MANIFEST = "deploy/kubernetes/gprofiler-agent-daemonset.yaml"
CHART = "deploy/helm/gprofiler-agent"
CONFIG_PATH = "/etc/gprofiler/config.ini"
# gProfiler's own DaemonSet asks for 256Mi and allows 1Gi: ours must allow less.
GPROFILER_MEMORY_REQUEST = 256 * 1024 * 1024
# What perf and the runtime tools need, unless the container is privileged.
REQUIRED_CAPS = {"SYS_ADMIN", "SYS_PTRACE"}

UNITS = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4,
         "k": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4, "m": 0.001}


def quantity(q):
    """A Kubernetes quantity ("64Mi", "500m", "1", 2) as a number."""
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([A-Za-z]*)", str(q))
    if not m or m.group(2) not in UNITS and m.group(2) != "":
        raise ValueError(f"not a quantity: {q!r}")
    return float(m.group(1)) * UNITS.get(m.group(2), 1)


def ini_values(text):
    """The key = value lines of a config.ini (gProfiler's format), enough
    for the numeric keys checked here; the agent itself reads it with
    --agent."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;[":
            continue
        key, sep, value = line.partition("=")
        out[key.strip()] = value.strip() if sep else "true"
    return out


def check_objects(docs, where):
    """Errors of a list of Kubernetes objects (the manifest or the chart's
    output)."""
    errors = []

    def err(msg):
        errors.append(f"{where}: {msg}")

    by_kind = {}
    for i, d in enumerate(docs):
        if not isinstance(d, dict):
            err(f"document {i} is not a mapping")
            continue
        for field in ("apiVersion", "kind"):
            if not d.get(field):
                err(f"document {i} has no {field}")
        meta = d.get("metadata") or {}
        if not meta.get("name"):
            err(f"document {i} ({d.get('kind')}) has no metadata.name")
        if "namespace" in meta:
            err(f"{d.get('kind')} {meta.get('name')} names a namespace: the "
                "manifest must be namespace-agnostic")
        by_kind.setdefault(d.get("kind"), []).append(d)

    for kind in ("ServiceAccount", "ConfigMap", "DaemonSet"):
        if len(by_kind.get(kind, [])) != 1:
            err(f"expected one {kind}, found {len(by_kind.get(kind, []))}")
    if errors:
        return errors
    sa = by_kind["ServiceAccount"][0]
    cm = by_kind["ConfigMap"][0]
    ds = by_kind["DaemonSet"][0]
    secrets = {s["metadata"]["name"]: s for s in by_kind.get("Secret", [])}

    if ds["apiVersion"] != "apps/v1":
        err(f"DaemonSet apiVersion is {ds['apiVersion']}, not apps/v1")
    spec = ds.get("spec") or {}
    selector = ((spec.get("selector") or {}).get("matchLabels")) or {}
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not selector:
        err("DaemonSet has no spec.selector.matchLabels")
    for k, v in selector.items():
        if labels.get(k) != v:
            err(f"DaemonSet selector {k}={v} does not match the pod "
                f"template's labels {labels}")
    pod = template.get("spec") or {}
    if pod.get("hostPID") is not True:
        err("pod spec has no hostPID: true (the agent refuses to start "
            "outside the host's PID namespace)")
    if pod.get("serviceAccountName") != sa["metadata"]["name"]:
        err(f"serviceAccountName {pod.get('serviceAccountName')!r} is not the "
            f"ServiceAccount {sa['metadata']['name']!r}")
    if not any(t.get("operator") == "Exists" and not t.get("key")
               for t in pod.get("tolerations") or []):
        err("no toleration {operator: Exists} (without a key): tainted nodes "
            "would run no agent")

    containers = pod.get("containers") or []
    if len(containers) != 1:
        err(f"expected one container, found {len(containers)}")
        return errors
    c = containers[0]
    for field in ("name", "image"):
        if not c.get(field):
            err(f"container has no {field}")

    sc = c.get("securityContext") or {}
    if sc.get("runAsUser", 0) != 0:
        err("the container must run as root (perf needs it)")
    caps = set(((sc.get("capabilities") or {}).get("add")) or [])
    if sc.get("privileged") is not True and not REQUIRED_CAPS <= caps:
        err(f"neither privileged nor capabilities {sorted(REQUIRED_CAPS)} "
            f"(has {sorted(caps)})")

    res = c.get("resources") or {}
    limit_mem = None
    for what in ("cpu", "memory"):
        req = (res.get("requests") or {}).get(what)
        lim = (res.get("limits") or {}).get(what)
        if req is None or lim is None:
            err(f"resources.requests.{what} and resources.limits.{what} "
                "must both be set")
            continue
        try:
            rq, lm = quantity(req), quantity(lim)
        except ValueError as e:
            err(str(e))
            continue
        if rq > lm:
            err(f"resources: {what} request {req} is above its limit {lim}")
        if what == "memory":
            limit_mem = lm
            if lm >= GPROFILER_MEMORY_REQUEST:
                err(f"memory limit {lim} is not below gProfiler's 256Mi")

    env = {e.get("name"): e for e in c.get("env") or []}
    token = env.get("GPROFILER_TOKEN")
    ref = ((token or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
    if not token or "value" in token or not ref.get("name") or not ref.get("key"):
        err("GPROFILER_TOKEN must come from a Secret (valueFrom.secretKeyRef "
            "with name and key), never a literal value")
    elif ref["name"] in secrets:
        if ref["key"] not in (secrets[ref["name"]].get("data") or {}):
            err(f"the Secret {ref['name']} has no key {ref['key']}")
    if not env.get("GPROFILER_SERVICE_NAME", {}).get("value"):
        err("GPROFILER_SERVICE_NAME has no value")

    volumes = {v.get("name"): v for v in pod.get("volumes") or []}
    mounts = [m for m in c.get("volumeMounts") or []
              if m.get("mountPath") == CONFIG_PATH]
    config_text = None
    if len(mounts) != 1:
        err(f"no volumeMount at {CONFIG_PATH}")
    else:
        m = mounts[0]
        vol = (volumes.get(m.get("name")) or {}).get("configMap") or {}
        key = m.get("subPath")
        if vol.get("name") != cm["metadata"]["name"]:
            err(f"{CONFIG_PATH} is not mounted from the ConfigMap "
                f"{cm['metadata']['name']}")
        elif not key or key not in (cm.get("data") or {}):
            err(f"{CONFIG_PATH} must be a subPath mount of a key of the "
                "ConfigMap (a whole-volume mount makes it a symbolic link)")
        else:
            config_text = cm["data"][key]

    if config_text is not None:
        ini = ini_values(config_text)
        probe = c.get("livenessProbe")
        metrics = ini.get("metrics-address")
        if probe:
            get = probe.get("httpGet") or {}
            if not metrics:
                err("a liveness probe without metrics-address in config.ini")
            elif metrics != f"{get.get('host')}:{get.get('port')}" \
                    or get.get("path") != "/metrics":
                err(f"the liveness probe ({get}) does not read the metrics "
                    f"endpoint {metrics}/metrics")
            if pod.get("hostNetwork") is not True:
                err("the liveness probe reads a loopback endpoint: it needs "
                    "hostNetwork")
        if limit_mem is not None:
            for key in ("perf-rss-limit-mb", "tree-rss-warning-mb",
                        "tree-rss-critical-mb", "tree-rss-emergency-mb"):
                if key not in ini:
                    err(f"config.ini does not set {key} under the memory limit")
                elif int(ini[key]) * 1024 * 1024 >= limit_mem:
                    err(f"{key} = {ini[key]} MB is not below the memory "
                        f"limit {limit_mem / 1024 / 1024:.0f} MiB")
    return errors


def run_agent(agent, docs):
    """The agent reads the ConfigMap's config.ini with the DaemonSet's
    arguments and environment; returns its --print-config JSON."""
    cm = next(d for d in docs if d["kind"] == "ConfigMap")
    ds = next(d for d in docs if d["kind"] == "DaemonSet")
    c = ds["spec"]["template"]["spec"]["containers"][0]
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == CONFIG_PATH)
    with tempfile.TemporaryDirectory() as tmp:
        ini = os.path.join(tmp, "config.ini")
        with open(ini, "w") as f:
            f.write(cm["data"][mount["subPath"]])
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "GPA_DEFAULT_CONFIG": ini,
               "GPROFILER_TOKEN": "test-token"}
        for e in c.get("env", []):
            if "value" in e:
                env[e["name"]] = e["value"]
        argv = [agent] + c.get("command", ["gprofiler-agent"])[1:] \
            + c.get("args", []) + ["--print-config"]
        r = subprocess.run(argv, env=env, capture_output=True, text=True,
                           timeout=30)
    if r.returncode != 0:
        raise AssertionError(f"the agent refused the manifest's configuration "
                             f"(exit {r.returncode}): {r.stderr.strip()}")
    return json.loads(r.stdout)


def check_with_agent(agent, docs):
    errors = []
    cfg = run_agent(agent, docs)
    c = next(d for d in docs if d["kind"] == "DaemonSet")[
        "spec"]["template"]["spec"]["containers"][0]
    expect = {"continuous": True, "upload_results": True, "log_file": "",
              "token": "<redacted>"}
    for k, v in expect.items():
        if cfg.get(k) != v:
            errors.append(f"agent: {k} is {cfg.get(k)!r}, expected {v!r}")
    probe = (c.get("livenessProbe") or {}).get("httpGet")
    if probe and cfg.get("metrics_address") != f"{probe['host']}:{probe['port']}":
        errors.append(f"agent: metrics_address {cfg.get('metrics_address')!r} "
                      f"is not where the probe looks ({probe})")
    for sock in [cfg.get("docker_socket")] + list(cfg.get("cri_socket") or []):
        if sock and not sock.startswith("/proc/1/root/run/"):
            errors.append(f"agent: runtime socket {sock!r} is not under the "
                          "host's /run through /proc/1/root")
    return errors


# -- the Helm chart --------------------------------------------------------

def has_path(values, path):
    node = values
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def check_chart(root, manifest_docs):
    errors = []
    chart_dir = os.path.join(root, CHART)

    def err(msg):
        errors.append(f"{CHART}: {msg}")

    with open(os.path.join(chart_dir, "Chart.yaml")) as f:
        chart = yaml.safe_load(f)
    if chart.get("apiVersion") != "v2":
        err("Chart.yaml: apiVersion must be v2")
    if chart.get("name") != os.path.basename(chart_dir):
        err(f"Chart.yaml: name {chart.get('name')!r} is not the directory's")
    if not re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+(?:[-+].*)?",
                        str(chart.get("version", ""))):
        err(f"Chart.yaml: version {chart.get('version')!r} is not SemVer")
    for field in ("description", "appVersion", "type"):
        if not chart.get(field):
            err(f"Chart.yaml: no {field}")
    with open(os.path.join(chart_dir, "values.yaml")) as f:
        values = yaml.safe_load(f)

    tdir = os.path.join(chart_dir, "templates")
    texts = {}
    for name in sorted(os.listdir(tdir)):
        with open(os.path.join(tdir, name)) as f:
            texts[name] = f.read()
    for need in ("_helpers.tpl", "daemonset.yaml", "configmap.yaml",
                 "serviceaccount.yaml", "secret.yaml", "NOTES.txt"):
        if need not in texts:
            err(f"templates/{need} is missing")
    defined = set()
    for name, text in texts.items():
        defined |= set(re.findall(r'\{\{-?\s*define\s+"([^"]+)"', text))
    for name, text in texts.items():
        actions = re.findall(r"\{\{(.*?)\}\}", text, re.S)
        if text.count("{{") != len(actions) or text.count("}}") != len(actions):
            err(f"templates/{name}: unbalanced {{{{ }}}}")
        depth = 0
        for a in actions:
            a = a.strip("- \t\n")
            word = a.split()[0] if a.split() else ""
            if word in ("if", "with", "range", "define", "block"):
                depth += 1
            elif word == "end":
                depth -= 1
                if depth < 0:
                    err(f"templates/{name}: an end without its block")
        if depth > 0:
            err(f"templates/{name}: {depth} block(s) without end")
        for path in re.findall(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)",
                               text):
            if not has_path(values, path.lstrip(".").split(".")):
                err(f"templates/{name} reads .Values{path}, which "
                    "values.yaml does not have")
        for inc in re.findall(r'(?:include|template)\s+"([^"]+)"', text):
            if inc not in defined:
                err(f"templates/{name} includes {inc!r}, defined nowhere")

    # The chart's defaults are the manifest's.
    ds = next(d for d in manifest_docs if d["kind"] == "DaemonSet")
    c = ds["spec"]["template"]["spec"]["containers"][0]
    ini = ini_values(next(d for d in manifest_docs
                          if d["kind"] == "ConfigMap")["data"]["config.ini"])
    if values.get("resources") != c["resources"]:
        err(f"values.yaml resources {values.get('resources')} differ from "
            f"the manifest's {c['resources']}")
    thresholds = values.get("memoryThresholds", {})
    for vkey, ikey in (("perfRssLimitMb", "perf-rss-limit-mb"),
                       ("treeWarningMb", "tree-rss-warning-mb"),
                       ("treeCriticalMb", "tree-rss-critical-mb"),
                       ("treeEmergencyMb", "tree-rss-emergency-mb")):
        if str(thresholds.get(vkey)) != ini.get(ikey):
            err(f"memoryThresholds.{vkey} {thresholds.get(vkey)} is not the "
                f"manifest's {ikey} {ini.get(ikey)}")
    rt = values.get("containerRuntimes", {})
    chart_args = [f"--docker-socket={rt.get('dockerSocket')}"] + \
        [f"--cri-socket={s}" for s in rt.get("criSockets", [])]
    if chart_args != c.get("args"):
        err(f"containerRuntimes give {chart_args}, the manifest {c.get('args')}")
    if f"127.0.0.1:{values.get('metrics', {}).get('port')}" != \
            ini.get("metrics-address"):
        err("metrics.port is not the manifest's metrics-address port")
    caps = c["securityContext"]["capabilities"]["add"]
    m = re.search(r"capabilities:\s*\n\s*add:\s*\n((?:\s*- [A-Z_]+\s*\n)+)",
                  texts.get("daemonset.yaml", ""))
    chart_caps = re.findall(r"- ([A-Z_]+)", m.group(1)) if m else []
    if chart_caps != caps:
        err(f"the chart's capabilities {chart_caps} differ from the "
            f"manifest's {caps}")
    if values.get("tolerations") != ds["spec"]["template"]["spec"]["tolerations"]:
        err("values.yaml tolerations differ from the manifest's")
    return errors


def helm_render(helm, chart_dir, sets):
    r = subprocess.run([helm, "template", "gpa", chart_dir] + sets,
                       capture_output=True, text=True, timeout=120)
    docs = [d for d in yaml.safe_load_all(r.stdout) if d] \
        if r.returncode == 0 else None
    return r, docs


def check_with_helm(root, helm, agent):
    """helm lint and helm template; the rendered objects are checked like
    the manifest, and read by the agent when it is given."""
    errors = []
    chart_dir = os.path.join(root, CHART)
    cases = {
        "token value": ["--set", "gprofiler.serviceName=svc",
                        "--set", "gprofiler.token=t0k"],
        "existing secret": ["--set", "gprofiler.serviceName=svc",
                            "--set", "gprofiler.existingSecret=my-secret"],
    }
    for what, sets in cases.items():
        r = subprocess.run([helm, "lint", chart_dir] + sets,
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            errors.append(f"helm lint ({what}): {r.stdout}{r.stderr}")
        r, docs = helm_render(helm, chart_dir, sets)
        if docs is None:
            errors.append(f"helm template ({what}): {r.stderr}")
            continue
        errors += check_objects(docs, f"helm template ({what})")
        if agent and not errors:
            errors += [f"helm template ({what}): {e}"
                       for e in check_with_agent(agent, docs)]

    # Pyroscope only, privileged, extra arguments and config lines.
    what = "pyroscope only"
    r, docs = helm_render(helm, chart_dir, [
        "--set", "gprofiler.uploadResults=false",
        "--set", "pyroscope.url=http://pyroscope.monitoring:4040",
        "--set", "pyroscope.tags=cluster=c1",
        "--set", "privileged=true",
        "--set", "gprofiler.extraArgs={--perf-mode=smart}",
        "--set", "gprofiler.extraConfig=profiling-frequency = 7"])
    if docs is None:
        errors.append(f"helm template ({what}): {r.stderr}")
    else:
        kinds = [d["kind"] for d in docs]
        c = next(d for d in docs if d["kind"] == "DaemonSet")[
            "spec"]["template"]["spec"]["containers"][0]
        if "Secret" in kinds or any(e["name"] == "GPROFILER_TOKEN"
                                    for e in c.get("env", [])):
            errors.append(f"helm template ({what}): a token without uploads")
        if c["securityContext"].get("privileged") is not True:
            errors.append(f"helm template ({what}): privileged=true ignored")
        if agent:
            cfg = run_agent(agent, docs)
            expect = {"upload_results": False, "perf_mode": "smart",
                      "profiling_frequency": 7,
                      "pyroscope_url": "http://pyroscope.monitoring:4040",
                      "pyroscope_tags": "cluster=c1"}
            for k, v in expect.items():
                if cfg.get(k) != v:
                    errors.append(f"helm template ({what}): the agent reads "
                                  f"{k} = {cfg.get(k)!r}, expected {v!r}")

    # Uploads without a token or a service name: the chart refuses.
    refusals = {
        "no token": (["--set", "gprofiler.serviceName=svc"],
                     "set gprofiler.existingSecret"),
        "no service name": (["--set", "gprofiler.token=t"],
                            "set gprofiler.serviceName"),
    }
    for what, (sets, message) in refusals.items():
        r, docs = helm_render(helm, chart_dir, sets)
        if docs is not None or message not in r.stderr:
            errors.append(f"helm template with {what} did not fail with "
                          f"{message!r}: {r.stderr.strip()}")
    return errors


# -- broken copies: each check must catch its mistake ----------------------

def pod_of(docs):
    return next(d for d in docs if d["kind"] == "DaemonSet")["spec"]["template"]


def container_of(docs):
    return pod_of(docs)["spec"]["containers"][0]


def breakages():
    def set_(getter, key, value):
        def f(docs):
            getter(docs)[key] = value
        return f

    def del_(getter, key):
        def f(docs):
            del getter(docs)[key]
        return f

    def limits(docs):
        return container_of(docs)["resources"]["limits"]

    def requests(docs):
        return container_of(docs)["resources"]["requests"]

    def sc(docs):
        return container_of(docs)["securityContext"]

    def token_literal(docs):
        for e in container_of(docs)["env"]:
            if e["name"] == "GPROFILER_TOKEN":
                e.pop("valueFrom")
                e["value"] = "secret"

    def mount_dir(docs):
        for m in container_of(docs)["volumeMounts"]:
            if m["mountPath"] == CONFIG_PATH:
                m.pop("subPath")

    def probe_port(docs):
        container_of(docs)["livenessProbe"]["httpGet"]["port"] = 9999

    def namespaced(docs):
        docs[0]["metadata"]["namespace"] = "default"

    def threshold(docs):
        cm = next(d for d in docs if d["kind"] == "ConfigMap")
        cm["data"]["config.ini"] = cm["data"]["config.ini"].replace(
            "tree-rss-emergency-mb = ", "tree-rss-emergency-mb = 9")

    def selector(docs):
        pod_of(docs)["metadata"]["labels"] = {"app": "other"}

    return {
        "no hostPID": del_(lambda d: pod_of(d)["spec"], "hostPID"),
        "selector mismatch": selector,
        "memory limit 1Gi": set_(limits, "memory", "1Gi"),
        "request above limit": set_(requests, "cpu", "2"),
        "no capabilities": del_(sc, "capabilities"),
        "literal token": token_literal,
        "config as a whole volume": mount_dir,
        "probe elsewhere": probe_port,
        "namespaced object": namespaced,
        "threshold above the limit": threshold,
        "no image": del_(container_of, "image"),
    }


CHART_BREAKAGES = {
    "a value values.yaml lacks": ("templates/daemonset.yaml", "\n{{ .Values.nope.x }}\n"),
    "an undefined template": ("templates/configmap.yaml", '\n{{ include "gprofiler-agent.nope" . }}\n'),
    "an if without end": ("templates/secret.yaml", "\n{{- if .Values.hostNetwork }}\n"),
    "a capability only in the chart": ("templates/daemonset.yaml", None),
}


def self_check_chart(root, docs):
    """The chart's checks must reject broken copies of the chart."""
    errors = []
    for name, (rel, extra) in CHART_BREAKAGES.items():
        with tempfile.TemporaryDirectory() as tmp:
            copy_dir = os.path.join(tmp, CHART)
            shutil.copytree(os.path.join(root, CHART), copy_dir)
            path = os.path.join(copy_dir, rel)
            with open(path) as f:
                text = f.read()
            if extra is None:
                text = text.replace("- SYS_PTRACE\n", "- SYS_PTRACE\n                - NET_ADMIN\n")
            else:
                text += extra
            with open(path, "w") as f:
                f.write(text)
            if not check_chart(tmp, docs):
                errors.append(f"self-check: the chart's checks accept {name}")
    print(f"self-check: {len(CHART_BREAKAGES)} broken charts")
    return errors


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__)
        return 2
    root = args[0]
    agent = args[args.index("--agent") + 1] if "--agent" in args else None
    with open(os.path.join(root, MANIFEST)) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]

    errors = check_objects(docs, MANIFEST)
    print(f"manifest: {len(docs)} objects checked")
    for name, breaking in breakages().items():
        broken = copy.deepcopy(docs)
        breaking(broken)
        if not check_objects(broken, name):
            errors.append(f"self-check: the checks accept a manifest with "
                          f"'{name}'")
    print(f"self-check: {len(breakages())} broken manifests")

    if agent:
        errors += check_with_agent(agent, docs)
        print(f"agent: {agent} accepts the manifest's configuration")
    else:
        print("agent: not given (--agent), its reading of config.ini not checked")

    errors += check_chart(root, docs)
    print("chart: Chart.yaml, values.yaml and templates checked")
    errors += self_check_chart(root, docs)
    helm = shutil.which("helm")
    if helm:
        errors += check_with_helm(root, helm, agent)
        print(f"chart: helm lint and helm template ({helm}) checked")
    else:
        print("chart: SKIPPED helm lint / helm template: helm is not on PATH "
              "(not in Debian); run them where helm exists (docs/operations.md)")

    for e in errors:
        print("FAIL:", e)
    if errors:
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Lists every command-line flag of gProfiler's agent, read from its source.

Reads gprofiler/main.py (parse_cmd_args: parser.add_argument and the
argument groups) and each profiler's register_profiler(...) call in
gprofiler/profilers/*.py (the generated --<name>-mode / --no-<name> flags
and profiler_arguments=[ProfilerArgument(...)]) from a git mirror of
intel/gprofiler, without importing it, and prints them as JSON: the fixture
test/config/gprofiler_flags.json.

  scripts/extract-gprofiler-flags.py [GIT_DIR] > test/config/gprofiler_flags.json

GIT_DIR defaults to /work/.mirror/intel+gprofiler/repo.
"""

import ast
import json
import subprocess
import sys

GIT = sys.argv[1] if len(sys.argv) > 1 else "/work/.mirror/intel+gprofiler/repo"

# Subcommand-only options (upload-file, extract-resources) are not flags of
# the agent itself.
SUBPARSERS = {"upload_file", "extract_resources"}


def source(path):
    return subprocess.run(
        ["git", "-C", GIT, "show", "HEAD:" + path],
        check=True, capture_output=True, text=True).stdout


def module_path(module):
    return module.replace(".", "/") + ".py"


class Module:
    cache = {}

    def __init__(self, path):
        self.path = path
        self.tree = ast.parse(source(path))
        self.assigns = {}
        self.imports = {}
        for node in self.tree.body:
            if isinstance(node, ast.Assign):
                for t in node.targets:
                    if isinstance(t, ast.Name):
                        self.assigns[t.id] = node.value
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                self.assigns[node.target.id] = node.value
            elif isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    self.imports[a.asname or a.name] = node.module

    @classmethod
    def load(cls, path):
        if path not in cls.cache:
            cls.cache[path] = Module(path)
        return cls.cache[path]

    def value(self, node):
        """The literal value of `node`, resolving module constants."""
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.value(e) for e in node.elts]
        if isinstance(node, ast.Name):
            if node.id in self.assigns:
                return self.value(self.assigns[node.id])
            if node.id in self.imports:
                try:
                    return Module.load(module_path(self.imports[node.id])).value(node)
                except subprocess.CalledProcessError:
                    pass
            return {"expr": node.id}
        if isinstance(node, ast.BinOp):
            left, right = self.value(node.left), self.value(node.right)
            if isinstance(left, (int, str)) and isinstance(right, (int, str)):
                ops = {ast.Mult: lambda a, b: a * b, ast.Add: lambda a, b: a + b,
                       ast.Sub: lambda a, b: a - b, ast.LShift: lambda a, b: a << b}
                if type(node.op) in ops:
                    return ops[type(node.op)](left, right)
        if isinstance(node, ast.JoinedStr):
            return "".join(str(self.value(v.value)) if isinstance(v, ast.FormattedValue)
                           else str(v.value) for v in node.values)
        return {"expr": ast.unparse(node)}


# Values the resolver cannot compute (class attributes, enum members,
# run-time expressions), read by hand from the same source.
RESOLVED = {
    "datetime.timedelta(seconds=60).seconds": 60,
    "'/var/log/gprofiler/gprofiler.log' if is_linux() else './gprofiler.log'":
        "/var/log/gprofiler/gprofiler.log",
    "os.getenv('GPROFILER_DONT_SEND_LOGS', None) is None": True,
    "list()": [],
    "SUPPORTED_AP_MODES + ['auto']": ["cpu", "itimer", "alloc", "auto"],
    "AsyncProfilerFeatures.probe_sp.value": "probesp",
    "AsyncProfilerFeatures.vtable_target.value": "vtable",
    "','.join(JAVA_SAFEMODE_DEFAULT_OPTIONS)": "profiled-oom,profiled-signaled,hserr",
    "AsyncProfiledProcess._DEFAULT_JATTACH_TIMEOUT": 30,
    "AsyncProfiledProcess._DEFAULT_MCACHE": 30,
    "JavaFlagCollectionOptions.DEFAULT.value": "default",
}

# gProfiler's argument types as (kind, min, max): ranges are inclusive.
TYPES = {
    None: ("str", None, None),
    "str": ("str", None, None),
    "int": ("int", None, None),
    "positive_integer": ("int", 1, None),
    "nonnegative_integer": ("int", 0, None),
    "integers_list": ("int_list", None, None),
    "integer_range(0, 64)": ("int", 0, 63),
    "integer_range(0, 256)": ("int", 0, 255),
    "functools.partial(comma_separated_enum_list, SUPPORTED_AP_FEATURES)":
        ("enum_list", None, None),
}


def resolved(value):
    if isinstance(value, dict) and "expr" in value:
        if value["expr"] not in RESOLVED:
            raise SystemExit("cannot resolve " + value["expr"])
        return RESOLVED[value["expr"]]
    if isinstance(value, list):
        return [resolved(v) for v in value]
    return value


def kwargs(mod, call):
    return {k.arg: k.value for k in call.keywords if k.arg}


def flag_entry(mod, names, kw, group):
    entry = {"names": names, "group": group}
    for key in ("dest", "action", "default", "choices", "const", "nargs", "metavar"):
        if key in kw:
            entry[key] = mod.value(kw[key])
    if "type" in kw:
        t = kw["type"]
        entry["type"] = ast.unparse(t)
    if "help" in kw:
        h = mod.value(kw["help"])
        entry["help"] = h if isinstance(h, str) else h.get("expr")
    long = next(n for n in names if n.startswith("--"))
    entry.setdefault("dest", long[2:].replace("-", "_"))
    action = entry.get("action", "store")
    if action in ("store_true", "store_false", "store_const", "version"):
        entry["takes_value"] = False
    else:
        entry["takes_value"] = True
    if "default" not in entry:
        entry["default"] = {"store_true": False, "store_false": True}.get(action)
    entry["deprecated"] = "deprecated" in (entry.get("help") or "").lower()
    return entry


def main_flags():
    mod = Module.load("gprofiler/main.py")
    func = next(n for n in ast.walk(mod.tree)
                if isinstance(n, ast.FunctionDef) and n.name == "parse_cmd_args")
    groups = {"parser": "general"}
    flags = []
    # Walk statements in order: the loop over [parser, upload_file] adds the
    # connectivity group to both; the agent's are the parser's.
    for node in ast.walk(func):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            call = node.value
            if isinstance(call.func, ast.Attribute) and call.func.attr == "add_argument_group":
                groups[node.targets[0].id] = mod.value(call.args[0])
    for node in ast.walk(func):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "add_argument"):
            continue
        owner = node.func.value.id
        if owner in SUBPARSERS:
            continue
        names = [mod.value(a) for a in node.args]
        flags.append(flag_entry(mod, names, kwargs(mod, node), groups.get(owner, owner)))
    return flags, func.lineno


def profiler_flags():
    init = Module.load("gprofiler/profilers/__init__.py")
    order = []
    for node in ast.walk(init.tree):
        if isinstance(node, ast.ImportFrom) and node.module.startswith("gprofiler.profilers."):
            order.append(node.module)
    flags = []
    for module in order:
        mod = Module.load(module_path(module))
        for node in ast.walk(mod.tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "register_profiler"):
                continue
            kw = kwargs(mod, node)
            name = mod.value(node.args[0]) if node.args else mod.value(kw["profiler_name"])
            low = name.lower()
            modes = mod.value(kw["possible_modes"]) + ["none"]  # registry adds "none"
            default = mod.value(kw["default_mode"]) if "default_mode" in kw else "enabled"
            flags.append({"names": [f"--{low}-mode"], "group": name, "dest": f"{low}_mode",
                          "default": default, "choices": modes, "takes_value": True,
                          "deprecated": False, "type": None})
            flags.append({"names": [f"--no-{low}"], "group": name, "dest": f"{low}_mode",
                          "action": "store_const", "const": "disabled", "default": True,
                          "takes_value": False, "deprecated": False})
            for arg in kw.get("profiler_arguments", ast.List(elts=[])).elts:
                akw = kwargs(mod, arg)
                names = [mod.value(a) for a in arg.args]
                if "name" in akw:
                    names.insert(0, mod.value(akw.pop("name")))
                flags.append(flag_entry(mod, names, akw, name))
    return flags


def main():
    commit = subprocess.run(["git", "-C", GIT, "rev-parse", "HEAD"], check=True,
                            capture_output=True, text=True).stdout.strip()
    flags, _ = main_flags()
    flags += profiler_flags()
    # argparse's own.
    flags.append({"names": ["-h", "--help"], "group": "general", "dest": "help",
                  "action": "help", "default": None, "takes_value": False,
                  "deprecated": False})
    for f in flags:
        f.pop("help", None)
        f.pop("metavar", None)
        for key in ("default", "choices", "const"):
            if key in f:
                f[key] = resolved(f[key])
        if f["takes_value"]:
            kind, lo, hi = TYPES[f.get("type")]
            if "choices" in f:
                kind = "choice"
            if f["names"] == ["--java-async-profiler-features"]:
                f["choices"] = ["probesp", "vtable", "comptask"]
            f["kind"] = kind
            if lo is not None:
                f["min"] = lo
            if hi is not None:
                f["max"] = hi
        else:
            f["kind"] = "flag"
        f.pop("type", None)
        f.setdefault("action", "store")
    out = {"source": "https://github.com/intel/gprofiler", "commit": commit,
           "note": "Generated by scripts/extract-gprofiler-flags.py; flags of "
                   "the agent (not of its upload-file/extract-resources "
                   "subcommands). hardware-metrics flags exist on x86_64 only.",
           "flags": flags}
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


main()

#!/usr/bin/env python3
"""gProfiler's rules for the package versions of Python frames, computed the
way gProfiler computes them (pkg_resources, re, csv, email, pathlib), for the
differential tests of runtime/python_packages
(test/runtime/python_packages_test.cpp).

    python_packages_oracle.py tree DIR/
        DIR/ is a packages directory (ending with '/'). Prints JSON
        {file: [name, version]}: every .py file that a distribution in DIR
        names, keyed os.path.join(DIR, entry) as gProfiler's
        _get_packages_files keys them.

    python_packages_oracle.py rules IN.json
        IN.json holds {"stacks": [...], "paths": [...], "versions": [...]}.
        Prints {"stacks": [...], "stdlib": [...], "packages_dir": [...],
        "versions": [...], "pathlib": [...]}: the stacks rewritten by
        gProfiler's frame pattern with a lookup that knows a file when it
        has a 'k' in it (as ("pkg", "1.0")); for each path whether it is in
        the standard library, its packages directory ("" for none) and
        str(pathlib.PurePosixPath(path)); each version as safe_version
        writes it.

Where the agent knowingly differs from gProfiler, this script follows the
agent, and says so: a distribution whose metadata cannot be read, has no
version or a name or version with a ';' or a control character in it, is
left out alone (gProfiler's lookup raises and loses every file of the
process), an empty RECORD row is skipped (gProfiler raises IndexError), and
only .py files of at most 4096 bytes are kept (no stack names another).
"""

import csv
import email.parser
import json
import os
import pathlib
import re
import sys
import warnings

warnings.simplefilter("ignore")
import pkg_resources  # noqa: E402  (after the warnings filter)

FRAME = re.compile(r"\((?P<module_info>(?P<filename>[^\)]+?\.py):\d+)\)")
STDLIB = re.compile(r"/python\d\.\d\d?/(?!.*(site|dist)-packages)")


def sane(label, limit):
    return (
        0 < len(label) <= limit
        and all(0x20 <= ord(c) <= 0x7E for c in label)
        and ";" not in label
    )


def headers(dist):
    if isinstance(dist, pkg_resources.DistInfoDistribution) and dist.has_metadata(
        "METADATA"
    ):
        text = dist.get_metadata("METADATA")
    elif dist.has_metadata("PKG-INFO"):
        text = dist.get_metadata("PKG-INFO")
    else:
        return {}
    parser = email.parser.FeedParser()
    parser.feed(text)
    return dict(parser.close())


def from_legacy(entry, info):
    # pip's _convert_legacy_entry: each leading ".." takes a part off the
    # egg-info directory's path, or adds ".." when there is none left.
    while entry and entry[0] == "..":
        if not info or info[-1] == "..":
            info += ("..",)
        else:
            info = info[:-1]
        entry = entry[1:]
    return str(pathlib.Path(*info, *entry))


def files(dist):
    try:
        text = dist.get_metadata("RECORD")
    except (FileNotFoundError, KeyError):
        text = None
    if text is not None:
        return [str(pathlib.Path(row[0])) for row in csv.reader(text.splitlines()) if row]
    try:
        text = dist.get_metadata("installed-files.txt")
    except (FileNotFoundError, KeyError):
        return None
    paths = [p for p in text.splitlines() if p]
    info = pathlib.Path(dist.egg_info).relative_to(dist.location).parts
    return [from_legacy(pathlib.Path(p).parts, info) for p in paths]


def tree(packages_dir):
    # As gProfiler does: no normalization of the directory's path.
    pkg_resources._normalize_cached = lambda path: path
    result = {}
    for dist in pkg_resources.find_distributions(packages_dir):
        try:
            entries = files(dist)
            if entries is None:
                continue
            meta = headers(dist)
            if not meta:
                continue
            name = meta.get("Name", dist.project_name)
            version = dist.version
        except Exception:
            continue
        if not isinstance(name, str) or not sane(name, 200) or not sane(version, 128):
            continue
        for entry in entries:
            if entry.endswith(".py") and len(entry) <= 4096:
                result[os.path.join(packages_dir, entry)] = [name, version]
    return result


def packages_dir(path):
    if not path.startswith("/"):
        return ""
    head, sep, _ = path.rpartition("/site-packages/")
    if sep == "":
        head, sep, _ = path.rpartition("/dist-packages/")
    return head + sep


def rules(spec):
    def known(match):
        if "k" in match.group("filename"):
            return "({} [pkg==1.0])".format(match.group("module_info"))
        return match.group()

    return {
        "stacks": [FRAME.sub(known, s) for s in spec["stacks"]],
        "stdlib": [STDLIB.search(p) is not None for p in spec["paths"]],
        "packages_dir": [packages_dir(p) for p in spec["paths"]],
        "pathlib": [str(pathlib.PurePosixPath(p)) for p in spec["paths"]],
        "versions": [pkg_resources.safe_version(v) for v in spec["versions"]],
    }


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "tree":
        out = tree(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "rules":
        with open(sys.argv[2]) as f:
            out = rules(json.load(f))
    else:
        sys.exit("usage: python_packages_oracle.py tree DIR/ | rules IN.json")
    json.dump(out, sys.stdout, sort_keys=True)


if __name__ == "__main__":
    main()

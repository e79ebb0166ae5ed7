#!/usr/bin/env python3
"""Checks the layering rule of the source tree: a folder includes project
headers only from itself and from the folders below it. Exits 1, naming each
file, line and include that breaks the rule; 0 when none does.

Usage: check-layers.py [REPO]   (default: the repository holding this script)

The layers, lowest first (docs/architecture.md explains them):

    format    pure transforms: .col, folded, perf script, flame graph (no CAF)
    config    options, defaults, the option table, loading
    runtime   every OS effect behind an interface, error codes
    messages  the typed CAF protocols between actors
    upload    the Studio and Pyroscope protocols over runtime's HTTP client
    actors    the actors, and nothing else
    app       main, the subcommands, the one wiring function
"""
import os
import re
import sys

# Which project folders each folder may include from (itself included).
ALLOWED = {
    "format": {"format"},
    "config": {"config", "format"},
    "runtime": {"runtime", "config", "format"},
    "messages": {"messages", "runtime", "config", "format"},
    "upload": {"upload", "runtime", "config", "format"},
    "actors": {"actors", "messages", "upload", "runtime", "config", "format"},
    "app": {"app", "actors", "messages", "upload", "runtime", "config", "format"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"/]+)/')
SOURCES = (".hpp", ".cpp", ".h", ".cc", ".in")


def check(repo):
    problems = []
    for layer, allowed in ALLOWED.items():
        top = os.path.join(repo, layer)
        for root, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if d != "node_modules"]
            for name in sorted(files):
                if not name.endswith(SOURCES):
                    continue
                path = os.path.join(root, name)
                with open(path, encoding="utf-8", errors="replace") as f:
                    for n, line in enumerate(f, start=1):
                        m = INCLUDE.match(line)
                        if m and m.group(1) in ALLOWED and m.group(1) not in allowed:
                            rel = os.path.relpath(path, repo)
                            problems.append(
                                f"{rel}:{n}: {layer}/ must not include from "
                                f"{m.group(1)}/ (it is above {layer}/): {line.strip()}")
    return problems


def main():
    repo = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))
    problems = check(repo)
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} include(s) break the layering rule "
              "(see docs/architecture.md)")
        return 1
    print("layering: every include goes downwards")
    return 0


if __name__ == "__main__":
    sys.exit(main())

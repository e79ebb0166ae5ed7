#!/usr/bin/env python3
"""Replaces the last code block of docs/configuration.md (under "## Every
option") with the agent's current --help, which cli_test.py checks.

Usage: scripts/regen-help-doc.py [AGENT]   (default: build/gprofiler-agent)
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
agent = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "gprofiler-agent")
env = {k: v for k, v in os.environ.items() if not k.startswith("GPROFILER_")}
env["GPA_DEFAULT_CONFIG"] = ""
help_text = subprocess.run([agent, "--help"], check=True, capture_output=True, text=True,
                           env=env).stdout
path = os.path.join(ROOT, "docs", "configuration.md")
with open(path) as f:
    doc = f.read()
head, sep, rest = doc.partition("## Every option")
if not sep:
    sys.exit(f"{path}: no '## Every option' section")
start = rest.rindex("```\n", 0, rest.rindex("```"))
end = rest.rindex("```")
rest = rest[:start] + "```\n" + help_text + rest[end:]
with open(path, "w") as f:
    f.write(head + sep + rest)

#!/usr/bin/env python3
"""The layering check itself: it passes on a tree whose includes all go
downwards and fails, naming file, line and include, on a planted upward
include (runtime/ including from actors/, format/ from messages/).

Usage: check_layers_test.py /path/to/scripts/check-layers.py
"""
import os
import subprocess
import sys
import tempfile
import unittest

SCRIPT = None


def tree(files):
    root = tempfile.mkdtemp(prefix="gpa-layers-")
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    return root


def run(root):
    return subprocess.run([sys.executable, SCRIPT, root], capture_output=True, text=True)


class Layers(unittest.TestCase):
    def test_downward_includes_pass(self):
        root = tree({
            "format/a.hpp": "#pragma once\n",
            "runtime/b.cpp": '#include "format/a.hpp"\n#include "config/options.hpp"\n',
            "actors/c.cpp": '#include "messages/x.hpp"\n#include "upload/y.hpp"\n',
            "app/main.cpp": '#include "actors/c.hpp"\n#include <caf/all.hpp>\n',
        })
        r = run(root)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_planted_upward_include_fails(self):
        root = tree({
            "runtime/b.cpp": '#include "format/a.hpp"\n\n#include "actors/uploader.hpp"\n',
            "format/a.hpp": '#pragma once\n#include "messages/profile.hpp"\n',
        })
        r = run(root)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("runtime/b.cpp:3: runtime/ must not include from actors/", r.stdout)
        self.assertIn("format/a.hpp:2: format/ must not include from messages/", r.stdout)
        self.assertIn("2 include(s) break the layering rule", r.stdout)


if __name__ == "__main__":
    SCRIPT = sys.argv.pop(1)
    unittest.main()

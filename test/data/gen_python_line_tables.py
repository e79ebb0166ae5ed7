"""Writes python_line_tables.json: the line tables of a real code object as
each interpreter compiles it, with the line that interpreter gives each
instruction, for the reader's decoder tests (test/runtime/
python_reader_test.cpp, suite python_line_tables).

Usage: for each interpreter: python3.X gen_python_line_tables.py OUT.json
(appends this interpreter's entry to OUT.json).
"""
import dis
import json
import os
import sys

SOURCE = '''
def sample(n):
    total = 0
    for i in range(n):
        if i % 3 == 0:
            total += i
        else:
            total -= 1
    values = [x * 2
              for x in range(n)]
''' + "\n" * 300 + '''
    total += len(values)
    try:
        total //= n
    except ZeroDivisionError:
        total = -1
    return total
'''


def expected(code):
    size = len(code.co_code)
    lines = {}
    if hasattr(code, "co_lines"):
        for start, end, line in code.co_lines():
            for off in range(start, end, 2):
                lines[off] = line if line is not None else 0
    else:
        starts = list(dis.findlinestarts(code))
        for off in range(0, size, 2):
            line = code.co_firstlineno
            for s, l in starts:
                if s <= off:
                    line = l
            lines[off] = line
    return [[off, lines.get(off, 0)] for off in range(0, size, 2)]


def main():
    ns = {}
    exec(compile(SOURCE, "sample.py", "exec"), ns)
    code = ns["sample"].__code__
    table = code.co_linetable if hasattr(code, "co_linetable") else code.co_lnotab
    entry = {
        "version": "%d.%d" % sys.version_info[:2],
        "first_line": code.co_firstlineno,
        "table": table.hex(),
        "lines": expected(code),
    }
    out = sys.argv[1]
    data = []
    if os.path.exists(out):
        with open(out) as f:
            data = json.load(f)
    data = [d for d in data if d["version"] != entry["version"]]
    data.append(entry)
    data.sort(key=lambda d: [int(x) for x in d["version"].split(".")])
    with open(out, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()

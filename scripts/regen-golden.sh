#!/usr/bin/env bash
# Regenerates the golden files of the collapse tests from the current binary:
# test/data/perf/NAME.txt -> test/data/perf/NAME.expected
# (`gprofiler-agent collapse-perf NAME.txt`). Review the diff before
# committing: a changed .expected is a changed output format.
#
#   scripts/regen-golden.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${GPA_BUILD:-$ROOT/build}"
source "$ROOT/scripts/common.sh"
gpa_build gprofiler-agent

for sample in "$ROOT"/test/data/perf/*.txt; do
  expected="${sample%.txt}.expected"
  "$BUILD/gprofiler-agent" collapse-perf "$sample" >"$expected.tmp"
  mv "$expected.tmp" "$expected"
  echo "$(basename "$expected"): $(wc -l <"$expected") stacks" >&2
done

#!/usr/bin/env bash
# CLI test of `gprofiler-agent flamegraph FILE`: a page on stdout for a .col,
# a folded file and stdin; exit 1 with one clear line for a missing,
# unreadable or directory argument; exit 2 without a file.
#   flamegraph_cli_test.sh <gprofiler-agent> <fixture.col>
set -u
agent="$1"
fixture="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

check() { # check NAME CONDITION...
  local name="$1"
  shift
  if "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: $name" >&2
  fi
}

# A .col renders to one page whose data totals the fixture's valid lines.
"$agent" flamegraph "$fixture" >"$tmp/page.html" 2>"$tmp/err"
check ".col exits 0" test $? -eq 0
check ".col page starts with a doctype" grep -q '^<!DOCTYPE html>' "$tmp/page.html"
want=$(grep -E '^[0-9]+;[^;]*;.+ [0-9]+$' "$fixture" | awk '{s += $NF} END {print s}')
check ".col total is $want" grep -q "\"total\":$want," "$tmp/page.html"
check ".col warns about its malformed lines" grep -q 'malformed lines skipped' "$tmp/err"

# Folded text from stdin ("-").
printf 'app;main;work 7\napp;main;idle 3\n' | "$agent" flamegraph - >"$tmp/stdin.html"
check "stdin exits 0" test $? -eq 0
check "stdin total is 10" grep -q '"total":10,' "$tmp/stdin.html"
check "stdin is folded" grep -q '"format":"folded"' "$tmp/stdin.html"

# Failures: status 1 (2 for usage) and one line naming the file and reason.
"$agent" flamegraph "$tmp/missing.col" >"$tmp/out" 2>"$tmp/err"
check "missing file exits 1" test $? -eq 1
check "missing file is named" grep -q "cannot read '$tmp/missing.col': No such file" "$tmp/err"
check "missing file writes nothing" test ! -s "$tmp/out"

"$agent" flamegraph "$tmp" >"$tmp/out" 2>"$tmp/err"
check "directory exits 1" test $? -eq 1
check "directory is named" grep -q "is a directory" "$tmp/err"

if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
  cp "$fixture" "$tmp/secret.col"
  chmod 600 "$tmp/secret.col"
  chmod 755 "$tmp"
  # A copy of the agent, so that the checkout need not be open to others.
  cp "$agent" "$tmp/agent"
  setpriv --reuid=65534 --regid=65534 --clear-groups \
    "$tmp/agent" flamegraph "$tmp/secret.col" >"$tmp/out" 2>"$tmp/err"
  check "unreadable file exits 1" test $? -eq 1
  check "unreadable file says why" grep -q "Permission denied" "$tmp/err"
fi

"$agent" flamegraph >"$tmp/out" 2>"$tmp/err"
check "no file exits 2" test $? -eq 2

echo "$passed passed, $failed failed"
test "$failed" -eq 0

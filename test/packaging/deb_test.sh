#!/usr/bin/env bash
# The Debian package, as root, on this machine: built from the build tree
# with cpack, installed, upgraded over itself with an edited config file,
# removed and purged, with dpkg as an admin would. Leaves nothing installed,
# even when a check fails.
#   deb_test.sh <build dir> <version> <cpack>
# Exits 77 (skipped) without root or dpkg, and when the package or an
# /etc/gprofiler/config.ini of someone else (gProfiler's) is on the machine
# already: the test would replace them.
set -u
build="$1"
version="$2"
cpack="$3"
pkg=gprofiler-agent
unit=/usr/lib/systemd/system/gprofiler-agent.service
config=/etc/gprofiler/config.ini
# The agent's own directories, which a purge deletes: kept aside meanwhile.
own_dirs=(/var/log/gprofiler /var/spool/gprofiler-agent)

if [ "$(id -u)" -ne 0 ] || ! command -v dpkg >/dev/null; then
  echo "SKIP: needs root and dpkg" >&2
  exit 77
fi
if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -qv "not-installed"; then
  echo "SKIP: $pkg is installed on this machine (or its config files are)" >&2
  exit 77
fi
if [ -e "$config" ]; then
  echo "SKIP: $config exists (not from this package)" >&2
  exit 77
fi

tmp="$(mktemp -d)"
cleanup() {
  if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -qv "not-installed"; then
    dpkg --purge "$pkg" >/dev/null 2>&1 || echo "cleanup: dpkg --purge $pkg failed" >&2
  fi
  local i
  for i in "${!own_dirs[@]}"; do
    if [ -e "$tmp/saved.$i" ]; then
      rm -rf "${own_dirs[$i]}"
      mv "$tmp/saved.$i" "${own_dirs[$i]}"
    fi
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
for i in "${!own_dirs[@]}"; do
  if [ -e "${own_dirs[$i]}" ]; then
    mv "${own_dirs[$i]}" "$tmp/saved.$i"
  fi
done

passed=0
failed=0
check() { # check NAME COMMAND...
  local name="$1"
  shift
  if "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: $name" >&2
    return 1
  fi
}
installed() { dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; }
config_files_only() { dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "deinstall ok config-files"; }
not_known() { ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -qv "not-installed"; }

# -- the package as built --------------------------------------------------------
"$cpack" -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/out" >"$tmp/cpack.log" 2>&1
check "cpack exits 0" test $? -eq 0 || cat "$tmp/cpack.log" >&2
deb="$tmp/out/${pkg}_${version}_$(dpkg --print-architecture).deb"
if [ ! -f "$deb" ]; then
  echo "FAIL: no $deb; cpack made: $(ls "$tmp/out")" >&2
  exit 1
fi
dpkg-deb -f "$deb" Package Version Depends Recommends >"$tmp/control"
check "control: Package" grep -qx "Package: $pkg" "$tmp/control"
check "control: Version $version" grep -qx "Version: $version" "$tmp/control"
# dpkg-shlibdeps found the libraries the binary links.
check "control: Depends libc6 and CAF" grep -Eq '^Depends: .*libc6.*libcaf-core' "$tmp/control"
check "control: Recommends linux-perf" grep -qx "Recommends: linux-perf" "$tmp/control"
dpkg-deb --ctrl-tarfile "$deb" | tar -x -C "$tmp" --one-top-level=ctrl
check "conffiles lists $config" grep -qx "$config" "$tmp/ctrl/conffiles"
for s in postinst prerm postrm; do
  check "$s is executable" test -x "$tmp/ctrl/$s"
done
dpkg-deb -c "$deb" >"$tmp/contents"
check "nothing under /usr/etc" bash -c "! grep -q ' \./usr/etc' '$tmp/contents'"

# -- installed ---------------------------------------------------------------------
dpkg -i "$deb" >"$tmp/dpkg.log" 2>&1
check "dpkg -i exits 0" test $? -eq 0 || cat "$tmp/dpkg.log" >&2
check "installed" installed
check "/usr/bin/gprofiler-agent is executable" test -x /usr/bin/gprofiler-agent
check "unit at $unit" test -f "$unit"
check "config at $config" test -f "$config"
check "docs" test -f /usr/share/doc/gprofiler-agent/deploy.md
if compgen -G "$build/node/*.node" >/dev/null; then
  check "Node.js addon next to the binary" \
    compgen -G "/usr/lib/gprofiler-agent/node/gpa-node-perfmap-*.node"
fi
check "--version from /usr/bin" \
  test "$(/usr/bin/gprofiler-agent --version)" = "gprofiler-agent $version"
# The installed binary reads the installed default file (the tests' empty
# GPA_DEFAULT_CONFIG would turn that off), and the shipped file parses.
env -u GPA_DEFAULT_CONFIG /usr/bin/gprofiler-agent --print-config >"$tmp/print1" 2>&1
check "--print-config with the shipped config exits 0" test $? -eq 0 || cat "$tmp/print1" >&2
check "shipped config keeps the defaults" grep -q '"profiling_frequency": 11,' "$tmp/print1"
systemd-analyze verify "$unit" >"$tmp/verify" 2>&1
check "systemd-analyze verify $unit" test $? -eq 0 || cat "$tmp/verify" >&2

# -- an edited config survives an upgrade ----------------------------------------
echo "profiling-frequency = 23" >>"$config"
dpkg -i "$deb" >"$tmp/dpkg2.log" 2>&1 </dev/null
check "dpkg -i again exits 0" test $? -eq 0 || cat "$tmp/dpkg2.log" >&2
check "installed after the upgrade" installed
check "edit kept by the upgrade" grep -qx "profiling-frequency = 23" "$config"
env -u GPA_DEFAULT_CONFIG /usr/bin/gprofiler-agent --print-config >"$tmp/print2" 2>&1
check "the agent reads the edited config" grep -q '"profiling_frequency": 23,' "$tmp/print2"

# -- removed: config and the agent's files stay --------------------------------------
mkdir -p /var/log/gprofiler /var/spool/gprofiler-agent
echo "a log line" >/var/log/gprofiler/gprofiler.log
dpkg -r "$pkg" >"$tmp/dpkg3.log" 2>&1
check "dpkg -r exits 0" test $? -eq 0 || cat "$tmp/dpkg3.log" >&2
check "config-files state" config_files_only
check "binary gone" test ! -e /usr/bin/gprofiler-agent
check "unit gone" test ! -e "$unit"
check "addon directory gone" test ! -e /usr/lib/gprofiler-agent
check "edited config kept by remove" grep -qx "profiling-frequency = 23" "$config"
check "log kept by remove" test -f /var/log/gprofiler/gprofiler.log

# -- purged: nothing left -------------------------------------------------------------
dpkg -P "$pkg" >"$tmp/dpkg4.log" 2>&1
check "dpkg -P exits 0" test $? -eq 0 || cat "$tmp/dpkg4.log" >&2
check "unknown to dpkg" not_known
check "config gone" test ! -e "$config"
check "/etc/gprofiler gone" test ! -e /etc/gprofiler
check "log directory gone" test ! -e /var/log/gprofiler
check "spool gone" test ! -e /var/spool/gprofiler-agent

echo "deb_test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

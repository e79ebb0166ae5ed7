# Shared by scripts/run-agent.sh and scripts/test.sh: install what is missing
# (Debian 12, as root), then configure and build incrementally in build/.
# Source it; do not run it.

set -euo pipefail

GPA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GPA_BUILD="${GPA_BUILD:-$GPA_ROOT/build}"

# Packages the agent needs to build and run.
GPA_BUILD_PACKAGES=(
  cmake gcc g++ make pkg-config
  libcaf-dev libspdlog-dev libfmt-dev
  libboost-dev libboost-filesystem-dev libboost-test-dev
  rapidjson-dev libcurl4-openssl-dev zlib1g-dev
  linux-perf procps
  python3 # configuring needs it (the tests' CMake file)
)

# Further packages the tests need (prometheus for promtool, which checks the metrics endpoint's output: about
# 22 MB to download, 100 MB installed; on a host with systemd it also enables
# a Prometheus server on :9090).
GPA_TEST_PACKAGES=(
  chromium # the flame-graph page's browser tests (headless)
  prometheus
)

# npm package folders (package.json + committed package-lock.json) that
# `npm ci` installs when node_modules is missing or the lock changed.
# Build: the flame-graph viewer, embedded into the agent at build time.
GPA_BUILD_NPM_DIRS=(actors/format/viewer)
# Tests: playwright-core, which drives Debian's chromium.
GPA_TEST_NPM_DIRS=(test/browser)

# Installs the Debian packages among "$@" that are not installed yet.
gpa_ensure_packages() {
  local missing=()
  local pkg
  for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed"; then
      missing+=("$pkg")
    fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    return 0
  fi
  echo "installing missing packages: ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: these packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# Runs `npm ci` in each folder of "$@" (relative to the repository) whose
# node_modules is missing or was installed from another package-lock.json.
gpa_ensure_npm() {
  local dir want stamp
  if ! command -v npm >/dev/null 2>&1; then
    gpa_ensure_packages nodejs npm
  fi
  for dir in "$@"; do
    dir="$GPA_ROOT/$dir"
    want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
    stamp="$dir/node_modules/.gpa-lock.sha256"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
      continue
    fi
    echo "npm ci in $dir" >&2
    (cd "$dir" && npm ci --no-audit --no-fund >&2)
    echo "$want" >"$stamp"
  done
}

# Configures (once) and builds (incrementally) the given CMake targets, or
# everything (the agent and its tests) without arguments.
gpa_build() {
  gpa_ensure_npm "${GPA_BUILD_NPM_DIRS[@]}"
  if [ ! -f "$GPA_BUILD/CMakeCache.txt" ]; then
    cmake -S "$GPA_ROOT" -B "$GPA_BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DGPA_WERROR=ON >&2
  fi
  local targets=()
  [ $# -gt 0 ] && targets=(--target "$@")
  cmake --build "$GPA_BUILD" -j "$(nproc)" "${targets[@]}" >&2
}

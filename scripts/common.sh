# Shared by scripts/run-agent.sh and scripts/test.sh: install what is missing
# (Debian 12, as root), then configure and build incrementally in build/.
# Source it; do not run it.

set -euo pipefail

GPA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GPA_BUILD="${GPA_BUILD:-$GPA_ROOT/build}"

# Packages the agent needs to build and run.
GPA_BUILD_PACKAGES=(
  cmake g++ make pkg-config
  libcaf-dev libspdlog-dev libfmt-dev
  libboost-dev libboost-filesystem-dev libboost-test-dev
  rapidjson-dev libcurl4-openssl-dev zlib1g-dev
  linux-perf procps
)

# Further packages the tests need (python3 for the test HTTP server;
# prometheus for promtool, which checks the metrics endpoint's output: about
# 22 MB to download, 100 MB installed; on a host with systemd it also enables
# a Prometheus server on :9090).
GPA_TEST_PACKAGES=(
  python3
  prometheus
)

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

# Configures (once) and builds (incrementally) the agent and its tests.
gpa_build() {
  if [ ! -f "$GPA_BUILD/CMakeCache.txt" ]; then
    cmake -S "$GPA_ROOT" -B "$GPA_BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DGPA_WERROR=ON >&2
  fi
  cmake --build "$GPA_BUILD" -j "$(nproc)" >&2
}

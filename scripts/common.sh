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
  dpkg-dev # the Debian package's Depends (cpack runs dpkg-shlibdeps)
)

# Further packages the tests need (prometheus for promtool, which checks the metrics endpoint's output: about
# 22 MB to download, 100 MB installed; on a host with systemd it also enables
# a Prometheus server on :9090).
GPA_TEST_PACKAGES=(
  chromium # the flame-graph page's browser tests (headless)
  prometheus
  clang-format # the lint.format check
  openjdk-17-jdk-headless # the Java runtime profiler's real tests (javac, jcmd)
  ruby    # the Ruby and PHP runtime profilers' real tests: real interpreters
  php-cli # under stand-in rbspy and phpspy
  python3-yaml # the lint.kubernetes check parses deploy/'s YAML
  systemd # systemd-analyze verify of the service unit (root.deb)
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

# Node.js and npm: the build installs the flame-graph viewer's npm packages
# (into the build tree) and embeds them. Debian's nodejs and npm are
# installed only when no npm is on the PATH.
gpa_ensure_node() {
  if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    gpa_ensure_packages nodejs npm
  fi
}

# Configures (once) and builds (incrementally) the given CMake targets, or
# everything (the agent and its tests) without arguments.
gpa_build() {
  gpa_ensure_node
  if [ ! -f "$GPA_BUILD/CMakeCache.txt" ]; then
    cmake -S "$GPA_ROOT" -B "$GPA_BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DGPA_WERROR=ON >&2
  fi
  local targets=()
  [ $# -gt 0 ] && targets=(--target "$@")
  cmake --build "$GPA_BUILD" -j "$(nproc)" "${targets[@]}" >&2
}

#!/usr/bin/env bash
# Installs what is missing, builds, and runs gprofiler-agent with the given
# arguments, e.g.:  sudo scripts/run-agent.sh -o ./profiles -d 10
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
gpa_ensure_packages "${GPA_BUILD_PACKAGES[@]}"
gpa_build
exec "$GPA_BUILD/gprofiler-agent" "$@"

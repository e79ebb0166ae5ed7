#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test through ctest.
# Extra arguments go to ctest, e.g.:  sudo scripts/test.sh -L simulation
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
gpa_ensure_packages "${GPA_BUILD_PACKAGES[@]}" "${GPA_TEST_PACKAGES[@]}"
gpa_build
cd "$GPA_BUILD"
exec ctest --output-on-failure --timeout 1800 "$@"

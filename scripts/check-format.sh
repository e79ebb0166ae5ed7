#!/usr/bin/env bash
# Checks that every C++ source of the project is formatted by the repo's
# .clang-format (clang-format --dry-run -Werror). Exits 1 naming the files
# that are not; 0 when all are. Usage: scripts/check-format.sh [REPO]
set -euo pipefail
repo="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
cd "$repo"
mapfile -t files < <(find format config runtime messages upload actors app test \
  -name node_modules -prune -o \( -name '*.cpp' -o -name '*.hpp' \) -print | sort)
bad=()
for f in "${files[@]}"; do
  clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ "${#bad[@]}" -gt 0 ]; then
  printf 'not formatted by .clang-format (run clang-format -i on them):\n' >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
echo "format: ${#files[@]} files follow .clang-format"

#!/usr/bin/env bash
# Static checks, as CI runs them: ruff (lint, then formatting), mypy, and the import-linter
# contracts on the apps' layers. Every check runs; the script fails if any of them did.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
failed=()
check() {
  local name=$1
  shift
  echo "== $name"
  "$@" || failed+=("$name")
}
check "ruff check" .venv/bin/ruff check .
check "ruff format --check" .venv/bin/ruff format --check .
check "mypy" .venv/bin/mypy
check "import-linter" .venv/bin/lint-imports
if [ ${#failed[@]} -gt 0 ]; then
  echo "lint failed: ${failed[*]}" >&2
  exit 1
fi

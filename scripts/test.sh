#!/usr/bin/env bash
# Set up and run the whole test suite twice: on the embedded defaults (SQLite, local cache,
# ORM broker), then against PostgreSQL and Redis. With REQUIRE_SERVICES=1 (CI) a missing
# PostgreSQL or Redis fails the run; otherwise that second pass is skipped with a warning.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PG_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
REDIS=${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}

# Static checks first (ruff, ruff format, mypy, import-linter); LINT=0 skips them.
if [ "${LINT:-1}" = "1" ]; then
  bash scripts/lint.sh
fi

echo "== OpenAPI schema: every endpoint documented, no warnings"
env -u DATABASE_URL -u REDIS_URL -u Q_BROKER DJANGO_SETTINGS_MODULE=refresh_project.settings_test \
  .venv/bin/python manage.py spectacular --validate --fail-on-warn \
  --file "$(mktemp)"

echo "== tests on embedded defaults (SQLite, local cache, ORM broker)"
env -u DATABASE_URL -u REDIS_URL -u Q_BROKER .venv/bin/pytest "$@"

services_up() {
  .venv/bin/python - "$PG_URL" "$REDIS" <<'PY'
import sys, psycopg, redis
try:
    psycopg.connect(sys.argv[1].replace("postgres://", "postgresql://"), connect_timeout=3).close()
    redis.Redis.from_url(sys.argv[2], socket_connect_timeout=3).ping()
except Exception as exc:
    print(f"service check failed: {exc}", file=sys.stderr)
    sys.exit(1)
PY
}
if services_up; then
  echo "== tests on PostgreSQL and Redis (cache, locks, rate limits and the queue broker)"
  DATABASE_URL="$PG_URL" REDIS_URL="$REDIS" Q_BROKER=redis .venv/bin/pytest "$@"
elif [ "${REQUIRE_SERVICES:-0}" = "1" ]; then
  echo "PostgreSQL or Redis is not reachable, and this run requires them." >&2
  exit 1
else
  echo "WARNING: PostgreSQL or Redis not reachable; skipped the second pass." >&2
fi

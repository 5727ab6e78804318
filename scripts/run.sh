#!/usr/bin/env bash
# Set up and serve the refresh service on embedded defaults: SQLite, django-q2's ORM broker,
# mock market data. API and admin on http://localhost:8000, one background worker beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=.venv/bin/python
$PY manage.py migrate --no-input
$PY manage.py install_schedules
$PY manage.py seed_demo
$PY manage.py qcluster &
worker=$!
trap 'kill $worker 2>/dev/null || true' EXIT INT TERM
echo "Serving on http://localhost:8000 (admin: /admin/, API: /api/v1/manual/refresh/)"
$PY manage.py runserver "${HOST:-127.0.0.1}:${PORT:-8000}" --noreload

#!/usr/bin/env bash
# Set up and serve the refresh service on embedded defaults: SQLite, django-q2's ORM broker,
# mock market data. API and admin on http://$HOST:$PORT (127.0.0.1:8000), one worker beside it.
# DEBUG stays off, as in production: static files come from collectstatic through WhiteNoise, and
# the secret key is generated once into var/secret_key.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=.venv/bin/python
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}

mkdir -p var
if [ -z "${DJANGO_SECRET_KEY:-}" ]; then
  [ -s var/secret_key ] || (umask 077 && $PY -c "import secrets; print(secrets.token_urlsafe(50))" > var/secret_key)
  DJANGO_SECRET_KEY=$(cat var/secret_key)
  export DJANGO_SECRET_KEY
fi

$PY manage.py migrate --no-input
$PY manage.py collectstatic --no-input --verbosity 0
$PY manage.py install_schedules
$PY manage.py seed_demo
$PY manage.py qcluster &
worker=$!
trap 'kill $worker 2>/dev/null || true' EXIT INT TERM
cat <<EOF
Serving on http://$HOST:$PORT  (admin: /admin/, API docs: /api/docs/, runs: /api/v1/manual/refresh/runs/)
Logins: admin / admin-demo (admin role); alice, bob, carol / demo-pass (user role).
One worker runs every refresh, emergencies first; DEBUG is off (DJANGO_DEBUG=true turns it on).
For a worker kept free for emergencies, start this script with REFRESH_EMERGENCY_LANE=true and run
Q_CLUSTER_NAME=emergency manage.py qcluster beside it, with the same variables (README: running in production).
EOF
$PY manage.py runserver "$HOST:$PORT" --noreload

"""A real django-q2 worker process executes a run requested over HTTP."""
import os
import signal
import subprocess
import sys
import time
from http import HTTPStatus
from pathlib import Path

import pytest
import requests
from django.db import connection
from rest_framework.authtoken.models import Token

ROOT = Path(__file__).resolve().parents[2]


def worker_env() -> dict:
    """Environment that points a separate process at this test database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWELVEDATA")}
    env.update(DJANGO_SETTINGS_MODULE="refresh_project.settings", MARKET_DATA_PROVIDER="mock", Q_WORKERS="1")
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        env["SQLITE_PATH"] = str(db["NAME"])
    else:
        env["DATABASE_URL"] = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    return env


@pytest.fixture
def qcluster(transactional_db, monkeypatch, tmp_path):
    monkeypatch.setattr("django_q.conf.Conf.SYNC", False)  # the web side queues; the worker runs it
    log = open(tmp_path / "qcluster.log", "w")
    process = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=worker_env(),
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    process.log_path = tmp_path / "qcluster.log"
    yield process
    log.close()
    process.send_signal(signal.SIGTERM)  # the cluster stops its own workers
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    connection.close()


@pytest.mark.qcluster
def test_a_run_requested_over_http_finishes_in_a_real_worker(live_server, qcluster, admin):
    headers = {"Authorization": f"Token {Token.objects.create(user=admin).key}"}
    response = requests.post(f"{live_server.url}/api/v1/manual/refresh/all", json={"mode": "full"},
                             headers=headers, timeout=10)
    assert response.status_code == HTTPStatus.ACCEPTED, response.text
    location = f"{live_server.url}{response.headers['Location']}"
    deadline = time.monotonic() + 90
    seen = set()
    body = {}
    while time.monotonic() < deadline:
        body = requests.get(location, headers=headers, timeout=10).json()
        seen.add(body["status"])
        if body["status"] not in ("queued", "in_progress"):
            break
        time.sleep(0.3)
    assert body["status"] == "success", (body, qcluster.log_path.read_text()[-3000:])
    assert body["items_updated"]["prices"] > 0
    assert body["steps"][-1]["name"] == "Reporting status"

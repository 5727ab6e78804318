"""A real django-q2 worker process executes a run requested over HTTP."""
import time
from http import HTTPStatus

import pytest
import requests
from rest_framework.authtoken.models import Token

from portfolios.models import BenchmarkComparison, Portfolio, PortfolioMetrics
from refresh.models import RunSource, RunStatus
from refresh.services.demo import seed_demo
from refresh.services.requests import request_refresh


@pytest.mark.qcluster
def test_a_run_requested_over_http_finishes_in_a_real_worker(live_server, workers, admin):
    workers.start()
    headers = {"Authorization": f"Token {Token.objects.create(user=admin).key}"}
    response = requests.post(f"{live_server.url}/api/v1/manual/refresh/all", json={"mode": "full"},
                             headers=headers, timeout=10)
    assert response.status_code == HTTPStatus.ACCEPTED, response.text
    location = f"{live_server.url}{response.headers['Location']}"
    deadline = time.monotonic() + 90
    body = {}
    while time.monotonic() < deadline:
        body = requests.get(location, headers=headers, timeout=10).json()
        if body["status"] not in ("queued", "in_progress"):
            break
        time.sleep(0.3)
    assert body["status"] == "success", (body, workers.logs())
    assert body["items_updated"]["prices"] > 0
    assert body["steps"][-1]["name"] == "Reporting status"


@pytest.mark.qcluster
def test_a_worker_calculates_portfolio_chunks_in_processes_of_its_own(workers):
    """django-q's workers are daemonic by default and could not start these processes."""
    seed_demo(users=6, assets=8, years=1)
    workers.start(REFRESH_PROCESSES="2", REFRESH_METRICS_CHUNK="2")
    run, _ = request_refresh(kind="all", mode="full", requested_by=None, source=RunSource.COMMAND)

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.is_finished:
            break
        time.sleep(0.3)
    assert run.status == RunStatus.SUCCESS, (run.errors, workers.logs())
    assert PortfolioMetrics.objects.count() == BenchmarkComparison.objects.count() == Portfolio.objects.count() == 6
    logs = workers.logs()
    assert "in 3 chunks in 2 worker processes" in logs and "daemonic" not in logs

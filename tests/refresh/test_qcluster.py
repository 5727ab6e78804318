"""A real django-q2 worker process executes a run requested over HTTP."""
import time
from http import HTTPStatus

import pytest
import requests
from rest_framework.authtoken.models import Token


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

"""Waiting for a run inside a request is bounded per requester and per web process."""

import time
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus

import pytest
from django.db import connection

from refresh.models import RunSource, RunStatus
from refresh.services.requests import request_refresh
from refresh.services.waiting import wait_for_run_within_bounds

pytestmark = pytest.mark.django_db(transaction=True)  # the waits run in threads, on connections of their own


@pytest.fixture
def queued(demo, admin):
    """A run no worker will pick up, so waiting for it lasts the whole wait."""
    run, _ = request_refresh(kind="benchmark", requested_by=admin, source=RunSource.COMMAND, enqueue=False)
    return run


def timed_wait(run, *, requester_id, seconds):
    began = time.monotonic()
    try:
        result = wait_for_run_within_bounds(run=run, requester_id=requester_id, seconds=seconds)
        return result.status, time.monotonic() - began
    finally:
        connection.close()


def test_a_requester_past_its_concurrent_waits_is_answered_at_once(queued, settings):
    settings.REFRESH_MAX_CONCURRENT_WAITS = 2
    with ThreadPoolExecutor(3) as pool:
        holding = [pool.submit(timed_wait, queued, requester_id=1, seconds=2) for _ in range(2)]
        time.sleep(0.3)
        status, took = timed_wait(queued, requester_id=1, seconds=2)
        assert (status, took < 0.5) == (RunStatus.QUEUED, True)
        _other_status, other_took = pool.submit(timed_wait, queued, requester_id=2, seconds=0.5).result()
        assert other_took >= 0.5  # another requester still waits
        assert all(f.result()[1] >= 2 for f in holding)
    # The slots were given back: the first requester may wait again.
    assert timed_wait(queued, requester_id=1, seconds=0.5)[1] >= 0.5


def test_a_process_lends_only_some_threads_to_waiting(queued, settings):
    per_process = settings.REFRESH_MAX_WAITS_PER_PROCESS
    with ThreadPoolExecutor(per_process) as pool:
        holding = [pool.submit(timed_wait, queued, requester_id=100 + n, seconds=2) for n in range(per_process)]
        time.sleep(0.3)
        assert timed_wait(queued, requester_id=999, seconds=2)[1] < 0.5
        assert all(f.result()[1] >= 2 for f in holding)


def test_a_wait_never_outlasts_the_maximum(queued, settings):
    settings.REFRESH_MAX_WAIT_SECONDS = 1
    assert 1 <= timed_wait(queued, requester_id=1, seconds=30)[1] < 1.5


def test_a_wait_above_the_maximum_is_a_400_that_starts_nothing(admin_api, settings):
    from refresh.models import RefreshRun

    response = admin_api.post(
        "/api/v1/manual/refresh/prices/", {"wait": settings.REFRESH_MAX_WAIT_SECONDS + 1}, format="json"
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["error"]["code"] == "invalid_request"
    assert "wait" in response.json()["error"]["message"]
    assert not RefreshRun.objects.exists()

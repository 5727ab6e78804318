"""Rate limits shared by concurrent requests and by separate processes, on every configuration.

The counters live in Redis with REDIS_URL and in the database without it; either way requests
racing each other, or reaching different processes, cannot slip past a limit. The clock, not
sleep, moves (except across processes, where the windows are a day long).
"""

import json
import subprocess
import sys
import threading
from http import HTTPStatus

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from rest_framework.test import APIClient

from market_data.models import Asset
from refresh.models import RefreshRun, RunStatus
from tests.refresh.conftest import ROOT, worker_env

BASE = "/api/v1/manual/refresh"


@pytest.fixture
def alice(transactional_db, monkeypatch):
    """A plain user; requests are committed for real, but nothing is executed."""
    monkeypatch.setattr("refresh.services.dispatch.enqueue_pickup", lambda **kwargs: None)
    return get_user_model().objects.create_user(username="alice")


@pytest.fixture
def helpdesk(alice):
    """A support user, who may refresh prices: distinct symbols make distinct requests."""
    Asset.objects.bulk_create([Asset(symbol=f"S{i:02d}") for i in range(25)])
    user = get_user_model().objects.create_user(username="helpdesk")
    user.groups.add(Group.objects.get(name="support"))
    return user


def post(user, path, body=None):
    client = APIClient()
    client.force_authenticate(user)
    return client.post(f"{BASE}/{path}", body or {}, format="json")


def prices_of(symbol):
    return ("prices", {"symbols": [symbol]})


def post_concurrently(user, requests):
    """Send every (path, body) at the same moment from its own thread (and database connection)."""
    barrier = threading.Barrier(len(requests))
    responses = [None] * len(requests)

    def send(index):
        try:
            barrier.wait(timeout=30)
            responses[index] = post(user, *requests[index])
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return responses


def codes(responses):
    return sorted(
        r.json()["error"]["code"] if r.status_code == HTTPStatus.TOO_MANY_REQUESTS else "accepted" for r in responses
    )


def test_twenty_concurrent_requests_with_a_limit_of_ten_accept_exactly_ten(helpdesk, clock, settings):
    settings.REFRESH_RATE_LIMITS = {**settings.REFRESH_RATE_LIMITS, "support": "10/h"}
    settings.REFRESH_COOLDOWN_SECONDS = 0  # twenty different requests: only the hourly quota applies
    settings.REFRESH_BURST_RATE = None

    responses = post_concurrently(helpdesk, [prices_of(f"S{i:02d}") for i in range(20)])

    assert codes(responses) == ["accepted"] * 10 + ["rate_limited"] * 10
    refused = [r for r in responses if r.status_code == HTTPStatus.TOO_MANY_REQUESTS]
    assert all(r["Retry-After"] == str(r.json()["error"]["retry_after"]) for r in refused)
    assert RefreshRun.objects.count() == 10  # refused requests created nothing

    eleventh = post(helpdesk, *prices_of("S20"))
    assert eleventh.status_code == HTTPStatus.TOO_MANY_REQUESTS
    retry_after = eleventh.json()["error"]["retry_after"]
    assert eleventh["Retry-After"] == str(retry_after)
    assert 1 <= retry_after <= 3600
    clock.shift(retry_after - 1)
    assert post(helpdesk, *prices_of("S21")).status_code == HTTPStatus.TOO_MANY_REQUESTS
    clock.shift(1)
    assert post(helpdesk, *prices_of("S22")).status_code == HTTPStatus.ACCEPTED
    assert RefreshRun.objects.count() == 11


def test_concurrent_identical_requests_join_one_run(alice, clock):
    responses = post_concurrently(alice, [(f"portfolio/{alice.pk}", {})] * 8)
    assert codes(responses) == ["accepted"] * 8
    assert len({r.json()["refresh_id"] for r in responses}) == 1
    assert RefreshRun.objects.count() == 1


def test_concurrent_requests_for_the_same_kind_and_target_pass_the_cooldown_once(helpdesk, clock):
    responses = post_concurrently(helpdesk, [prices_of(f"S{i:02d}") for i in range(8)])
    # Five pass the burst limit, one of those the cooldown.
    assert codes(responses) == ["accepted"] + ["burst"] * 3 + ["cooldown"] * 4
    assert RefreshRun.objects.count() == 1


def test_concurrent_requests_pass_the_burst_limit_five_times(helpdesk, clock, settings):
    settings.REFRESH_COOLDOWN_SECONDS = 0
    responses = post_concurrently(helpdesk, [prices_of(f"S{i:02d}") for i in range(12)])
    assert codes(responses) == ["accepted"] * 5 + ["burst"] * 7
    assert RefreshRun.objects.count() == 5


def test_a_second_identical_request_within_60_seconds_is_cooldown_and_accepted_after_it(alice, clock):
    own = f"portfolio/{alice.pk}"
    assert post(alice, own).status_code == HTTPStatus.ACCEPTED
    RefreshRun.objects.update(status=RunStatus.SUCCESS)

    refused = post(alice, own)
    assert refused.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert refused.json()["error"]["code"] == "cooldown"
    assert refused["Retry-After"] == "60"
    clock.shift(59)
    still = post(alice, own).json()["error"]
    assert (still["code"], still["retry_after"]) == ("cooldown", 1)
    clock.shift(1)  # the stored time, not the key's expiry, ends the cooldown
    assert post(alice, own).status_code == HTTPStatus.ACCEPTED
    assert RefreshRun.objects.count() == 2


# --- separate processes -----------------------------------------------------------------------------------------

_REQUESTS_IN_A_PROCESS = """
import json
from django.contrib.auth import get_user_model
from refresh.services.rate_limits import RateLimitExceeded
from refresh.services.requests import request_refresh

requester = get_user_model().objects.get(pk={pk})
outcomes = []
for kind, mode in {requests!r}:
    try:
        request_refresh(kind=kind, mode=mode, requested_by=requester, source="api", enqueue=False)
        outcomes.append("accepted")
    except RateLimitExceeded as refusal:
        outcomes.append(refusal.code)
print(json.dumps(outcomes))
"""


def requests_in_a_new_process(user, requests: list[tuple[str, str]]) -> list[str]:
    """Make (kind, mode) requests from a new Python process on this test database; what each got.

    Day-long windows and an hour's cooldown, so real time (a process takes a second or two to
    start) never reaches a window's end in practice.
    """
    code = _REQUESTS_IN_A_PROCESS.format(pk=user.pk, requests=requests)
    env = worker_env(REFRESH_BURST_RATE="5/d", REFRESH_RATE_LIMIT_ADMIN="3/d", REFRESH_COOLDOWN_SECONDS=3600)
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        check=False,  # a failure is asserted below, with the process's stderr in the message
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_separate_processes_count_against_the_same_limits(transactional_db):
    """As gunicorn's workers do: each process is held to what the others counted."""
    root = get_user_model().objects.create_superuser(username="root")  # the admin role: 3 a day here
    first = requests_in_a_new_process(root, [("prices", "incremental"), ("benchmark", "incremental")])
    assert first == ["accepted", "accepted"]

    second = requests_in_a_new_process(
        root,
        [
            ("prices", "smart"),  # the first process's prices: within the cooldown (3rd attempt)
            ("strategy", "incremental"),  # 3rd of 3 a day
            ("all", "incremental"),  # a 4th: over the quota, counted for the burst only (5th attempt)
            ("benchmark", "smart"),  # 6th attempt: over the burst
        ],
    )
    assert second == ["cooldown", "accepted", "rate_limited", "burst"]
    assert sorted(RefreshRun.objects.values_list("kind", flat=True)) == ["benchmark", "prices", "strategy"]

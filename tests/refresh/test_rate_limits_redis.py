"""Rate limits against real Redis: concurrent requests cannot slip past a limit; the clock, not sleep, moves."""
import os
import threading
from contextlib import suppress
from http import HTTPStatus

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.cache import caches
from django.db import connection
from django_redis.cache import RedisCache
from rest_framework.test import APIClient

from market_data.models import Asset
from refresh.models import RefreshRun, RunStatus
from refresh.services.rate_limits import RateLimitExceeded

pytestmark = pytest.mark.skipif(
    not os.environ.get("REDIS_URL"),
    reason="REDIS_URL is unset: these need a real Redis as the shared cache (the PostgreSQL + Redis pass of "
           "scripts/test.sh)",
)

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
    return sorted(r.json()["error"]["code"] if r.status_code == HTTPStatus.TOO_MANY_REQUESTS else "accepted"
                  for r in responses)


def test_the_counters_live_in_redis():
    assert isinstance(caches["default"], RedisCache)


def test_the_three_limits_cost_one_round_trip(alice, clock, monkeypatch):
    from redis.client import Redis

    from refresh.services.rate_limits import check_rate_limits

    check_rate_limits(user=alice, role="user", kind="strategy", target_user_id=None, source="api")  # loads the script
    sent = []
    original = Redis.execute_command
    monkeypatch.setattr(Redis, "execute_command", lambda self, *args, **options: (
        sent.append(args[0]), original(self, *args, **options))[1])
    for kind in ("portfolio", "portfolio", "benchmark"):  # a new counter, existing counters, a cooldown refusal
        with suppress(RateLimitExceeded):
            check_rate_limits(user=alice, role="user", kind=kind, target_user_id=None, source="api")
    assert [command.upper() for command in sent if command.upper() != "SCRIPT LOAD"] == ["EVALSHA"] * 3


def test_a_cooldown_an_older_release_stored_does_not_break_a_request(alice, clock):
    caches["default"].set(f"refresh:cooldown:{alice.pk}:portfolio:{alice.pk}", 1.5e9, timeout=60)  # pickled
    assert post(alice, f"portfolio/{alice.pk}").status_code == HTTPStatus.ACCEPTED


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
    assert eleventh["Retry-After"] == str(retry_after) and 1 <= retry_after <= 3600
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
    clock.shift(1)  # Redis still holds the key; the stored time, not its expiry, ends the cooldown
    assert post(alice, own).status_code == HTTPStatus.ACCEPTED
    assert RefreshRun.objects.count() == 2

"""Rate limits against real Redis: its own keys and one round trip; the clock, not sleep, moves.

The guarantees every store gives (concurrent requests, separate processes) are in
test_rate_limits_shared.py.
"""
import os
from contextlib import suppress
from http import HTTPStatus

import pytest
from django.core.cache import caches
from django_redis.cache import RedisCache

from refresh.services.rate_limits import RateLimitExceeded
from tests.refresh.test_rate_limits_shared import alice, post  # noqa: F401 - alice is a fixture

pytestmark = pytest.mark.skipif(
    not os.environ.get("REDIS_URL"),
    reason="REDIS_URL is unset: these need a real Redis as the shared cache (the PostgreSQL + Redis pass of "
           "scripts/test.sh)",
)


def test_the_counters_live_in_redis():
    assert isinstance(caches["ratelimit"], RedisCache)


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
    caches["ratelimit"].set(f"refresh:cooldown:{alice.pk}:portfolio:{alice.pk}", 1.5e9, timeout=60)  # pickled
    assert post(alice, f"portfolio/{alice.pk}").status_code == HTTPStatus.ACCEPTED

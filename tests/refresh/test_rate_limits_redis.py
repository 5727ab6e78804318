"""Rate limits against real Redis: the counters live there, checked and counted by one script.

The limits themselves run on every store in test_rate_limits.py, and the guarantees across
threads and processes in test_rate_limits_shared.py; the PostgreSQL + Redis pass runs them on Redis.
"""

import os
import pickle
import time
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django_redis import get_redis_connection
from django_redis.cache import RedisCache

from refresh.models import RunSource
from refresh.services.rate_limits import RateLimitExceeded, check_rate_limits

pytestmark = pytest.mark.skipif(
    not os.environ.get("REDIS_URL"),
    reason="REDIS_URL is unset: these need a real Redis as the shared cache (the PostgreSQL + Redis pass of "
    "scripts/test.sh)",
)


@pytest.fixture
def alice(db):
    return get_user_model().objects.create_user(username="alice")


def check(user, *, kind="portfolio"):
    check_rate_limits(user=user, role="user", kind=kind, target_user_id=user.pk, source=RunSource.API)


def test_the_counters_live_in_redis():
    assert isinstance(caches["ratelimit"], RedisCache)


def test_a_request_checks_all_three_limits_in_one_round_trip(alice):
    client = get_redis_connection("ratelimit")
    check(alice, kind="prices")  # the script is loaded once per process
    with mock.patch.object(client, "execute_command", wraps=client.execute_command) as sent:
        check(alice)
        with pytest.raises(RateLimitExceeded):
            check(alice)  # the cooldown refuses
    assert [call.args[0] for call in sent.call_args_list] == ["EVALSHA", "EVALSHA"]


def test_every_key_expires_soon_after_its_window_or_cooldown(alice, clock, settings):
    check(alice)
    client, store = get_redis_connection("ratelimit"), caches["ratelimit"]
    now = time.time()
    burst_ttl = client.pttl(store.make_key(f"refresh:burst:{alice.pk}:10:{int(now // 10)}"))
    hourly_ttl = client.pttl(store.make_key(f"refresh:hourly:{alice.pk}:3600:{int(now // 3600)}"))
    cooldown_ttl = client.pttl(store.make_key(f"refresh:cooldown:{alice.pk}:portfolio:{alice.pk}"))
    assert 0 < burst_ttl <= 15_000
    assert 0 < hourly_ttl <= 3_605_000
    assert 60_000 < cooldown_ttl <= 65_000


def test_a_cooldown_left_by_the_previous_limiter_neither_breaks_nor_blocks_a_request(alice, clock):
    """django-ratelimit's era stored the cooldown pickled under the same key; it expires within a minute."""
    key = caches["ratelimit"].make_key(f"refresh:cooldown:{alice.pk}:portfolio:{alice.pk}")
    get_redis_connection("ratelimit").set(key, pickle.dumps(time.time()), px=60_000)
    check(alice)
    with pytest.raises(RateLimitExceeded) as refused:
        check(alice)
    assert refused.value.code == "cooldown"

"""Rate limits against real Redis: the counters live there.

The limits themselves run on every store in test_rate_limits.py, and the guarantees across
threads and processes in test_rate_limits_shared.py; the PostgreSQL + Redis pass runs them on Redis.
"""

import os

import pytest
from django.core.cache import caches
from django_redis.cache import RedisCache

pytestmark = pytest.mark.skipif(
    not os.environ.get("REDIS_URL"),
    reason="REDIS_URL is unset: these need a real Redis as the shared cache (the PostgreSQL + Redis pass of "
    "scripts/test.sh)",
)


def test_the_counters_live_in_redis():
    assert isinstance(caches["ratelimit"], RedisCache)

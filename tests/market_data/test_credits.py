"""The shared credit budget: per-minute and per-day limits, settling, exhaustion, concurrency.

Every test runs against the database store, and against the Redis store when REDIS_URL is
configured (the PostgreSQL + Redis pass).
"""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings as django_settings
from django.db import connection

from market_data.credits import (
    DatabaseCreditStore,
    RedisCreditStore,
    credit_store,
    mark_credits_exhausted,
    reserve_credits,
    settle_credits,
)
from market_data.models import CreditPeriod, CreditWindow

NOON = datetime(2025, 6, 18, 12, 0, 5, tzinfo=UTC)
NEXT_MINUTE = datetime(2025, 6, 18, 12, 1, tzinfo=UTC)
MIDNIGHT = datetime(2025, 6, 19, tzinfo=UTC)
STORES = [
    "database",
    pytest.param(
        "redis", marks=pytest.mark.skipif(not django_settings.REDIS_URL, reason="the Redis store needs REDIS_URL")
    ),
]


@pytest.fixture(params=STORES)
def budget(request, settings, db):
    settings.MARKET_DATA_CREDIT_STORE = request.param
    settings.MARKET_DATA_CREDITS_PER_MINUTE = 8
    settings.MARKET_DATA_CREDITS_PER_DAY = 800
    return settings


def test_the_store_follows_the_setting(budget):
    expected = RedisCreditStore if budget.MARKET_DATA_CREDIT_STORE == "redis" else DatabaseCreditStore
    assert isinstance(credit_store(), expected)


def test_a_minute_grants_at_most_its_limit_then_nothing_until_the_next_minute(budget):
    first = reserve_credits(wanted=5, now=NOON)
    second = reserve_credits(wanted=5, now=NOON + timedelta(seconds=20))
    third = reserve_credits(wanted=1, now=NOON + timedelta(seconds=40))

    assert (first.credits, second.credits, third.credits) == (5, 3, 0)
    assert third.day_exhausted is False
    assert third.retry_at == NEXT_MINUTE
    assert reserve_credits(wanted=20, now=NEXT_MINUTE).credits == 8


def test_the_day_limit_stops_every_minute_until_midnight(budget):
    budget.MARKET_DATA_CREDITS_PER_DAY = 10

    granted = [reserve_credits(wanted=8, now=NOON + timedelta(minutes=m)).credits for m in range(3)]
    refused = reserve_credits(wanted=1, now=NOON + timedelta(minutes=5))

    assert granted == [8, 2, 0]
    assert refused.credits == 0
    assert refused.day_exhausted
    assert refused.retry_at == MIDNIGHT
    assert reserve_credits(wanted=8, now=MIDNIGHT).credits == 8


def test_settling_returns_unspent_credits_and_charges_extra_ones(budget):
    grant = reserve_credits(wanted=6, now=NOON)
    settle_credits(grant=grant, spent=2)
    assert reserve_credits(wanted=8, now=NOON).credits == 6

    overspent = reserve_credits(wanted=2, now=NEXT_MINUTE)
    settle_credits(grant=overspent, spent=7)
    assert reserve_credits(wanted=8, now=NEXT_MINUTE).credits == 1


def test_a_minute_the_provider_refused_is_closed_for_every_worker(budget):
    mark_credits_exhausted(period=CreditPeriod.MINUTE, now=NOON)

    refused = reserve_credits(wanted=3, now=NOON + timedelta(seconds=30))

    assert (refused.credits, refused.day_exhausted) == (0, False)
    assert reserve_credits(wanted=3, now=NEXT_MINUTE).credits == 3


def test_a_day_the_provider_refused_is_closed_until_midnight_utc(budget):
    mark_credits_exhausted(period=CreditPeriod.DAY, now=NOON)

    refused = reserve_credits(wanted=3, now=NOON + timedelta(hours=11))

    assert (refused.credits, refused.day_exhausted, refused.retry_at) == (0, True, MIDNIGHT)
    assert reserve_credits(wanted=3, now=MIDNIGHT).credits == 3


def test_without_limits_everything_is_granted_until_the_provider_refuses(budget):
    budget.MARKET_DATA_CREDITS_PER_MINUTE = budget.MARKET_DATA_CREDITS_PER_DAY = 0

    assert reserve_credits(wanted=500, now=NOON).credits == 500
    mark_credits_exhausted(period=CreditPeriod.DAY, now=NOON)
    assert reserve_credits(wanted=500, now=NOON).day_exhausted


def test_the_grant_crossing_the_warning_share_of_the_day_says_so(budget):
    budget.MARKET_DATA_CREDITS_PER_DAY = 10
    budget.MARKET_DATA_CREDIT_WARNING_RATIO = 0.8

    crossed = [
        reserve_credits(wanted=w, now=NOON + timedelta(minutes=m)).crossed_warning for m, w in enumerate([5, 3, 1])
    ]

    assert crossed == [False, True, False]


def test_old_minutes_are_pruned_from_the_database(settings, db):
    settings.MARKET_DATA_CREDIT_STORE = "database"
    settings.MARKET_DATA_CREDITS_PER_MINUTE = 8
    reserve_credits(wanted=1, now=NOON)
    reserve_credits(wanted=1, now=NOON + timedelta(hours=2))

    minutes = CreditWindow.objects.filter(period=CreditPeriod.MINUTE).values_list("starts_at", flat=True)
    assert list(minutes) == [NOON.replace(second=0) + timedelta(hours=2)]
    assert CreditWindow.objects.get(period=CreditPeriod.DAY).used == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("store", STORES)
def test_workers_reserving_at_once_never_exceed_the_minute(settings, store):
    settings.MARKET_DATA_CREDIT_STORE = store
    settings.MARKET_DATA_CREDITS_PER_MINUTE = 8
    settings.MARKET_DATA_CREDITS_PER_DAY = 800
    granted: list[int] = []
    start = threading.Barrier(6)

    def worker():
        try:
            start.wait()
            granted.extend(reserve_credits(wanted=1, now=NOON).credits for _ in range(4))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(granted) == [0] * 16 + [1] * 8

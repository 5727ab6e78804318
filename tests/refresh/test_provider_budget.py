"""Two workers share one credit budget: with 8 credits a minute, no minute ever sees more than 8.

Each worker is a thread with its own database connection running `execute_next_refresh`,
as a qcluster worker does. The budget lives in Redis on the PostgreSQL + Redis pass and in
the database otherwise. The clock is frozen and moves to the next minute only while every
busy worker is waiting for credits, so no provider call ever straddles a minute.
"""

import threading
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import responses
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.db import connection

from market_data.credits import RedisCreditStore, credit_store
from market_data.models import Asset
from market_data.providers import MockProvider
from market_data.services import store_history
from portfolios.models import Holding, Portfolio
from refresh.models import RefreshRun, RunSource, RunStatus
from refresh.services.execution import execute_next_refresh
from refresh.services.requests import request_refresh
from tests.market_data.twelvedata_fake import BASE, KEY, FakeTwelveData

NOW = datetime(2025, 6, 18, 20, 30, tzinfo=UTC)  # after Wednesday's close
SYMBOLS = [f"S{i:02d}" for i in range(19)] + ["SPY"]


class SharedClock:
    """A frozen clock that jumps to the next minute only when every busy worker is asleep."""

    def __init__(self, traveller, workers: int):
        self.traveller = traveller
        self.busy = workers
        self.asleep = 0
        self.condition = threading.Condition()

    def sleep(self, seconds: float) -> None:
        with self.condition:
            wake_at = time.time() + seconds
            self.asleep += 1
            self.condition.notify_all()
            while time.time() < wake_at:
                self.condition.wait(0.05)
            self.asleep -= 1

    def finished(self) -> None:
        with self.condition:
            self.busy -= 1
            self.condition.notify_all()

    def run(self, timeout: float = 60) -> None:
        """Move time on whenever all busy workers wait, until none is busy."""
        give_up = time.monotonic() + timeout
        with self.condition:
            while self.busy and time.monotonic() < give_up:
                if self.asleep == self.busy:
                    now = datetime.fromtimestamp(time.time(), UTC)
                    self.traveller.move_to(now.replace(second=0, microsecond=0) + timedelta(minutes=1), tick=False)
                    self.condition.notify_all()
                self.condition.wait(0.05)


def seed_two_holders(symbols: list[str], *, through: date) -> list:
    """Assets with 60 days of history up to `through`, and two users who each hold all of them."""
    assets = Asset.objects.bulk_create([Asset(symbol=s, name=s) for s in symbols])
    history = MockProvider(batch_size=120).fetch_history(symbols, start=through - timedelta(days=60), end=through)
    store_history(histories=history.items.values())
    owners = []
    for name in ("ann", "ben"):
        owner = get_user_model().objects.create(username=name)
        portfolio = Portfolio.objects.create(owner=owner, name=f"{name}'s")
        Holding.objects.bulk_create(
            [Holding(portfolio=portfolio, asset=a, quantity=Decimal(10), cost_basis=100) for a in assets]
        )
        owners.append(owner)
    return owners


@pytest.mark.django_db(transaction=True)
def test_two_workers_never_spend_more_than_8_credits_in_any_minute(settings, time_machine, monkeypatch):
    settings.MARKET_DATA_PROVIDER = "twelvedata"
    settings.TWELVEDATA_API_KEY = KEY
    settings.TWELVEDATA_BASE_URL = BASE
    settings.MARKET_DATA_CREDITS_PER_MINUTE = 8
    settings.MARKET_DATA_CREDITS_PER_DAY = 800
    settings.MARKET_DATA_QUARANTINE_ANOMALIES = False  # the fake's prices are not the point here
    if django_settings.REDIS_URL:
        settings.MARKET_DATA_CREDIT_STORE = "redis"
        assert isinstance(credit_store(), RedisCreditStore)
    time_machine.move_to(NOW, tick=False)
    owners = seed_two_holders(SYMBOLS, through=NOW.date())  # 20 assets
    runs = [
        request_refresh(
            kind="portfolio", target_user_id=owner.pk, requested_by=None, source=RunSource.COMMAND, enqueue=False
        )[0]
        for owner in owners
    ]
    clock = SharedClock(time_machine, workers=2)
    monkeypatch.setattr("market_data.fetching.sleep", clock.sleep)
    failures = []

    def worker():
        try:
            execute_next_refresh()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)
        finally:
            clock.finished()
            connection.close()

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        twelvedata = FakeTwelveData(rsps)
        callers: dict[str, list[datetime]] = {}
        # Provider calls run in each run's own pool of threads, named after the run.
        twelvedata.on_call = lambda call: callers.setdefault(
            threading.current_thread().name.rsplit("_", 1)[0], []
        ).append(call.at)
        workers = [threading.Thread(target=worker) for _ in range(2)]
        for thread in workers:
            thread.start()
        clock.run()
        for thread in workers:
            thread.join(timeout=30)

    assert failures == []
    finished = RefreshRun.objects.filter(pk__in=[run.pk for run in runs])
    assert sorted(finished.values_list("status", flat=True)) == [RunStatus.SUCCESS] * 2
    # Both workers fetched, and their runs overlapped in time.
    first, second = sorted(callers.values())
    assert min(second) <= max(first)
    assert min(first) <= max(second)
    per_minute: Counter[datetime] = Counter()
    for call in twelvedata.calls:
        per_minute[call.at.replace(second=0, microsecond=0)] += len(call.symbols)
    assert sum(per_minute.values()) == 40  # 20 symbols for each of the two portfolios
    assert max(per_minute.values()) <= 8
    assert len(per_minute) == 5  # 40 credits at 8 a minute
    assert sum(run.credits_used for run in finished) == 40

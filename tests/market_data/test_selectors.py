"""Market-data reads: what the refresh fetches, what new prices are compared with, provider use."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from market_data.models import Asset, PriceBar, Quote
from market_data.selectors import (
    active_symbols,
    closes_before,
    exposure_by_symbol,
    last_bar_dates,
    provider_usage_per_day,
    quote_fetched_at,
)
from market_data.usage import record_provider_usage
from portfolios.models import Holding, Portfolio

FETCHED = datetime(2024, 6, 12, 15, 30, tzinfo=UTC)


def add_bar(asset, day):
    price = Decimal("10")
    PriceBar.objects.create(asset=asset, date=day, open=price, high=price, low=price, close=price, volume=1)


@pytest.mark.django_db
def test_active_symbols_are_sorted_and_skip_inactive():
    for symbol, active in [("SPY", True), ("AAPL", True), ("OLD", False)]:
        Asset.objects.create(symbol=symbol, is_active=active)

    assert active_symbols() == ["AAPL", "SPY"]


@pytest.mark.django_db
def test_last_bar_dates_only_for_symbols_with_bars_in_one_query():
    aapl, msft = Asset.objects.create(symbol="AAPL"), Asset.objects.create(symbol="MSFT")
    Asset.objects.create(symbol="SPY")
    for day in (date(2024, 1, 2), date(2024, 1, 5), date(2024, 1, 3)):
        add_bar(aapl, day)
    add_bar(msft, date(2023, 12, 29))

    with CaptureQueriesContext(connection) as queries:
        result = last_bar_dates(symbols=["AAPL", "MSFT", "SPY", "NOPE"])

    assert result == {"AAPL": date(2024, 1, 5), "MSFT": date(2023, 12, 29)}
    assert len(queries) == 1


@pytest.mark.django_db
def test_quote_fetched_at_only_for_symbols_with_quotes():
    aapl = Asset.objects.create(symbol="AAPL")
    Asset.objects.create(symbol="MSFT")
    Quote.objects.create(asset=aapl, price=Decimal("1"), as_of=FETCHED, fetched_at=FETCHED, source="mock")

    assert quote_fetched_at(symbols=["AAPL", "MSFT"]) == {"AAPL": FETCHED}


@pytest.mark.django_db
def test_closes_before_a_day_in_one_query():
    aapl, msft = Asset.objects.create(symbol="AAPL"), Asset.objects.create(symbol="MSFT")
    Asset.objects.create(symbol="NEW")
    for day, close in [(date(2024, 6, 10), "10"), (date(2024, 6, 11), "11"), (date(2024, 6, 12), "12")]:
        PriceBar.objects.create(asset=aapl, date=day, open=close, high=close, low=close, close=close)
    PriceBar.objects.create(asset=msft, date=date(2024, 6, 12), open=5, high=5, low=5, close=5)

    with CaptureQueriesContext(connection) as queries:
        closes = closes_before(symbols=["AAPL", "MSFT", "NEW"], day=date(2024, 6, 12))

    assert closes == {"AAPL": Decimal("11")}
    assert len(queries) == 1


@pytest.mark.django_db
def test_exposure_is_quantity_held_times_the_latest_price():
    aapl, msft, _idle = (Asset.objects.create(symbol=s) for s in ("AAPL", "MSFT", "IDLE"))
    Quote.objects.create(asset=aapl, price=Decimal("200"), as_of=FETCHED, fetched_at=FETCHED, source="test")
    add_bar(msft, date(2024, 6, 11))  # no quote: the last close (10) counts
    owners = [get_user_model().objects.create(username=name) for name in ("ann", "ben")]
    for owner, quantity in zip(owners, ("2", "3"), strict=True):
        portfolio = Portfolio.objects.create(owner=owner, name="p")
        Holding.objects.create(portfolio=portfolio, asset=aapl, quantity=Decimal(quantity), cost_basis=1)
        Holding.objects.create(portfolio=portfolio, asset=msft, quantity=Decimal("50"), cost_basis=1)

    assert exposure_by_symbol(symbols=["AAPL", "MSFT", "IDLE"]) == {"AAPL": 1000.0, "MSFT": 1000.0, "IDLE": 0.0}


@pytest.mark.django_db
def test_provider_usage_adds_up_per_day_and_provider():
    monday, tuesday = datetime(2024, 6, 10, 23, 59, tzinfo=UTC), datetime(2024, 6, 11, 0, 1, tzinfo=UTC)
    record_provider_usage(provider="twelvedata", calls=1, credits=8, now=monday)
    record_provider_usage(provider="twelvedata", calls=2, credits=0, now=monday)
    record_provider_usage(provider="twelvedata", calls=1, credits=5, now=tuesday)
    record_provider_usage(provider="mock", calls=1, credits=3, now=tuesday)
    record_provider_usage(provider="mock", calls=0, credits=0, now=monday)  # nothing to count

    assert provider_usage_per_day(start=date(2024, 6, 1), end=date(2024, 6, 30)) == [
        {"day": date(2024, 6, 11), "provider": "mock", "calls": 1, "credits": 3},
        {"day": date(2024, 6, 11), "provider": "twelvedata", "calls": 1, "credits": 5},
        {"day": date(2024, 6, 10), "provider": "twelvedata", "calls": 3, "credits": 8},
    ]
    assert provider_usage_per_day(start=date(2024, 6, 10), end=date(2024, 6, 10), provider="mock") == []

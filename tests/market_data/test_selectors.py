"""Market-data reads used to decide what the refresh fetches."""
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from market_data.models import Asset, PriceBar, Quote
from market_data.selectors import active_symbols, last_bar_dates, quote_fetched_at

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

"""What a run asks the provider for: history ranges, the calendar's last session, priority order."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from django.contrib.auth import get_user_model
from hypothesis import given
from hypothesis import strategies as st

from market_data.models import Asset, PriceBar, Quote
from portfolios.models import Holding, Portfolio
from refresh.models import RefreshRun
from refresh.steps.plan import build_plan, by_priority, date_ranges

# Friday 20 June 2025, 15:00 UTC: trading; the last closed session is Wednesday (the 19th was a holiday).
NOW = datetime(2025, 6, 20, 15, 0, tzinfo=UTC)


@given(
    start=st.dates(min_value=date(1970, 1, 1), max_value=date(2030, 1, 1)),
    length=st.integers(min_value=0, max_value=40000),
    days=st.integers(min_value=1, max_value=6000),
)
def test_date_ranges_are_contiguous_and_never_longer_than_asked(start, length, days):
    end = start + timedelta(days=length)

    ranges = date_ranges(start=start, end=end, days=days)

    assert ranges[0][0] == start
    assert ranges[-1][1] == end
    assert all((stop - first).days + 1 <= days for first, stop in ranges)
    assert all(b[0] - a[1] == timedelta(days=1) for a, b in pairwise(ranges))
    assert len(ranges) == -(-(length + 1) // days)


def test_an_empty_range_has_no_parts():
    assert date_ranges(start=date(2025, 1, 2), end=date(2025, 1, 1), days=5000) == []


@pytest.fixture
def stored(db, time_machine):
    time_machine.move_to(NOW, tick=False)
    for symbol, last in [("AAPL", date(2025, 6, 18)), ("MSFT", date(2025, 6, 13)), ("SPY", date(2025, 6, 13))]:
        asset = Asset.objects.create(symbol=symbol)
        PriceBar.objects.create(asset=asset, date=last, open=1, high=1, low=1, close=1)
    Asset.objects.create(symbol="NEW")


def test_incremental_history_starts_after_each_last_bar_and_ends_at_the_last_closed_session(stored, settings):
    settings.REFRESH_HISTORY_YEARS = 1
    run = RefreshRun(kind="prices", mode="incremental", params={})

    plan = build_plan(run)

    requests = [(r.symbols, r.start, r.end, r.adjust) for r in plan.history]
    assert requests == [
        # The benchmark first; every history with dividends (total returns on both sides).
        (["SPY", "MSFT"], date(2025, 6, 14), date(2025, 6, 18), "all"),
        (["NEW"], date(2024, 6, 20), date(2025, 6, 18), "all"),  # no bars yet: the whole window
    ]  # AAPL is complete: Friday's bar is not final yet


def test_symbols_go_benchmark_first_then_by_value_held(stored):
    owner = get_user_model().objects.create(username="o")
    portfolio = Portfolio.objects.create(owner=owner, name="p")
    Holding.objects.create(portfolio=portfolio, asset=Asset.objects.get(symbol="MSFT"), quantity=5, cost_basis=1)
    Holding.objects.create(portfolio=portfolio, asset=Asset.objects.get(symbol="NEW"), quantity=1, cost_basis=1)
    Quote.objects.create(
        asset=Asset.objects.get(symbol="NEW"), price=Decimal("50"), as_of=NOW, fetched_at=NOW, source="test"
    )

    assert by_priority(["AAPL", "MSFT", "NEW", "SPY", "AAPL"]) == ["SPY", "NEW", "MSFT", "AAPL"]

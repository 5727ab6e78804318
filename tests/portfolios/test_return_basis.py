"""Like for like: holdings and benchmark on one return basis, total (dividends reinvested) or price."""

import json
import math
from datetime import UTC, date, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.management import call_command

from market_data.models import Asset, AssetClass
from market_data.providers import MockProvider
from portfolios.models import BenchmarkComparison, Holding, Portfolio, PortfolioMetrics

NOW = datetime(2025, 6, 18, 15, 0, tzinfo=UTC)
YEAR_START = date(2024, 6, 18)  # where return_1y starts: twelve months before today's quote


def full_refresh():
    out = StringIO()
    call_command("refresh", "--all", "--mode", "full", "--json", stdout=out)
    assert json.loads(out.getvalue())["status"] == "success"


def dividend_growth(symbol: str) -> float:
    """How much more than the price a holding returned over the year: 1 / prod(1 - dividend / previous close)."""
    dividends = MockProvider(seed=7).corporate_actions(symbol, start=YEAR_START + timedelta(days=1), end=NOW.date())[
        "dividends"
    ]
    assert len(dividends) == 4  # quarterly
    return 1 / math.prod(1 - fraction for _, fraction in dividends)


@pytest.fixture
def portfolios(db, settings):
    settings.MOCK_PROVIDER_SEED = 7
    owner = get_user_model().objects.create(username="holder")
    spy = Asset.objects.create(symbol="SPY", name="SPY", asset_class=AssetClass.ETF)
    ko = Asset.objects.create(symbol="KO", name="KO", asset_class=AssetClass.EQUITY)
    only_benchmark = Portfolio.objects.create(owner=owner, name="Only the benchmark")
    dividend_payer = Portfolio.objects.create(owner=owner, name="A dividend payer")
    Holding.objects.create(portfolio=only_benchmark, asset=spy, quantity=3, cost_basis=1500)
    Holding.objects.create(portfolio=dividend_payer, asset=ko, quantity=20, cost_basis=1000)
    return only_benchmark, dividend_payer


def figures(only_benchmark, dividend_payer):
    comparison = BenchmarkComparison.objects.get(portfolio=only_benchmark)
    return comparison, PortfolioMetrics.objects.get(portfolio=dividend_payer)


@time_machine.travel(NOW, tick=False)
def test_holding_only_the_benchmark_shows_no_excess_return_on_either_basis(portfolios, settings):
    full_refresh()
    total, payer_total = figures(*portfolios)
    settings.REFRESH_RETURN_BASIS = "price"
    full_refresh()  # a full refresh fetches the whole window again, on the new basis
    price, payer_price = figures(*portfolios)

    for comparison in (total, price):
        assert comparison.excess_return_1y == pytest.approx(0.0, abs=1e-12)
        assert comparison.excess_return_ytd == pytest.approx(0.0, abs=1e-12)
        assert comparison.beta == pytest.approx(1.0)
        assert comparison.tracking_error == 0.0
        assert comparison.alpha == pytest.approx(0.0, abs=1e-9)
    assert (total.return_basis, price.return_basis) == ("total", "price")
    assert (payer_total.return_basis, payer_price.return_basis) == ("total", "price")
    # The mock pays dividends: total returns beat price returns by exactly the dividends paid,
    # on the benchmark's side and on the holdings' alike.
    assert (1 + total.benchmark_return_1y) / (1 + price.benchmark_return_1y) == pytest.approx(
        dividend_growth("SPY"), rel=1e-5
    )
    assert (1 + payer_total.return_1y) / (1 + payer_price.return_1y) == pytest.approx(dividend_growth("KO"), rel=1e-5)
    assert dividend_growth("SPY") > 1.01
    assert total.window_start == payer_total.window_start == YEAR_START

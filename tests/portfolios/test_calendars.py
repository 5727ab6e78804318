"""A portfolio's figures are its own: the same after `refresh --all`, `--portfolio` and an incremental `all`."""

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.forms.models import model_to_dict

from market_data.models import Asset, AssetClass, PriceBar, Quote
from portfolios.models import BenchmarkComparison, Holding, Portfolio, PortfolioMetrics

# A Wednesday during the session: quotes are dated today, bars end with Tuesday's close.
NOW = datetime(2025, 6, 18, 15, 0, tzinfo=UTC)


def refresh(*args) -> dict:
    out = StringIO()
    call_command("refresh", *args, "--json", stdout=out)
    body = json.loads(out.getvalue())
    assert body["status"] == "success", body
    return body


def stored(portfolio) -> tuple[dict, dict]:
    """Every stored figure of the portfolio, without when it was calculated."""
    metrics = model_to_dict(PortfolioMetrics.objects.get(portfolio=portfolio), exclude=["calculated_at"])
    comparison = model_to_dict(BenchmarkComparison.objects.get(portfolio=portfolio), exclude=["calculated_at"])
    return metrics, comparison


def differences(a: tuple[dict, dict], b: tuple[dict, dict]) -> dict:
    """Figures that differ between two stored() results: name -> (a's, b's)."""
    return {
        name: (left[name], right[name])
        for left, right in zip(a, b, strict=True)
        for name in left
        if left[name] != right[name]
    }


def forget_figures():
    PortfolioMetrics.objects.all().delete()
    BenchmarkComparison.objects.all().delete()


def add_weekend_bars(asset: Asset, *, since: date, until: date):
    """Saturday and Sunday bars, as a provider sends them for an asset trading every day."""
    fridays = dict(PriceBar.objects.filter(asset=asset, date__gte=since, date__lte=until).values_list("date", "close"))
    bars = []
    for friday, close in fridays.items():
        if friday.weekday() != 4:
            continue
        for offset, move in ((1, Decimal("1.021")), (2, Decimal("0.988"))):
            price = (close * move).quantize(Decimal("0.000001"))
            bars.append(
                PriceBar(
                    asset=asset,
                    date=friday + timedelta(days=offset),
                    open=price,
                    high=price,
                    low=price,
                    close=price,
                    volume=10,
                )
            )
    PriceBar.objects.bulk_create(bars)
    return len(bars)


@pytest.fixture
def two_portfolios(db):
    users = get_user_model().objects
    equities_owner, crypto_owner = users.create(username="equities"), users.create(username="crypto")
    assets = {
        symbol: Asset.objects.create(symbol=symbol, name=symbol, asset_class=kind)
        for symbol, kind in (
            ("SPY", AssetClass.ETF),
            ("AAPL", AssetClass.EQUITY),
            ("MSFT", AssetClass.EQUITY),
            ("JNJ", AssetClass.EQUITY),
            ("BTC/USD", AssetClass.CRYPTO),
        )
    }
    equities = Portfolio.objects.create(owner=equities_owner, name="Equities")
    crypto = Portfolio.objects.create(owner=crypto_owner, name="With crypto")
    for portfolio, symbol, quantity in (
        (equities, "AAPL", 10),
        (equities, "MSFT", 5),
        (equities, "JNJ", 7),
        (crypto, "AAPL", 4),
        (crypto, "BTC/USD", 2),
    ):
        Holding.objects.create(portfolio=portfolio, asset=assets[symbol], quantity=quantity, cost_basis=1000)
    return equities, crypto, assets


@time_machine.travel(NOW, tick=False)
def test_a_portfolios_figures_do_not_depend_on_what_else_the_run_recalculates(two_portfolios):
    equities, crypto, assets = two_portfolios
    refresh("--all", "--mode", "full")
    assert add_weekend_bars(assets["BTC/USD"], since=date(2023, 7, 1), until=date(2025, 6, 14)) > 150

    refresh("--all", "--mode", "full")  # both portfolios, on one date axis that has weekends
    after_all = stored(equities)
    crypto_metrics = PortfolioMetrics.objects.get(portfolio=crypto)

    forget_figures()
    refresh("--portfolio", str(equities.owner_id))  # the equities portfolio alone
    after_portfolio = stored(equities)
    assert not PortfolioMetrics.objects.filter(portfolio=crypto).exists()

    forget_figures()
    Quote.objects.filter(asset=assets["AAPL"]).update(price=Decimal("1"))  # the fetch finds AAPL's quote changed
    run = refresh("--all")  # incremental: only portfolios holding a changed price, both of them here
    assert run["items_updated"]["portfolios"] == 2
    after_incremental = stored(equities)

    assert differences(after_all, after_portfolio) == {}
    assert differences(after_all, after_incremental) == {}
    metrics, comparison = after_all
    # Its own calendar: weekdays, today's quotes included; not the crypto holder's weekends.
    assert metrics["as_of"] == date(2025, 6, 18)
    assert metrics["periods_per_year"] == 252
    assert metrics["observations"] > 240
    assert metrics["volatility"] is not None
    assert metrics["null_reasons"] == {}
    assert comparison["observations"] == metrics["observations"]
    assert comparison["beta"] is not None
    assert crypto_metrics.periods_per_year == 365
    assert crypto_metrics.observations > 340

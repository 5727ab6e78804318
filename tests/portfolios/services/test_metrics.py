"""Recalculating and storing portfolio metrics."""
from datetime import date
from decimal import Decimal

import pytest

from portfolios.models import PortfolioMetrics
from portfolios.services.metrics import recalculate_portfolio_metrics

START = date(2025, 3, 3)


@pytest.fixture
def two_assets(make_asset):
    return make_asset("AAA", [100, 110], start=START), make_asset("BBB", [200, 190], start=START)


@pytest.mark.django_db
def test_metrics_stored_for_a_portfolio(two_assets, make_portfolio):
    a, b = two_assets
    portfolio = make_portfolio({a: (10, 900), b: (5, 900)})

    assert recalculate_portfolio_metrics() == 1

    metrics = PortfolioMetrics.objects.get(portfolio=portfolio)
    # Yesterday 10 * 100 + 5 * 200 = 2000; today 10 * 110 + 5 * 190 = 2050.
    assert metrics.as_of == date(2025, 3, 4)
    assert metrics.market_value == Decimal("2050.00")
    assert metrics.cost == Decimal("1800.00")
    assert metrics.unrealised_pnl == Decimal("250.00")
    assert metrics.return_1d == pytest.approx(2050 / 2000 - 1)
    assert metrics.weights == {"AAA": pytest.approx(1100 / 2050, abs=1e-6), "BBB": pytest.approx(950 / 2050, abs=1e-6)}
    assert metrics.return_1m is None and metrics.return_1y is None
    assert metrics.volatility is None  # one daily return is not enough for a deviation
    assert metrics.max_drawdown == 0.0


@pytest.mark.django_db
def test_latest_quote_counts_as_today(two_assets, make_portfolio, make_quote):
    a, b = two_assets
    portfolio = make_portfolio({a: (10, 900), b: (5, 900)})
    make_quote(a, 121, date(2025, 3, 5))

    recalculate_portfolio_metrics(portfolio_ids=[portfolio.id])

    metrics = PortfolioMetrics.objects.get(portfolio=portfolio)
    assert metrics.as_of == date(2025, 3, 5)
    assert metrics.market_value == Decimal("2160.00")  # 10 * 121 + 5 * 190
    assert metrics.return_1d == pytest.approx(2160 / 2050 - 1)


@pytest.mark.django_db
def test_only_requested_portfolios_are_updated(two_assets, make_portfolio):
    a, b = two_assets
    requested = make_portfolio({a: (1, 100)}, name="Requested")
    untouched = make_portfolio({b: (1, 100)}, name="Untouched")

    assert recalculate_portfolio_metrics(portfolio_ids=[requested.id, 999_999]) == 1

    assert PortfolioMetrics.objects.filter(portfolio=requested).exists()
    assert not PortfolioMetrics.objects.filter(portfolio=untouched).exists()


@pytest.mark.django_db
def test_recalculating_overwrites_the_previous_figures(two_assets, make_portfolio):
    a, _ = two_assets
    portfolio = make_portfolio({a: (1, 100)})
    recalculate_portfolio_metrics()
    portfolio.holdings.update(quantity=3)

    recalculate_portfolio_metrics()

    assert PortfolioMetrics.objects.count() == 1
    assert PortfolioMetrics.objects.get(portfolio=portfolio).market_value == Decimal("330.00")


@pytest.mark.django_db
def test_progress_is_reported_per_chunk(two_assets, make_portfolio, settings):
    settings.REFRESH_METRICS_CHUNK = 2
    a, _ = two_assets
    for i in range(5):
        make_portfolio({a: (i + 1, 100)}, name=f"P{i}")
    progress = []

    assert recalculate_portfolio_metrics(on_progress=lambda done, total: progress.append((done, total))) == 5

    assert progress == [(2, 5), (4, 5), (5, 5)]


@pytest.mark.django_db
def test_stopping_in_progress_keeps_finished_chunks(two_assets, make_portfolio, settings):
    settings.REFRESH_METRICS_CHUNK = 2
    a, _ = two_assets
    portfolios = [make_portfolio({a: (i + 1, 100)}, name=f"P{i}") for i in range(5)]

    def cancel(done, total):
        raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError):
        recalculate_portfolio_metrics(on_progress=cancel)

    stored = set(PortfolioMetrics.objects.values_list("portfolio_id", flat=True))
    assert stored == {portfolios[0].id, portfolios[1].id}
    assert PortfolioMetrics.objects.get(portfolio=portfolios[1]).market_value == Decimal("220.00")


@pytest.mark.django_db
def test_portfolio_without_holdings_gets_zero_value(two_assets, make_portfolio):
    empty = make_portfolio(name="Empty")

    recalculate_portfolio_metrics()

    metrics = PortfolioMetrics.objects.get(portfolio=empty)
    assert metrics.market_value == Decimal("0.00") and metrics.return_1d is None and metrics.weights == {}

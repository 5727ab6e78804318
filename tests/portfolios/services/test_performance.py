"""Recalculating and storing portfolio metrics: valuation and performance figures (services/performance.py)."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from portfolios.models import PortfolioMetrics
from portfolios.services.performance import recalculate_portfolio_metrics

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
    assert metrics.return_1m is None
    assert metrics.return_1y is None
    assert metrics.volatility is None
    assert metrics.max_drawdown is None
    assert metrics.null_reasons["volatility"] == "fewer than 20 daily returns in the window"
    assert metrics.null_reasons["return_1y"] == "history does not reach back to the period's start"
    assert (metrics.window_start, metrics.window_end, metrics.observations) == (START, date(2025, 3, 4), 1)
    assert metrics.period_starts == {"return_1d": "2025-03-03"}
    assert (metrics.return_basis, metrics.periods_per_year, metrics.risk_free_rate) == ("total", 252, 0.04)
    assert metrics.unpriced_holdings == []


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
def test_unchanged_figures_keep_their_row_and_changed_ones_are_rewritten(two_assets, make_portfolio, row_versions):
    a, b = two_assets
    steady = make_portfolio({a: (1, 100)}, name="Steady")
    changed = make_portfolio({b: (1, 100)}, name="Changed")
    recalculate_portfolio_metrics()
    before = row_versions(PortfolioMetrics, "portfolio")
    changed.holdings.update(quantity=2)

    recalculate_portfolio_metrics()

    after = row_versions(PortfolioMetrics, "portfolio")
    assert after[steady.id] == before[steady.id]  # same figures: the row and its calculated_at untouched
    assert after[changed.id][0] > before[changed.id][0]
    if after[changed.id][1] is not None:
        assert after[changed.id][1] != before[changed.id][1]
    assert PortfolioMetrics.objects.get(portfolio=changed).market_value == Decimal("380.00")


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
    assert metrics.market_value == Decimal("0.00")
    assert metrics.return_1d is None
    assert metrics.weights == {}


@pytest.mark.django_db
def test_unpriced_holdings_are_left_out_of_value_and_cost_and_listed(two_assets, make_asset, make_portfolio):
    a, _ = two_assets
    unpriced = make_asset("NEW")  # no bar, no quote yet
    mixed = make_portfolio({a: (10, 900), unpriced: (3, 5000)}, name="Mixed")
    only_unpriced = make_portfolio({unpriced: (1, 100)}, name="Only unpriced")

    with time_machine.travel(datetime(2025, 3, 5, 12, tzinfo=UTC), tick=False):
        recalculate_portfolio_metrics()

    metrics = PortfolioMetrics.objects.get(portfolio=mixed)
    assert (metrics.market_value, metrics.cost, metrics.unrealised_pnl) == (
        Decimal("1100.00"),
        Decimal("900.00"),
        Decimal("200.00"),
    )
    assert metrics.unpriced_holdings == [{"symbol": "NEW", "since": "2025-03-05"}]
    assert metrics.weights == {"AAA": 1.0}
    assert metrics.return_1d == pytest.approx(0.1)
    # Never a silent 100% loss: nothing priced is worth nothing and cost nothing, and says why.
    alone = PortfolioMetrics.objects.get(portfolio=only_unpriced)
    assert (alone.market_value, alone.cost, alone.unrealised_pnl) == (Decimal("0.00"),) * 3
    assert alone.unpriced_holdings == [{"symbol": "NEW", "since": "2025-03-05"}]
    assert alone.return_1d is None
    assert alone.null_reasons["return_1d"] == "no priced holdings"
    assert alone.window_start is None
    assert alone.observations == 0
    assert alone.periods_per_year is None

    with time_machine.travel(datetime(2025, 3, 7, 12, tzinfo=UTC), tick=False):
        recalculate_portfolio_metrics()
    assert PortfolioMetrics.objects.get(portfolio=mixed).unpriced_holdings == [{"symbol": "NEW", "since": "2025-03-05"}]


@pytest.mark.django_db
def test_a_portfolio_whose_prices_stopped_long_ago_is_measured_over_its_own_last_year(make_asset, make_portfolio):
    days = [date(2021, 1, 4) + timedelta(days=i) for i in range(500)]
    old = make_asset("OLD", [100 * (1.01 if i % 3 else 0.985) ** i for i in range(500)], dates=days)
    new = make_asset("NEWER", [50 + i % 7 for i in range(30)], start=date(2025, 3, 3))
    stale = make_portfolio({old: (1, 100)}, name="Delisted")
    make_portfolio({new: (1, 50)}, name="Current")

    recalculate_portfolio_metrics()  # with a portfolio whose history ends in 2025
    together = PortfolioMetrics.objects.get(portfolio=stale)
    recalculate_portfolio_metrics(portfolio_ids=[stale.id])  # alone
    alone = PortfolioMetrics.objects.get(portfolio=stale)

    assert together.as_of == days[-1]
    assert together.window_end == days[-1]
    assert together.return_1y is not None
    assert together.volatility is not None
    assert together.window_start == date(2021, 5, 18)  # twelve months before its own last day
    for name in ("return_1y", "annualised_return", "volatility", "sharpe", "max_drawdown", "observations"):
        assert getattr(together, name) == getattr(alone, name), name

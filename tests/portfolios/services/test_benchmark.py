"""Recalculating and storing benchmark comparisons."""

from datetime import date, timedelta

import pytest

from portfolios.models import BenchmarkComparison
from portfolios.services.benchmark import recalculate_benchmark_comparisons

DATES = [date(2024, 12, 30), date(2024, 12, 31), date(2025, 1, 2), date(2025, 1, 3), date(2025, 1, 6)]
# Thirty weekdays: enough shared returns for co-movement figures.
LONG = [day for day in (date(2024, 12, 2) + timedelta(days=i) for i in range(40)) if day.weekday() < 5]


def path(start, returns):
    values = [start]
    for r in returns:
        values.append(values[-1] * (1 + r))
    return values


@pytest.fixture
def spy(make_asset):
    # Returns +1%, -2%, +2%, +1%.
    return make_asset("SPY", [200, 202, 197.96, 201.9192, 203.938392], dates=DATES)


@pytest.mark.django_db
def test_comparison_stored(spy, make_asset, make_portfolio):
    # Returns +2%, -1%, +3%, -1%.
    fund = make_asset("FUND", [100, 102, 100.98, 104.0094, 102.969306], dates=DATES)
    portfolio = make_portfolio({fund: (3, 250)})

    assert recalculate_benchmark_comparisons() == 1

    comparison = BenchmarkComparison.objects.get(portfolio=portfolio)
    assert comparison.benchmark_symbol == "SPY"
    assert comparison.return_basis == "total"
    assert comparison.as_of == date(2025, 1, 6)
    assert comparison.benchmark_return_1d == pytest.approx(0.01)
    assert comparison.excess_return_ytd == pytest.approx((0.99 * 1.03 * 0.99 - 1) - (0.98 * 1.02 * 1.01 - 1))
    assert comparison.excess_return_1y is None
    # Four shared returns: no co-movement figure, and the reason why.
    assert comparison.beta is None
    assert comparison.tracking_error is None
    assert comparison.null_reasons["beta"] == "fewer than 20 daily returns shared with the benchmark"
    assert (comparison.window_start, comparison.window_end, comparison.observations) == (DATES[0], DATES[-1], 4)
    assert comparison.asset_correlations == {"FUND": None}


@pytest.mark.django_db
def test_unchanged_comparisons_keep_their_row_and_changed_ones_are_rewritten(
    spy, make_asset, make_portfolio, row_versions
):
    fund = make_asset("FUND", [100, 102, 100.98, 104.0094, 102.969306], dates=DATES)
    steady = make_portfolio({fund: (3, 250)}, name="Steady")
    changed = make_portfolio({fund: (3, 250)}, name="Changed")
    recalculate_benchmark_comparisons()
    before = row_versions(BenchmarkComparison, "portfolio")
    changed.holdings.create(asset=spy, quantity=1, cost_basis=200)

    recalculate_benchmark_comparisons()

    after = row_versions(BenchmarkComparison, "portfolio")
    assert after[steady.id] == before[steady.id]
    assert after[changed.id][0] > before[changed.id][0]
    assert BenchmarkComparison.objects.get(portfolio=changed).asset_correlations == {"FUND": None, "SPY": None}


@pytest.mark.django_db
def test_co_movement_over_enough_shared_days(make_asset, make_portfolio):
    spy = make_asset("SPY", path(200, [0.01, -0.02, 0.02, 0.01] * 8)[: len(LONG)], dates=LONG)
    fund = make_asset("FUND", path(100, [0.02, -0.01, 0.03, -0.01] * 8)[: len(LONG)], dates=LONG)
    portfolio = make_portfolio({fund: (3, 250), spy: (1, 200)})

    recalculate_benchmark_comparisons()

    comparison = BenchmarkComparison.objects.get(portfolio=portfolio)
    assert comparison.observations == len(LONG) - 1 >= 20
    assert comparison.beta is not None
    assert comparison.correlation is not None
    assert comparison.tracking_error is not None
    assert comparison.tracking_error > 0
    assert comparison.information_ratio is not None
    no_history = "history does not reach back to the period's start"
    assert comparison.alpha is None
    assert comparison.null_reasons == {
        "alpha": "less than a year of history",
        "benchmark_return_1y": no_history,
        "excess_return_1y": no_history,
    }
    assert set(comparison.asset_correlations) == {"FUND", "SPY"}
    assert comparison.asset_correlations["SPY"] == 1.0


@pytest.mark.django_db
def test_holding_the_benchmark_itself(make_asset, make_portfolio):
    spy = make_asset("SPY", path(200, [0.01, -0.02, 0.02, 0.01] * 8)[: len(LONG)], dates=LONG)
    portfolio = make_portfolio({spy: (1, 200)})

    recalculate_benchmark_comparisons(portfolio_ids=[portfolio.id])

    comparison = BenchmarkComparison.objects.get(portfolio=portfolio)
    assert comparison.beta == pytest.approx(1.0)
    assert comparison.correlation == pytest.approx(1.0)
    assert comparison.tracking_error == 0.0
    assert comparison.information_ratio is None
    assert comparison.null_reasons["information_ratio"] == "tracking error is zero"
    assert comparison.excess_return_ytd == 0.0
    assert comparison.asset_correlations == {"SPY": pytest.approx(1.0)}


@pytest.mark.django_db
def test_only_requested_portfolios_and_progress(spy, make_portfolio, settings):
    settings.REFRESH_METRICS_CHUNK = 1
    portfolios = [make_portfolio({spy: (i + 1, 200)}, name=f"P{i}") for i in range(3)]
    progress = []

    stored = recalculate_benchmark_comparisons(
        portfolio_ids=[portfolios[0].id, portfolios[2].id],
        on_progress=lambda done, total: progress.append((done, total)),
    )

    assert stored == 2
    assert progress == [(1, 2), (2, 2)]
    assert set(BenchmarkComparison.objects.values_list("portfolio_id", flat=True)) == {
        portfolios[0].id,
        portfolios[2].id,
    }


@pytest.mark.django_db
def test_benchmark_without_bars_stores_nothing(make_asset, make_portfolio, settings):
    settings.BENCHMARK_SYMBOL = "QQQ"
    make_asset("QQQ")
    fund = make_asset("FUND", [1, 2], dates=DATES[:2])
    make_portfolio({fund: (1, 1)})

    assert recalculate_benchmark_comparisons() == 0
    assert not BenchmarkComparison.objects.exists()


@pytest.mark.django_db
def test_unknown_benchmark_stores_nothing(make_asset, make_portfolio, settings):
    settings.BENCHMARK_SYMBOL = "NOPE"
    fund = make_asset("FUND", [1, 2], dates=DATES[:2])
    make_portfolio({fund: (1, 1)})

    assert recalculate_benchmark_comparisons() == 0

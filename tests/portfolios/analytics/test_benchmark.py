"""Benchmark-relative figures against values worked out by hand, on shared days and with minimums."""

import math

import numpy as np
import pytest

from portfolios.analytics import nulls
from portfolios.analytics.benchmark import asset_correlations, compare_to_benchmark

# Portfolio returns +2%, -1%, +3%, -1% and benchmark returns +1%, -2%, +2%, +1%, five times over.
PORTFOLIO_RETURNS = np.tile([0.02, -0.01, 0.03, -0.01], 5)
BENCH_RETURNS = np.tile([0.01, -0.02, 0.02, 0.01], 5)
DATES = np.busday_offset(np.datetime64("2025-01-02"), np.arange(21))


def path(returns, start=100.0):
    return start * np.cumprod(np.concatenate([[1.0], 1 + np.asarray(returns)]))


PORTFOLIO = path(PORTFOLIO_RETURNS)
BENCH = path(BENCH_RETURNS, 200.0)


def compare(values, bench=BENCH, dates=DATES, *, calendar=None, bench_traded=None, risk_free_rate=0.0):
    values = np.atleast_2d(values)
    calendar = np.ones(values.shape, bool) if calendar is None else np.atleast_2d(calendar)
    bench_traded = np.ones(len(dates), bool) if bench_traded is None else bench_traded
    figures = compare_to_benchmark(values, calendar, bench, bench_traded, dates, risk_free_rate=risk_free_rate)
    return figures.columns, figures.null_reasons()


def test_beta_correlation_tracking_error_and_information_ratio_by_hand():
    columns, reasons = compare(PORTFOLIO)

    # Deviations from the means (0.0075 and 0.005), each pattern five times over, ddof=1.
    cov = 5 * (0.0125 * 0.005 + 0.0175 * 0.025 + 0.0225 * 0.015 - 0.0175 * 0.005) / 19
    var_b = 5 * (0.005**2 + 0.025**2 + 0.015**2 + 0.005**2) / 19
    var_p = 5 * (0.0125**2 + 0.0175**2 + 0.0225**2 + 0.0175**2) / 19
    assert columns["beta"][0] == pytest.approx(cov / var_b)
    assert columns["beta"][0] == pytest.approx(0.833333, abs=1e-6)
    assert columns["correlation"][0] == pytest.approx(cov / math.sqrt(var_p * var_b))
    # Differences 0.01, 0.01, 0.01, -0.02: mean 0.0025, squared deviations 0.000675 per four.
    tracking = math.sqrt(5 * 0.000675 / 19) * math.sqrt(252)
    assert columns["tracking_error"][0] == pytest.approx(tracking)
    assert columns["information_ratio"][0] == pytest.approx(0.0025 * 252 / tracking)
    assert columns["observations"][0] == 20
    assert columns["periods_per_year"][0] == 252
    assert columns["window_start"][0] == DATES[0]
    assert columns["window_end"][0] == DATES[-1]
    assert math.isnan(columns["alpha"][0])
    assert reasons[0]["alpha"] == nulls.LESS_THAN_A_YEAR


def test_benchmark_and_excess_returns_over_the_portfolios_own_periods():
    columns, reasons = compare(PORTFOLIO)

    assert columns["benchmark_return_1d"][0] == pytest.approx(0.01)
    assert columns["as_of"][0] == DATES[-1]
    assert math.isnan(columns["excess_return_1y"][0])
    assert reasons[0]["excess_return_1y"] == nulls.NO_HISTORY
    assert reasons[0]["benchmark_return_ytd"] == nulls.NO_HISTORY  # history starts in 2025


def test_alpha_over_a_year_by_hand():
    days = np.busday_offset(np.datetime64("2024-01-02"), np.arange(300))
    bench_returns = np.resize([0.01, -0.02, 0.02, 0.01], 299)
    own_returns = 0.0004 + 1.5 * bench_returns + np.resize([0.001, -0.001, 0.0005, -0.0005], 299)

    columns, reasons = compare(path(own_returns), path(bench_returns), days, risk_free_rate=0.0252)

    # The window starts at the last day on or before twelve months before the last one.
    start = np.searchsorted(days, np.datetime64("2024-02-23"), side="right") - 1
    assert days[-1] == np.datetime64("2025-02-24")
    assert columns["window_start"][0] == days[start]
    rp, rb = own_returns[start:], bench_returns[start:]
    beta = np.cov(rp, rb, ddof=1)[0, 1] / rb.var(ddof=1)
    daily = (rp.mean() - 0.0001) - beta * (rb.mean() - 0.0001)  # 0.0252 / 252 a day
    assert columns["observations"][0] == len(rp)
    assert columns["beta"][0] == pytest.approx(beta)
    assert columns["alpha"][0] == pytest.approx((1 + daily) ** 252 - 1)
    assert "alpha" not in reasons[0]


def test_a_portfolio_observed_at_weekends_is_compared_over_the_benchmarks_intervals():
    days = np.datetime64("2025-01-06") + np.arange(70)
    weekday = np.is_busday(days)
    rng = np.random.default_rng(3)
    own = 100 * np.cumprod(1 + rng.normal(0, 0.01, len(days)))  # moves every day, weekends too
    bench_on_weekdays = 200 * np.cumprod(1 + rng.normal(0, 0.01, int(weekday.sum())))
    bench = np.full(len(days), np.nan)
    bench[weekday] = bench_on_weekdays
    bench = bench[np.maximum.accumulate(np.where(weekday, np.arange(len(days)), 0))]  # carried over weekends

    everyday, _ = compare(own, bench, days, bench_traded=weekday)
    weekdays_only, _ = compare(own[weekday], bench_on_weekdays, days[weekday])

    # Friday to Monday is one return on both sides: the same figures as on weekdays alone.
    for name in ("beta", "correlation", "tracking_error", "information_ratio", "observations", "periods_per_year"):
        assert everyday[name][0] == pytest.approx(weekdays_only[name][0], rel=1e-12), name
    assert everyday["periods_per_year"][0] == 252


def test_portfolio_that_is_the_benchmark():
    columns, reasons = compare(BENCH * 3)

    assert columns["beta"][0] == pytest.approx(1.0)
    assert columns["correlation"][0] == pytest.approx(1.0)
    assert columns["tracking_error"][0] == 0.0
    assert math.isnan(columns["information_ratio"][0])
    assert reasons[0]["information_ratio"] == nulls.ZERO_TRACKING_ERROR


def test_a_flat_benchmark_has_no_beta_and_a_flat_portfolio_no_correlation():
    flat_bench, bench_reasons = compare(PORTFOLIO, np.full(21, 200.0))
    flat_own, own_reasons = compare(np.full(21, 50.0))

    assert math.isnan(flat_bench["beta"][0])
    assert bench_reasons[0]["beta"] == nulls.FLAT_BENCHMARK
    assert bench_reasons[0]["correlation"] == nulls.FLAT_BENCHMARK
    assert flat_own["beta"][0] == pytest.approx(0.0, abs=1e-12)
    assert own_reasons[0]["correlation"] == nulls.FLAT_PORTFOLIO


def test_too_few_shared_returns_and_a_shorter_portfolio_history():
    _short, reasons = compare(PORTFOLIO[:10], BENCH[:10], DATES[:10])
    late = np.concatenate([[np.nan] * 5, PORTFOLIO[5:]])
    late_figures, late_reasons = compare(late)

    assert reasons[0]["beta"] == reasons[0]["tracking_error"] == nulls.TOO_FEW_SHARED
    assert late_figures["window_start"][0] == DATES[5]
    assert late_figures["observations"][0] == 15
    assert late_reasons[0]["correlation"] == nulls.TOO_FEW_SHARED


def test_asset_correlations():
    mirror = path(-BENCH_RETURNS)  # the benchmark's returns negated
    closes = np.array([BENCH / 4, mirror, np.full(21, 7.0), np.concatenate([[np.nan] * 10, BENCH[10:]])])

    correlations = asset_correlations(closes, np.ones(closes.shape, bool), BENCH, np.ones(21, bool), DATES)

    assert correlations[0] == pytest.approx(1.0)
    assert correlations[1] == pytest.approx(-1.0)
    assert math.isnan(correlations[2])  # a flat price has no correlation
    assert math.isnan(correlations[3])  # ten returns are too few

"""Benchmark-relative figures against values worked out by hand."""
import math

import numpy as np
import pytest

from portfolios.analytics.benchmark import asset_correlations, compare_to_benchmark

DATES = np.array(["2024-12-30", "2024-12-31", "2025-01-02", "2025-01-03", "2025-01-06"], dtype="datetime64[D]")
# Portfolio returns +2%, -1%, +3%, -1%; benchmark returns +1%, -2%, +2%, +1%.
PORTFOLIO = np.array([[100.0, 102.0, 100.98, 104.0094, 102.969306]])
BENCH = np.array([200.0, 202.0, 197.96, 201.9192, 203.938392])


def test_beta_correlation_and_tracking_error_by_hand():
    figures = compare_to_benchmark(PORTFOLIO, BENCH, DATES)

    # Deviations from the means (0.0075 and 0.005):
    dp = [0.0125, -0.0175, 0.0225, -0.0175]
    db = [0.005, -0.025, 0.015, 0.005]
    cov = sum(p * b for p, b in zip(dp, db)) / 3  # 0.00025
    var_b = sum(b * b for b in db) / 3             # 0.0003
    var_p = sum(p * p for p in dp) / 3             # 0.000425
    assert cov == pytest.approx(0.00025) and var_b == pytest.approx(0.0003)
    assert figures["beta"][0] == pytest.approx(cov / var_b)
    assert figures["beta"][0] == pytest.approx(0.833333, abs=1e-6)
    assert figures["correlation"][0] == pytest.approx(cov / math.sqrt(var_p * var_b))
    # Differences 0.01, 0.01, 0.01, -0.02: mean 0.0025, sample variance 0.000675 / 3.
    assert figures["tracking_error"][0] == pytest.approx(math.sqrt(0.000675 / 3) * math.sqrt(252))
    assert figures["tracking_error"][0] == pytest.approx(0.015 * math.sqrt(252))


def test_benchmark_and_excess_returns():
    figures = compare_to_benchmark(PORTFOLIO, BENCH, DATES)

    assert figures["benchmark_return_1d"][0] == pytest.approx(0.01)
    benchmark_ytd = 0.98 * 1.02 * 1.01 - 1
    assert figures["benchmark_return_ytd"][0] == pytest.approx(benchmark_ytd)
    assert figures["excess_return_ytd"][0] == pytest.approx((0.99 * 1.03 * 0.99 - 1) - benchmark_ytd)
    assert math.isnan(figures["excess_return_1y"][0])  # less than a year of history
    assert math.isnan(figures["benchmark_return_1m"][0])


def test_portfolio_that_is_the_benchmark():
    figures = compare_to_benchmark(np.array([BENCH * 3]), BENCH, DATES)

    assert figures["beta"][0] == pytest.approx(1.0)
    assert figures["correlation"][0] == pytest.approx(1.0)
    assert figures["tracking_error"][0] == pytest.approx(0.0, abs=1e-12)
    assert figures["excess_return_ytd"][0] == pytest.approx(0.0, abs=1e-12)


def test_shorter_portfolio_history_is_compared_over_shared_days():
    values = np.array([[np.nan, 102.0, 100.98, 104.0094, 102.969306]])

    figures = compare_to_benchmark(values, BENCH, DATES)

    # Shared returns: portfolio -1%, +3%, -1%; benchmark -2%, +2%, +1%.
    rp, rb = [-0.01, 0.03, -0.01], [-0.02, 0.02, 0.01]
    mp, mb = sum(rp) / 3, sum(rb) / 3
    cov = sum((p - mp) * (b - mb) for p, b in zip(rp, rb)) / 2
    var_b = sum((b - mb) ** 2 for b in rb) / 2
    assert figures["beta"][0] == pytest.approx(cov / var_b)


def test_asset_correlations():
    mirror = 100 * np.cumprod([1, 0.99, 1.02, 0.98, 0.99])  # returns -1%, +2%, -2%, -1%: the benchmark's negated
    closes = np.array([BENCH / 4, mirror, np.full(5, 7.0)])

    correlations = asset_correlations(closes, BENCH)

    assert correlations[0] == pytest.approx(1.0)
    assert correlations[1] == pytest.approx(-1.0)
    assert math.isnan(correlations[2])  # a flat price has no correlation

"""How portfolio and asset value series move against a benchmark's, over the same periods.

Period returns are compared over each portfolio's own periods (windows.one_year_window),
the benchmark's value at a day being its last close on or before it. Co-movement figures
use the days of the portfolio's one-year window on which the benchmark traded too, with
returns of both sides from one such day to the next: a portfolio observed at weekends is
compared over the benchmark's intervals (Friday to Monday), never against a weekend the
benchmark did not trade. Sample (ddof=1) statistics throughout; see docs/figures.md.
"""

import numpy as np

from .moments import masked_std, paired_moments
from .nulls import (
    FLAT,
    FLAT_BENCHMARK,
    FLAT_PORTFOLIO,
    LESS_THAN_A_YEAR,
    MIN_RETURNS,
    NO_BENCHMARK_PRICE,
    NO_HISTORY,
    NO_VALUE,
    TOO_FEW_SHARED,
    ZERO_TRACKING_ERROR,
    FigureSet,
    null_where,
)
from .windows import first_true, interval_returns, one_year_window, periods_per_year, take_rows

FIGURES = (
    "benchmark_return_1d",
    "benchmark_return_1m",
    "benchmark_return_ytd",
    "benchmark_return_1y",
    "excess_return_1y",
    "excess_return_ytd",
    "beta",
    "alpha",
    "correlation",
    "tracking_error",
    "information_ratio",
)


def compare_to_benchmark(
    values: np.ndarray,
    calendar: np.ndarray,
    bench: np.ndarray,
    bench_traded: np.ndarray,
    dates: np.ndarray,
    *,
    risk_free_rate: float,
) -> FigureSet:
    """Benchmark-relative figures for each row of `values` against `bench`, with windows and null reasons.

    `values` and `calendar` are as in performance.performance; `bench` is the benchmark's
    forward-filled closes on the same axis and `bench_traded` the days it traded. Columns:
    FIGURES; as_of (the row's last observation, where its period returns end); window_start,
    window_end, observations (daily returns shared with the benchmark) and periods_per_year of
    the shared days.
    """
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    bench = np.asarray(bench, dtype=np.float64)
    window = one_year_window(values, calendar, dates)
    no_value = window.end < 0
    figures = FigureSet()
    bench_last = _bench_at(bench, window.end)
    for name, start in window.references.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            own = take_rows(values, window.end) / take_rows(values, start) - 1.0
            theirs = bench_last / _bench_at(bench, start) - 1.0
        rules = [(no_value, NO_VALUE), (start < 0, NO_HISTORY), (np.ones(len(start), bool), NO_BENCHMARK_PRICE)]
        theirs = figures.add(f"benchmark_{name}", null_where(theirs, start < 0), rules)
        if name in ("return_1y", "return_ytd"):
            figures.add(f"excess_{name}", null_where(own - theirs, start < 0), rules)

    shared = window.inside & (np.asarray(bench_traded, bool) & np.isfinite(bench) & (bench > 0))[None, :]
    rp, paired = interval_returns(values, shared)
    rb, _ = interval_returns(bench, shared)
    rb = np.where(paired, rb, np.nan)
    count = paired.sum(axis=1)
    per_year = periods_per_year(shared, dates)
    first, from_end = first_true(shared), first_true(shared[:, ::-1])
    last = np.where(from_end >= 0, shared.shape[1] - 1 - from_end, -1)
    figures.columns.update(
        as_of=window.day(window.end),
        window_start=window.day(first),
        window_end=window.day(last),
        observations=count,
        periods_per_year=per_year,
    )
    co_movement(
        rp,
        rb,
        count,
        per_year=per_year,
        no_value=no_value,
        full_year=window.full_year,
        figures=figures,
        risk_free_rate=risk_free_rate,
    )
    return figures


def _bench_at(bench: np.ndarray, index: np.ndarray) -> np.ndarray:
    """The benchmark's value at each index (NaN at -1)."""
    if not len(bench):
        return np.full(index.shape, np.nan)
    return np.where(index >= 0, bench[np.maximum(index, 0)], np.nan)


def co_movement(
    rp: np.ndarray,
    rb: np.ndarray,
    count: np.ndarray,
    *,
    per_year: np.ndarray,
    no_value: np.ndarray,
    full_year: np.ndarray,
    figures: FigureSet,
    risk_free_rate: float,
) -> None:
    """Beta, alpha, correlation, tracking error and information ratio of paired daily returns.

    With P = periods_per_year and t = risk_free_rate / P: beta = cov(rp, rb) / var(rb);
    correlation = cov / sqrt(var(rp) var(rb)); alpha = (1 + mean(rp - t) - beta * mean(rb - t))
    ^ P - 1 (empyrical's); tracking error = std(rp - rb, ddof=1) * sqrt(P); information ratio
    = mean(rp - rb) * P / tracking error.
    """
    moments = paired_moments(rp, rb)
    active = rp - rb  # NaN exactly where the pair is not (count is the pairs per row)
    mean_active, spread, _ = masked_std(active, ~np.isnan(active))
    target = risk_free_rate / per_year
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        beta = moments["cov"] / moments["var_y"]
        correlation = moments["cov"] / np.sqrt(moments["var_x"] * moments["var_y"])
        alpha = (1.0 + (moments["mean_x"] - target) - beta * (moments["mean_y"] - target)) ** per_year - 1.0
        information = mean_active * per_year / (spread * np.sqrt(per_year))
    few = (count < MIN_RETURNS) | no_value
    flat_bench = ~(np.sqrt(moments["var_y"]) >= FLAT)
    flat_own = ~(np.sqrt(moments["var_x"]) >= FLAT)
    no_spread = spread < FLAT
    too_few = [(no_value, NO_VALUE), (few, TOO_FEW_SHARED)]
    figures.add("beta", null_where(beta, few | flat_bench), [*too_few, (flat_bench, FLAT_BENCHMARK)])
    figures.add(
        "alpha",
        null_where(alpha, few | flat_bench | ~full_year),
        [(no_value, NO_VALUE), (~full_year, LESS_THAN_A_YEAR), (few, TOO_FEW_SHARED), (flat_bench, FLAT_BENCHMARK)],
    )
    figures.add(
        "correlation",
        null_where(correlation, few | flat_bench | flat_own),
        [*too_few, (flat_bench, FLAT_BENCHMARK), (flat_own, FLAT_PORTFOLIO)],
    )
    figures.add("tracking_error", null_where(np.where(no_spread, 0.0, spread) * np.sqrt(per_year), few), too_few)
    figures.add(
        "information_ratio", null_where(information, few | no_spread), [*too_few, (no_spread, ZERO_TRACKING_ERROR)]
    )


def asset_correlations(
    closes: np.ndarray, traded: np.ndarray, bench: np.ndarray, bench_traded: np.ndarray, dates: np.ndarray
) -> np.ndarray:
    """Each asset's correlation with the benchmark (assets x days closes), on its own calendar as a
    portfolio holding only it would be; NaN under the same minimums."""
    figures = compare_to_benchmark(closes, traded, bench, bench_traded, dates, risk_free_rate=0.0)
    return figures.columns["correlation"]

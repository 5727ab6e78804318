"""How portfolio and asset return series move against a benchmark's.

Both sides share one date axis. Co-movement figures use the last 252 daily simple returns
on the days both sides have a value (all shared days when fewer), with sample (ddof=1)
statistics throughout.
"""
import numpy as np

from .moments import TRADING_DAYS, finite_or_nan, masked_std, paired_moments
from .performance import period_returns, window_returns


def correlation_from(moments: dict[str, np.ndarray]) -> np.ndarray:
    """Pearson correlation cov(x, y) / sqrt(var(x) * var(y)); NaN when either side is flat."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return finite_or_nan(moments["cov"] / np.sqrt(moments["var_x"] * moments["var_y"]))


def compare_to_benchmark(values: np.ndarray, bench: np.ndarray, dates: np.ndarray) -> dict[str, np.ndarray]:
    """Benchmark-relative figures for each row of `values` (portfolios x days) against `bench` (days).

    benchmark_return_1d/1m/ytd/1y: the benchmark's period returns, as in performance.period_returns.
    excess_return_1y, excess_return_ytd: portfolio return - benchmark return over the period.
    beta = cov(rp, rb) / var(rb); correlation = Pearson(rp, rb);
    tracking_error = std(rp - rb, ddof=1) * sqrt(252).
    """
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    bench = np.asarray(bench, dtype=np.float64)
    portfolio = period_returns(values, dates)
    benchmark = {name: value[0] for name, value in period_returns(bench[None, :], dates).items()}
    rp = window_returns(values)
    rb = window_returns(bench[None, :])[0]
    moments = paired_moments(rp, rb)
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = finite_or_nan(moments["cov"] / moments["var_y"])
    rows = values.shape[0]
    return {
        **{f"benchmark_{name}": np.full(rows, value) for name, value in benchmark.items()},
        "excess_return_1y": portfolio["return_1y"] - benchmark["return_1y"],
        "excess_return_ytd": portfolio["return_ytd"] - benchmark["return_ytd"],
        "beta": beta,
        "correlation": correlation_from(moments),
        "tracking_error": masked_std(rp - rb[None, :]) * np.sqrt(TRADING_DAYS),
    }


def asset_correlations(close_matrix: np.ndarray, bench: np.ndarray) -> np.ndarray:
    """Pearson correlation of each asset's last 252 daily returns (assets x days closes) with the benchmark's."""
    returns = window_returns(np.asarray(close_matrix, dtype=np.float64))
    bench_returns = window_returns(np.asarray(bench, dtype=np.float64)[None, :])[0]
    return correlation_from(paired_moments(returns, bench_returns))

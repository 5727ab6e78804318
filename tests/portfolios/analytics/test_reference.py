"""Every figure empyrical-reloaded also computes, checked against it on random series.

Series have gaps (days a portfolio is not observed on, which the engine skips) and crashes.
Conventions are matched explicitly: empyrical gets the returns from one observation to the
next over our window (the last 12 months: from the last observation on or before 12 months
before the last one), annualisation 252 on a weekday calendar and 365 when a weekend is
observed, and the risk-free rate as a daily rate (annual / periods per year).
"""

import calendar
import math
from datetime import date, timedelta

import empyrical
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from portfolios.analytics import nulls
from portfolios.analytics.benchmark import compare_to_benchmark
from portfolios.analytics.performance import performance

RELATIVE = 1e-9
ABSOLUTE = 1e-12  # figures at zero: a relative error means nothing there
# Derandomised so that CI sees the same 60 cases every run; derandomize=False explores afresh.
BOUNDED = settings(
    max_examples=60, deadline=timedelta(seconds=2), derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)

daily_return = st.one_of(
    st.floats(-0.2, 0.2, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.5, -0.8, -0.95, 1.5]),  # flat days, crashes, a spike
)


@st.composite
def market(draw):
    """An axis of days, a portfolio and a benchmark path on it, and the days each is observed on."""
    days = draw(st.integers(22, 420))
    weekends = draw(st.booleans())
    first = date(2023, 1, 2) + timedelta(days=draw(st.integers(0, 300)))
    dates = (
        np.datetime64(first) + np.arange(days)
        if weekends
        else np.busday_offset(np.datetime64(first), np.arange(days), roll="forward")
    )
    own = 100 * np.cumprod(1 + draw(arrays(np.float64, days, elements=daily_return)))
    bench = 50 * np.cumprod(1 + draw(arrays(np.float64, days, elements=daily_return)))
    observed = draw(arrays(bool, days, elements=st.sampled_from([True] * 6 + [False])))
    bench_traded = draw(arrays(bool, days, elements=st.sampled_from([True] * 8 + [False])))
    assume(min(own.min(), bench.min()) > 1e-100)  # a run of crashes that reaches zero is no longer a price
    return dates, own, observed, bench, bench_traded, draw(st.floats(0.0, 0.08))


def carried(path: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """The path as the price history holds it: each observation carried over the days after it."""
    index = np.maximum.accumulate(np.where(observed, np.arange(len(path)), -1))
    return np.where(index >= 0, path[np.maximum(index, 0)], np.nan)


def twelve_months_before(day: date) -> date:
    return date(day.year - 1, day.month, min(day.day, calendar.monthrange(day.year - 1, day.month)[1]))


def window(dates: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, bool]:
    """Our window's observed days, by hand, and whether it is a full year."""
    days = np.flatnonzero(observed)
    before = days[dates[days] <= np.datetime64(twelve_months_before(dates[days[-1]].item()))]
    start = before[-1] if len(before) else days[0]
    return days[days >= start], bool(len(before))


def per_year(dates: np.ndarray) -> int:
    return 365 if (~np.is_busday(dates, weekmask="1111100")).any() else 252


def step_returns(path: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Returns from each of the days to the next one."""
    return path[days[1:]] / path[days[:-1]] - 1


def same(ours: float, theirs: float) -> bool:
    return math.isclose(ours, theirs, rel_tol=RELATIVE, abs_tol=ABSOLUTE)


def check(name: str, ours: float, theirs: float, reason: str, *, allowed: dict[str, bool]) -> None:
    """ours == theirs, or ours is null for a reason that holds here (an overflow is not calculable)."""
    if math.isnan(ours):
        overflow = reason == nulls.NOT_CALCULABLE and not np.isfinite(theirs)
        assert overflow or allowed.get(reason), (name, reason, theirs)
    else:
        assert np.isfinite(theirs), (name, ours, theirs)
        assert same(ours, theirs), (name, ours, theirs)


# The reference computations divide by zero on degenerate series (and say so); ours must not.
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@BOUNDED
@given(market())
def test_performance_figures_match_empyrical(case):
    dates, own, observed, _, _, rate = case
    if observed.sum() < 2:
        return
    figures = performance(carried(own, observed)[None, :], observed[None, :], dates, risk_free_rate=rate)
    got, why = (
        {name: float(column[0]) for name, column in figures.columns.items() if column.dtype.kind == "f"},
        {name: reasons[0] for name, reasons in figures.reasons.items()},
    )
    days, full_year = window(dates, observed)
    returns = step_returns(own, days)
    periods = per_year(dates[days])
    target = rate / periods
    few = len(returns) < nulls.MIN_RETURNS
    assert figures.columns["observations"][0] == len(returns)
    assert figures.columns["periods_per_year"][0] == periods
    assert figures.columns["window_start"][0] == dates[days[0]]
    assert figures.columns["window_end"][0] == dates[days[-1]]

    deviation = returns.std(ddof=1) if len(returns) > 1 else 0.0
    below = np.minimum(returns - target, 0.0)
    flat, no_downside = deviation < nulls.FLAT, math.sqrt((below**2).mean()) < nulls.FLAT if len(returns) else True
    drawdown = empyrical.max_drawdown(returns) if len(returns) else 0.0
    allowed = {
        nulls.TOO_FEW_RETURNS: few,
        nulls.LESS_THAN_A_YEAR: not full_year,
        nulls.NO_RETURNS: not len(returns),
        nulls.ZERO_VOLATILITY: flat,
        nulls.ZERO_DOWNSIDE: no_downside,
        nulls.NO_DRAWDOWN: drawdown > -nulls.FLAT,
    }
    check(
        "cumulative_return",
        got["cumulative_return"],
        empyrical.cum_returns_final(returns),
        why["cumulative_return"],
        allowed=allowed,
    )
    check(
        "annualised_return",
        got["annualised_return"],
        empyrical.annual_return(returns, annualization=periods),
        why["annualised_return"],
        allowed=allowed,
    )
    if full_year:
        check("return_1y", got["return_1y"], empyrical.cum_returns_final(returns), why["return_1y"], allowed=allowed)
    volatility = empyrical.annual_volatility(returns, annualization=periods)
    if got["volatility"] == 0.0:  # a flat series: zero, where empyrical keeps the rounding residue
        assert flat
        assert volatility < nulls.FLAT * math.sqrt(periods)
    else:
        check("volatility", got["volatility"], volatility, why["volatility"], allowed=allowed)
    downside = empyrical.downside_risk(returns, required_return=target, annualization=periods)
    if got["downside_deviation"] == 0.0:  # no day below the target: zero, where empyrical keeps the residue
        assert no_downside
        assert downside < nulls.FLAT * math.sqrt(periods)
    else:
        check(
            "downside_deviation",
            got["downside_deviation"],
            downside,
            why["downside_deviation"],
            allowed={**allowed, nulls.ZERO_DOWNSIDE: False},
        )
    check(
        "sharpe",
        got["sharpe"],
        empyrical.sharpe_ratio(returns, risk_free=target, annualization=periods),
        why["sharpe"],
        allowed=allowed,
    )
    check(
        "sortino",
        got["sortino"],
        empyrical.sortino_ratio(returns, required_return=target, annualization=periods),
        why["sortino"],
        allowed=allowed,
    )
    check(
        "max_drawdown",
        got["max_drawdown"],
        0.0 if drawdown > -nulls.FLAT else drawdown,
        why["max_drawdown"],
        allowed=allowed,
    )
    check(
        "calmar", got["calmar"], empyrical.calmar_ratio(returns, annualization=periods), why["calmar"], allowed=allowed
    )


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@BOUNDED
@given(market())
def test_benchmark_figures_match_empyrical(case):
    dates, own, observed, bench, bench_traded, rate = case
    if observed.sum() < 2:
        return
    figures = compare_to_benchmark(
        carried(own, observed)[None, :],
        observed[None, :],
        carried(bench, bench_traded),
        bench_traded,
        dates,
        risk_free_rate=rate,
    )
    got = {name: float(column[0]) for name, column in figures.columns.items() if column.dtype.kind == "f"}
    why = {name: reasons[0] for name, reasons in figures.reasons.items()}
    days, full_year = window(dates, observed)
    shared = days[bench_traded[days]]
    rp, rb = step_returns(own, shared), step_returns(bench, shared)
    periods = per_year(dates[shared]) if len(shared) else 252
    target = rate / periods
    assert figures.columns["observations"][0] == len(rp)
    few = len(rp) < nulls.MIN_RETURNS
    flat_bench = len(rb) < 2 or rb.std(ddof=1) < nulls.FLAT
    flat_own = len(rp) < 2 or rp.std(ddof=1) < nulls.FLAT
    active = rp - rb
    no_spread = len(active) < 2 or active.std(ddof=1) < nulls.FLAT
    allowed = {
        nulls.TOO_FEW_SHARED: few,
        nulls.LESS_THAN_A_YEAR: not full_year,
        nulls.FLAT_BENCHMARK: flat_bench,
        nulls.FLAT_PORTFOLIO: flat_own,
        nulls.ZERO_TRACKING_ERROR: no_spread,
    }
    check("beta", got["beta"], empyrical.beta(rp, rb), why["beta"], allowed=allowed)
    check(
        "alpha",
        got["alpha"],
        empyrical.alpha(rp, rb, risk_free=target, annualization=periods),
        why["alpha"],
        allowed=allowed,
    )
    if got["tracking_error"] != 0.0:
        check(
            "tracking_error",
            got["tracking_error"],
            empyrical.annual_volatility(active, annualization=periods),
            why["tracking_error"],
            allowed=allowed,
        )
    # empyrical's excess Sharpe is the information ratio before annualisation: mean / std of active returns.
    check(
        "information_ratio",
        got["information_ratio"],
        empyrical.excess_sharpe(rp, rb) * math.sqrt(periods),
        why["information_ratio"],
        allowed=allowed,
    )
    # Not in empyrical: correlation against pandas.
    check("correlation", got["correlation"], pd.Series(rp).corr(pd.Series(rb)), why["correlation"], allowed=allowed)

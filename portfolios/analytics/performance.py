"""Returns, risk and drawdown of portfolio value series, each over its own one-year window.

`values` is (portfolios, days): today's priced holdings valued at each day's close, i.e. the
buy-and-hold history of the current positions, on the run's shared ascending date axis
`dates` (datetime64[D]); `calendar` marks the days each portfolio is observed on
(valuation.value_series). A value is NaN before every held asset had a price. Formulas,
windows, conventions and minimum observations are in docs/figures.md.
"""

import numpy as np

from .moments import masked_std, row_sum
from .nulls import (
    FLAT,
    LESS_THAN_A_YEAR,
    MIN_RETURNS,
    NO_DRAWDOWN,
    NO_HISTORY,
    NO_RETURNS,
    NO_VALUE,
    TOO_FEW_RETURNS,
    ZERO_DOWNSIDE,
    ZERO_VOLATILITY,
    FigureSet,
    null_where,
)
from .windows import Window, first_true, interval_returns, last_observed, one_year_window, take_rows

PERIOD_RETURNS = ("return_1d", "return_1m", "return_ytd", "return_1y")
FIGURES = (
    *PERIOD_RETURNS,
    "cumulative_return",
    "annualised_return",
    "volatility",
    "downside_deviation",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
)


def performance(values: np.ndarray, calendar: np.ndarray, dates: np.ndarray, *, risk_free_rate: float) -> FigureSet:
    """Every performance figure for each row of `values`, with its window and null reasons.

    Columns: FIGURES (floats); start_<period return> (the date each period return starts
    from); window_start, window_end, observations (daily returns in the window),
    periods_per_year; max_drawdown_peak, max_drawdown_trough, max_drawdown_recovery (dates).
    """
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    window = one_year_window(values, calendar, dates)
    figures = FigureSet()
    period_returns(values, window, figures)
    returns, observed = interval_returns(values, window.inside)
    count = observed.sum(axis=1)
    no_value = window.end < 0
    figures.columns.update(
        window_start=window.day(window.start),
        window_end=window.day(window.end),
        observations=count,
        periods_per_year=window.periods_per_year,
    )
    growth(values, window, count, figures)
    risk(
        returns,
        observed,
        count,
        per_year=window.periods_per_year,
        no_value=no_value,
        figures=figures,
        risk_free_rate=risk_free_rate,
    )
    worst = drawdown(values, window, count, figures)
    few = (count < MIN_RETURNS) | no_value
    annualised = figures.columns["annualised_return"]
    with np.errstate(divide="ignore", invalid="ignore"):
        calmar = annualised / -worst
    figures.add(
        "calmar",
        null_where(calmar, few | np.isnan(annualised) | (worst >= 0)),
        [
            (no_value, NO_VALUE),
            (~window.full_year, LESS_THAN_A_YEAR),
            (few, TOO_FEW_RETURNS),
            (worst >= 0, NO_DRAWDOWN),
        ],
    )
    return figures


def period_returns(values: np.ndarray, window: Window, figures: FigureSet) -> None:
    """Simple returns from each period's start to the last observation: last value / value at start - 1."""
    last = take_rows(values, window.end)
    for name, start in window.references.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            value = last / take_rows(values, start) - 1.0
        figures.add(name, null_where(value, start < 0), [(window.end < 0, NO_VALUE), (start < 0, NO_HISTORY)])
        figures.columns[f"start_{name}"] = window.day(start)


def growth(values: np.ndarray, window: Window, count: np.ndarray, figures: FigureSet) -> None:
    """Cumulative return over the window, and its compound annual rate when the window is a full year.

    cumulative = V_end / V_start - 1; annualised = (1 + cumulative) ^ (periods_per_year /
    observations) - 1, empyrical's annual_return.
    """
    no_value, none = window.end < 0, count < 1
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        cumulative = take_rows(values, window.end) / take_rows(values, window.start) - 1.0
        annualised = (1.0 + cumulative) ** (window.periods_per_year / np.maximum(count, 1)) - 1.0
    figures.add("cumulative_return", null_where(cumulative, none), [(no_value, NO_VALUE), (none, NO_RETURNS)])
    figures.add(
        "annualised_return",
        null_where(annualised, none | ~window.full_year),
        [(no_value, NO_VALUE), (~window.full_year, LESS_THAN_A_YEAR), (none, NO_RETURNS)],
    )


def risk(
    returns: np.ndarray,
    observed: np.ndarray,
    count: np.ndarray,
    *,
    per_year: np.ndarray,
    no_value: np.ndarray,
    figures: FigureSet,
    risk_free_rate: float,
) -> None:
    """Volatility, downside deviation, Sharpe and Sortino ratios from the window's daily returns.

    With t = risk_free_rate / periods_per_year the daily target and P = periods_per_year:
    volatility = std(r, ddof=1) * sqrt(P); downside deviation = sqrt(mean(min(r - t, 0)^2)) *
    sqrt(P); Sharpe = (mean(r) - t) / std(r, ddof=1) * sqrt(P); Sortino = (mean(r) - t) * P /
    downside deviation. A deviation below FLAT per day is zero, and no ratio is taken over it.
    """
    target = risk_free_rate / per_year
    mean, deviation, _ = masked_std(returns, observed)
    below = np.where(observed, np.minimum(returns - target[:, None], 0.0), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        downside = np.sqrt(row_sum(below * below) / count)
        excess = mean - target
        sharpe = excess / deviation * np.sqrt(per_year)
        sortino = excess * per_year / (downside * np.sqrt(per_year))
    few = (count < MIN_RETURNS) | no_value
    flat, no_downside = deviation < FLAT, downside < FLAT
    too_few = [(no_value, NO_VALUE), (few, TOO_FEW_RETURNS)]
    figures.add("volatility", null_where(np.where(flat, 0.0, deviation) * np.sqrt(per_year), few), too_few)
    figures.add(
        "downside_deviation", null_where(np.where(no_downside, 0.0, downside) * np.sqrt(per_year), few), too_few
    )
    figures.add("sharpe", null_where(sharpe, few | flat), [*too_few, (flat, ZERO_VOLATILITY)])
    figures.add("sortino", null_where(sortino, few | no_downside), [*too_few, (no_downside, ZERO_DOWNSIDE)])


def drawdown(values: np.ndarray, window: Window, count: np.ndarray, figures: FigureSet) -> np.ndarray:
    """Worst fall from a running peak within the window, V / running max - 1 (<= 0), with its dates.

    The running peak starts at the window's first value, as in empyrical's max_drawdown. The
    peak is the last day at that peak before the trough; recovery the first day after the
    trough back at or above it (NaT while not recovered). Returns the drawdown (NaN when null).
    """
    inside = window.inside
    series = np.where(inside, values, np.nan)
    peaks = np.fmax.accumulate(series, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        falls = np.where(inside, series / peaks - 1.0, np.inf)
    days = np.arange(values.shape[1])
    trough = np.argmin(falls, axis=1) if len(days) else np.zeros(values.shape[0], np.int64)
    worst = take_rows(falls, np.where(window.end >= 0, trough, -1))
    worst = np.where(worst > -FLAT, 0.0, worst)
    few = (count < MIN_RETURNS) | (window.end < 0)
    fell = (worst < 0) & ~few
    peak = take_rows(last_observed(inside & (series >= peaks)), np.where(fell, trough, -1), fill=-1)
    back = inside & (days > trough[:, None]) & (values >= take_rows(values, peak)[:, None])
    recovery = np.where(fell, first_true(back), -1)
    figures.columns.update(
        max_drawdown_peak=window.day(peak),
        max_drawdown_trough=window.day(np.where(fell, trough, -1)),
        max_drawdown_recovery=window.day(recovery),
    )
    return figures.add("max_drawdown", null_where(worst, few), [(window.end < 0, NO_VALUE), (few, TOO_FEW_RETURNS)])

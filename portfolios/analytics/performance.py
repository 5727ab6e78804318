"""Period returns, volatility, Sharpe ratio and drawdown of portfolio value series.

`values` is (portfolios, days): today's holdings valued at each day's close, i.e. the
buy-and-hold history of the current positions. `dates` is the ascending datetime64[D] axis.
A value is NaN on days before every held asset had a price; any figure whose inputs are
missing, or that divides by zero, is NaN (stored as NULL).
"""
import calendar
from datetime import date

import numpy as np

from .moments import TRADING_DAYS, daily_returns, finite_or_nan, masked_mean, masked_std

# Calendar days of closes that cover every figure: 252 daily returns and the 1y and YTD starts.
HISTORY_DAYS = 366 + 31


def months_before(day: date, months: int) -> date:
    """The same day `months` calendar months earlier, clipped to the month's end (31 Mar -> 29 Feb)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    last_day = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last_day))


def index_on_or_before(dates: np.ndarray, day: date) -> int | None:
    """Position of the last date <= day, or None when every date is later."""
    position = int(np.searchsorted(dates, np.datetime64(day, "D"), side="right")) - 1
    return position if position >= 0 else None


def return_since(values: np.ndarray, index: int | None) -> np.ndarray:
    """values[:, -1] / values[:, index] - 1 for every row; NaN when index is None."""
    values = np.atleast_2d(values)
    if index is None or values.shape[1] == 0:
        return np.full(values.shape[0], np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        return finite_or_nan(values[:, -1] / values[:, index] - 1.0)


def reference_indices(dates: np.ndarray) -> dict[str, int | None]:
    """Where each period starts on the date axis, keyed by the return it feeds.

    1d: the previous day. 1m: the last date <= last date - 1 calendar month. ytd: the last
    date of the previous calendar year. 1y: the last date <= last date - 12 months.
    """
    if len(dates) == 0:
        return {"return_1d": None, "return_1m": None, "return_ytd": None, "return_1y": None}
    last = dates[-1].astype("datetime64[D]").item()
    return {
        "return_1d": len(dates) - 2 if len(dates) >= 2 else None,
        "return_1m": index_on_or_before(dates, months_before(last, 1)),
        "return_ytd": index_on_or_before(dates, date(last.year - 1, 12, 31)),
        "return_1y": index_on_or_before(dates, months_before(last, 12)),
    }


def period_returns(values: np.ndarray, dates: np.ndarray) -> dict[str, np.ndarray]:
    """Simple returns over 1d, 1m, ytd and 1y: last value / value at the period start - 1."""
    return {name: return_since(values, index) for name, index in reference_indices(dates).items()}


def window_returns(values: np.ndarray, *, window: int = TRADING_DAYS) -> np.ndarray:
    """The last `window` daily simple returns (fewer when history is shorter)."""
    values = np.atleast_2d(values)
    return daily_returns(values[:, -(window + 1):])


def volatility(returns: np.ndarray) -> np.ndarray:
    """Annualised volatility: std(daily returns, ddof=1) * sqrt(252); needs two returns."""
    return masked_std(returns) * np.sqrt(TRADING_DAYS)


def sharpe_ratio(returns: np.ndarray, vol: np.ndarray, *, risk_free_rate: float) -> np.ndarray:
    """(mean(daily returns) * 252 - risk_free_rate) / annualised volatility; NaN when vol is 0."""
    mean, _ = masked_mean(returns, ~np.isnan(returns))
    with np.errstate(divide="ignore", invalid="ignore"):
        return finite_or_nan((mean * TRADING_DAYS - risk_free_rate) / vol)


def max_drawdown(values: np.ndarray, *, window: int = TRADING_DAYS) -> np.ndarray:
    """min(value / running max - 1) over the last window + 1 values (<= 0); needs two values.

    The running maximum starts at the window's first known value, so it is the worst
    peak-to-trough fall within the last year, not since inception.
    """
    values = np.atleast_2d(values)[:, -(window + 1):]
    known = ~np.isnan(values)
    peaks = np.fmax.accumulate(values, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        drawdowns = np.where(known & (peaks > 0), values / peaks - 1.0, np.inf)
    worst = drawdowns.min(axis=1) if values.shape[1] else np.full(values.shape[0], np.inf)
    return np.where((known.sum(axis=1) >= 2) & np.isfinite(worst), worst, np.nan)


def performance(values: np.ndarray, dates: np.ndarray, *, risk_free_rate: float) -> dict[str, np.ndarray]:
    """Every stored performance figure for each row of `values`, as arrays of length n_portfolios.

    Keys: return_1d, return_1m, return_ytd, return_1y, volatility, sharpe, max_drawdown.
    Volatility, Sharpe and drawdown use the last 252 daily returns (all of them when fewer).
    """
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    returns = window_returns(values)
    vol = volatility(returns)
    return {
        **period_returns(values, dates),
        "volatility": vol,
        "sharpe": sharpe_ratio(returns, vol, risk_free_rate=risk_free_rate),
        "max_drawdown": max_drawdown(values),
    }


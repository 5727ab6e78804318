"""Valuing holdings matrices against price matrices."""
import numpy as np


def portfolio_values(quantities: np.ndarray, closes: np.ndarray) -> np.ndarray:
    """value[p, d] = sum over assets of quantity[p, a] * close[a, d] (portfolios x days).

    A day is NaN for a portfolio while any asset it holds has no price yet (before its
    first bar), so history starts once the whole position can be valued. An asset with no
    price on any day is valued at 0 instead, so it cannot blank out the whole portfolio.
    """
    quantities = np.atleast_2d(np.asarray(quantities, dtype=np.float64))
    closes = np.atleast_2d(np.asarray(closes, dtype=np.float64))
    unknown = np.isnan(closes)
    ever_priced = ~unknown.all(axis=1)
    values = quantities @ np.where(unknown, 0.0, closes)
    held = ((quantities != 0) & ever_priced[None, :]).astype(np.float64)
    incomplete = held @ unknown.astype(np.float64) > 0
    return np.where(incomplete, np.nan, values)


def current_weights(quantities: np.ndarray, prices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Position values q * price (0 where no price), each row's total value, and value / total."""
    values = np.atleast_2d(quantities) * np.nan_to_num(np.asarray(prices, dtype=np.float64), nan=0.0)
    totals = values.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = np.where(totals[:, None] > 0, values / totals[:, None], 0.0)
    return values, totals, weights

"""Valuing holdings matrices against price matrices, and the days each portfolio is observed on.

Values are summed over a portfolio's holdings one at a time in asset order, not by a BLAS
matrix product, whose grouping of terms depends on the shape of the matrices: a portfolio's
value then does not change in the last bit with the other assets a run happens to load.
"""

import numpy as np

from .moments import row_sum


def held_assets(quantities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each portfolio's held assets in asset order, as (asset indexes, quantities), both
    portfolios x the most holdings any has; shorter rows are padded with index n_assets
    (a price row of zeros) and quantity 0."""
    quantities = np.atleast_2d(quantities)
    rows, cols = np.nonzero(quantities)  # row by row, assets in order within a row
    held = np.bincount(rows, minlength=quantities.shape[0])
    rank = np.arange(len(rows)) - np.repeat(np.cumsum(held) - held, held)
    width = int(held.max(initial=0))
    assets = np.full((quantities.shape[0], width), quantities.shape[1])
    amounts = np.zeros((quantities.shape[0], width))
    assets[rows, rank], amounts[rows, rank] = cols, quantities[rows, cols]
    return assets, amounts


def value_series(quantities: np.ndarray, closes: np.ndarray, traded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values, calendar), both portfolios x days.

    value[p, d] = sum over held assets of quantity * close, NaN while any asset it holds has
    no price yet (closes are NaN only before an asset's first price), so history starts once
    the whole position can be valued; an asset never priced is valued at 0 instead, so it
    cannot blank out the whole portfolio (callers leave such assets out, see
    PortfolioMetrics.unpriced_holdings). calendar[p, d]: an asset the portfolio holds traded
    on day d.
    """
    quantities = np.atleast_2d(np.asarray(quantities, dtype=np.float64))
    closes = np.atleast_2d(np.asarray(closes, dtype=np.float64))
    traded = np.atleast_2d(np.asarray(traded, dtype=bool))
    rows, days = quantities.shape[0], closes.shape[1]
    assets, amounts = held_assets(quantities)
    unknown = np.isnan(closes)
    priced = np.vstack([np.where(unknown, 0.0, closes), np.zeros((1, days))])
    trading = np.vstack([traded, np.zeros((1, days), bool)])
    # The first day each asset has a price (0 for one never priced: it does not hold the portfolio back).
    first = np.append(np.where(unknown.all(axis=1), 0, np.argmin(unknown, axis=1) if days else 0), 0)
    values, calendar = np.zeros((rows, days)), np.zeros((rows, days), bool)
    product, traded_today = np.empty((rows, days)), np.empty((rows, days), bool)
    for k in range(assets.shape[1]):
        np.take(priced, assets[:, k], axis=0, out=product)
        product *= amounts[:, k, None]
        values += product
        np.take(trading, assets[:, k], axis=0, out=traded_today)
        calendar |= traded_today
    start = first[assets].max(axis=1, initial=0)
    return np.where(np.arange(days) < start[:, None], np.nan, values), calendar


def portfolio_values(quantities: np.ndarray, closes: np.ndarray) -> np.ndarray:
    """value_series' values alone."""
    return value_series(quantities, closes, np.zeros(np.shape(closes), bool))[0]


def current_weights(quantities: np.ndarray, prices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Position values q * price (0 where no price), each row's total value, and value / total."""
    values = np.atleast_2d(quantities) * np.nan_to_num(np.asarray(prices, dtype=np.float64), nan=0.0)
    totals = row_sum(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = np.where(totals[:, None] > 0, values / totals[:, None], 0.0)
    return values, totals, weights

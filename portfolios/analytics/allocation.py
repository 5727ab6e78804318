"""Signal-tilted target weights and the trades that bring drifted positions back to them.

Matrices are (portfolios x assets) over one shared asset axis; an asset outside a
strategy's targets has target weight 0, so it only ever shows up as something to sell.
"""

import numpy as np

from .valuation import current_weights


def tilt_weights(targets: np.ndarray, strengths: np.ndarray, tilt: np.ndarray) -> np.ndarray:
    """tilted = max(target * (1 + tilt * strength), 0), renormalised so each row sums to 1.

    strengths is per asset (or per portfolio and asset), in -1..1; tilt is per portfolio.
    A row whose tilted weights are all zero stays all zero.
    """
    targets = np.atleast_2d(np.asarray(targets, dtype=np.float64))
    tilt = np.asarray(tilt, dtype=np.float64).reshape(-1, 1)
    raw = np.clip(targets * (1.0 + tilt * np.asarray(strengths, dtype=np.float64)), 0.0, None)
    totals = raw.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(totals > 0, raw / totals, 0.0)


def rebalance_trades(
    quantities: np.ndarray,
    prices: np.ndarray,
    tilted: np.ndarray,
    thresholds: np.ndarray,
) -> dict[str, np.ndarray]:
    """Trades for every asset whose weight drifted from its tilted weight by more than the threshold.

    current_weight = q * price / total value; an asset trades when
    |current_weight - tilted| > threshold (its portfolio's), it has a positive price and the
    portfolio a positive value. Then
        quantity = (tilted * total_value - current_value) / price   (+ buys, - sells)
        value    = quantity * price
    Every drifted asset gets a trade, not only the worst one, and undrifted assets none, so
    buys and sells need not net to zero: there is no cash position to balance against.
    Returns current_weight, trade (bool mask), quantity and value, all (portfolios x assets).
    """
    prices = np.asarray(prices, dtype=np.float64)
    values, totals, weights = current_weights(np.asarray(quantities, dtype=np.float64), prices)
    thresholds = np.asarray(thresholds, dtype=np.float64).reshape(-1, 1)
    priced = np.isfinite(prices) & (prices > 0)
    trade = (np.abs(weights - tilted) > thresholds) & priced[None, :] & (totals[:, None] > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        quantity = np.where(trade, (tilted * totals[:, None] - values) / prices, 0.0)
    return {
        "current_weight": weights,
        "trade": trade,
        "quantity": quantity,
        "value": np.where(trade, quantity * np.nan_to_num(prices, nan=0.0), 0.0),
    }

"""The "trend_momentum" signal rule: 200-day trend plus 12-1 month momentum, per asset.

For an asset's own daily closes p[0..t] (t = latest, counted in the asset's trading days):
    trend          = p[t] / mean(p[t-199..t]) - 1               (price vs its 200-day SMA)
    momentum       = p[t-21] / p[t-252] - 1                     (12-1 month momentum)
    trend_score    = clip(trend / 0.10, -1, 1)
    momentum_score = clip(momentum / 0.20, -1, 1)
    strength       = (trend_score + momentum_score) / 2
    action         = buy if strength >= 0.25, sell if strength <= -0.25, else hold
An asset with fewer than 253 closes (today plus the 252 before it that momentum reaches
back to) holds with strength 0 and reason "not enough history".
"""

import numpy as np

SMA_DAYS = 200
MOMENTUM_SKIP = 21
MOMENTUM_LOOKBACK = 252
MIN_BARS = MOMENTUM_LOOKBACK + 1
TREND_SCALE = 0.10
MOMENTUM_SCALE = 0.20
ACTION_THRESHOLD = 0.25
NOT_ENOUGH_HISTORY = "not enough history"


def trend_momentum(closes: np.ndarray) -> dict[str, np.ndarray]:
    """Signal figures for each row of `closes` (assets x bars, latest last, NaN-padded on the left).

    Returns arrays of length n_assets: trend and momentum (NaN without enough history),
    strength (0 without enough history), action ("buy"/"sell"/"hold") and enough (bool).
    """
    closes = np.atleast_2d(np.asarray(closes, dtype=np.float64))
    rows, width = closes.shape
    if width < MIN_BARS:
        closes = np.hstack([np.full((rows, MIN_BARS - width), np.nan), closes])
    recent = closes[:, -MIN_BARS:]
    enough = ~np.isnan(recent).any(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        trend = recent[:, -1] / recent[:, -SMA_DAYS:].mean(axis=1) - 1.0
        momentum = recent[:, -1 - MOMENTUM_SKIP] / recent[:, -1 - MOMENTUM_LOOKBACK] - 1.0
    enough &= np.isfinite(trend) & np.isfinite(momentum)
    trend = np.where(enough, trend, np.nan)
    momentum = np.where(enough, momentum, np.nan)
    score = (np.clip(trend / TREND_SCALE, -1, 1) + np.clip(momentum / MOMENTUM_SCALE, -1, 1)) / 2
    strength = np.where(enough, score, 0.0)
    action = np.where(strength >= ACTION_THRESHOLD, "buy", np.where(strength <= -ACTION_THRESHOLD, "sell", "hold"))
    return {"trend": trend, "momentum": momentum, "strength": strength, "action": action, "enough": enough}


def signal_reason(*, trend: float, momentum: float) -> str:
    """Human reason such as "price 6.1% above 200-day average; 12-1m momentum +14.0%"."""
    if np.isnan(trend) or np.isnan(momentum):
        return NOT_ENOUGH_HISTORY
    side = "above" if trend >= 0 else "below"
    return f"price {abs(trend):.1%} {side} {SMA_DAYS}-day average; 12-1m momentum {momentum:+.1%}"

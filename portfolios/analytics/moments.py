"""NaN-aware means, deviations and co-movements along the last axis of return matrices."""
import numpy as np

TRADING_DAYS = 252


def daily_returns(values: np.ndarray) -> np.ndarray:
    """Simple returns v[t] / v[t-1] - 1 along the last axis; NaN where either value is missing or zero."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = values[..., 1:] / values[..., :-1] - 1.0
    return np.where(np.isfinite(returns), returns, np.nan)


def masked_mean(x: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over the valid entries of each row, and how many there were (NaN mean when none)."""
    count = valid.sum(axis=-1)
    total = np.where(valid, x, 0.0).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, total / count, np.nan), count


def masked_std(x: np.ndarray) -> np.ndarray:
    """Sample standard deviation (ddof=1) over each row's non-NaN entries; NaN with fewer than two."""
    valid = ~np.isnan(x)
    mean, count = masked_mean(x, valid)
    squares = np.where(valid, (x - mean[..., None]) ** 2, 0.0).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count >= 2, np.sqrt(squares / (count - 1)), np.nan)


def paired_moments(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Sample variances and covariance (ddof=1) of each row of x with y, over days both are known.

    x is (n, days) and y is (days,); a row pairs only the days where neither is NaN, so a
    portfolio or asset with shorter history is compared over the history it has. Fewer than
    two shared days gives NaN.
    """
    x = np.atleast_2d(x)
    y = np.broadcast_to(y, x.shape)
    valid = ~np.isnan(x) & ~np.isnan(y)
    mean_x, count = masked_mean(x, valid)
    mean_y, _ = masked_mean(y, valid)
    dx = np.where(valid, x - mean_x[:, None], 0.0)
    dy = np.where(valid, y - mean_y[:, None], 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        denominator = np.where(count >= 2, count - 1, np.nan)
        return {
            "var_x": (dx * dx).sum(axis=1) / denominator,
            "var_y": (dy * dy).sum(axis=1) / denominator,
            "cov": (dx * dy).sum(axis=1) / denominator,
            "count": count,
        }


def finite_or_nan(x: np.ndarray) -> np.ndarray:
    """Replaces infinities (from dividing by a zero value or variance) with NaN."""
    return np.where(np.isfinite(x), x, np.nan)

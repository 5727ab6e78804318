"""NaN-aware means, deviations and co-movements along the last axis of return matrices.

Sums run strictly left to right (row_sum), so a row's figures do not change in the last bit
when the date axis around it holds other days: numpy's pairwise sum groups terms by their
positions, and zeros standing in for days a row is not observed on would shift them.
"""

import numpy as np


def row_sum(x: np.ndarray) -> np.ndarray:
    """Sum along the last axis, adding one term at a time from the left."""
    x = np.asarray(x, dtype=np.float64)
    if not x.shape[-1]:
        return np.zeros(x.shape[:-1])
    return np.cumsum(x, axis=-1)[..., -1]


def masked_mean(x: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over the valid entries of each row, and how many there were (NaN mean when none)."""
    count = valid.sum(axis=-1)
    total = row_sum(np.where(valid, x, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, total / count, np.nan), count


def masked_std(x: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean (masked_mean), sample standard deviation (ddof=1) and count of each row's valid entries.

    The deviation is not masked by count: NaN with one valid entry and -0.0 with none, so
    callers null it by their minimum observations.
    """
    mean, count = masked_mean(x, valid)
    centred = np.where(valid, x - mean[..., None], 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return mean, np.sqrt(row_sum(centred * centred) / (count - 1)), count


def paired_moments(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Means, sample variances and covariance (ddof=1) of each row of x with y, over days both are known.

    x is (n, days) and y is (days,) or (n, days); a row pairs only the days where neither is
    NaN. Fewer than two shared days gives NaN moments.
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
            "mean_x": mean_x,
            "mean_y": mean_y,
            "var_x": row_sum(dx * dx) / denominator,
            "var_y": row_sum(dy * dy) / denominator,
            "cov": row_sum(dx * dy) / denominator,
            "count": count,
        }

"""Turning numpy figures into the plain values the analytics tables store.

A full refresh writes about fifteen analytics rows per portfolio; they go to the database
through core.bulk_writes as columns, without a model instance per row.
"""

from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt

from portfolios.analytics.nulls import FigureSet


def finite_or_none(values: npt.ArrayLike) -> list[float | None]:
    """Floats with NaN and infinities as None (stored as NULL: the figure could not be calculated)."""
    floats = np.asarray(values, dtype=np.float64)
    out = floats.astype(object)
    out[~np.isfinite(floats)] = None
    listed: list[float | None] = out.tolist()
    return listed


def rounded(values: npt.ArrayLike, places: int) -> list[float]:
    """Floats rounded to a DecimalField's places; non-finite values become 0.

    SQLite stores it as REAL, as Django does a Decimal; PostgreSQL casts it to numeric at 15
    significant digits, which gives back the rounded Decimal for any amount these hold.
    """
    floats = np.asarray(values, dtype=np.float64)
    listed: list[float] = np.round(np.where(np.isfinite(floats), floats, 0.0), places).tolist()
    return listed


def dates_or_none(values: npt.ArrayLike) -> list[date | None]:
    """datetime64[D] values as dates, NaT as None."""
    days = np.asarray(values, dtype="datetime64[D]")
    out = days.astype(object)
    out[np.isnat(days)] = None
    listed: list[date | None] = out.tolist()
    return listed


def window_columns(figures: FigureSet, *, as_of: np.ndarray, today: date) -> dict[str, list[Any]]:
    """The columns every figures table shares: as_of (`as_of`, today where NaT: nothing priced),
    window_start, window_end, observations, periods_per_year (None without a window) and null_reasons."""
    columns = figures.columns
    has_window = ~np.isnat(columns["window_end"])
    return {
        "as_of": dates_or_none(np.where(np.isnat(as_of), np.datetime64(today, "D"), as_of)),
        "window_start": dates_or_none(columns["window_start"]),
        "window_end": dates_or_none(columns["window_end"]),
        "observations": columns["observations"].astype(int).tolist(),
        "periods_per_year": [
            int(p) if shown else None for p, shown in zip(columns["periods_per_year"], has_window, strict=True)
        ],
        "null_reasons": figures.null_reasons(),
    }

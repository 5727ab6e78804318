"""Turning numpy figures into the plain values the analytics tables store.

A full refresh writes about fifteen analytics rows per portfolio; they go to the database
through refresh_project.bulk_writes as columns, without a model instance per row.
"""
from datetime import date

import numpy as np

from ..analytics.nulls import FigureSet


def finite_or_none(values) -> list[float | None]:
    """Floats with NaN and infinities as None (stored as NULL: the figure could not be calculated)."""
    values = np.asarray(values, dtype=np.float64)
    out = values.astype(object)
    out[~np.isfinite(values)] = None
    return out.tolist()


def rounded(values, places: int) -> list[float]:
    """Floats rounded to a DecimalField's places; non-finite values become 0.

    SQLite stores it as REAL, as Django does a Decimal; PostgreSQL casts it to numeric at 15
    significant digits, which gives back the rounded Decimal for any amount these hold.
    """
    values = np.asarray(values, dtype=np.float64)
    return np.round(np.where(np.isfinite(values), values, 0.0), places).tolist()


def dates_or_none(values) -> list:
    """datetime64[D] values as dates, NaT as None."""
    values = np.asarray(values, dtype="datetime64[D]")
    out = values.astype(object)
    out[np.isnat(values)] = None
    return out.tolist()



def window_columns(figures: FigureSet, *, as_of: np.ndarray, today: date) -> dict[str, list]:
    """The columns every figures table shares: as_of (`as_of`, today where NaT: nothing priced),
    window_start, window_end, observations, periods_per_year (None without a window) and null_reasons."""
    columns = figures.columns
    has_window = ~np.isnat(columns["window_end"])
    return {
        "as_of": dates_or_none(np.where(np.isnat(as_of), np.datetime64(today, "D"), as_of)),
        "window_start": dates_or_none(columns["window_start"]),
        "window_end": dates_or_none(columns["window_end"]),
        "observations": columns["observations"].astype(int).tolist(),
        "periods_per_year": [int(p) if shown else None for p, shown in zip(columns["periods_per_year"], has_window)],
        "null_reasons": figures.null_reasons(),
    }

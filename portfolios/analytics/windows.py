"""The one-year window each series' figures cover, and its returns from one observation to the next.

Rows of `values` share one date axis (the union of every day anything in the run traded), but
a row is only observed on its own calendar (valuation.value_series): the days on which an
asset it holds traded (a bar, or a quote newer than the last bar). Other days of the axis
carry forward-filled values that are not observations of it, so they are skipped, not counted
as zero returns: a portfolio's figures do not depend on what else is on the axis.
"""

from dataclasses import dataclass

import numpy as np

TRADING_DAYS = 252  # periods per year on a weekday calendar
CALENDAR_DAYS = 365  # periods per year for a series observed at weekends too
WINDOW_MONTHS = 12
# Calendar days of history that hold every figure's window: 12 months, the last observation
# on or before its start, and a margin for the run's last day being later than a row's own.
HISTORY_DAYS = 366 + 31


def months_before(days: np.ndarray, months: int) -> np.ndarray:
    """The same day `months` calendar months earlier, clipped to the month's end (31 Mar -> 29 Feb)."""
    days = np.asarray(days, dtype="datetime64[D]")
    month = days.astype("datetime64[M]")
    target = month - months
    length = (target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")
    offset = np.minimum(days - month.astype("datetime64[D]"), length - 1)
    # numpy's stubs type datetime64 arithmetic as Any; the result is an array of days.
    shifted: np.ndarray = target.astype("datetime64[D]") + offset
    return shifted


def first_true(mask: np.ndarray) -> np.ndarray:
    """Index of each row's first True, -1 in a row without one."""
    if not mask.shape[1]:
        return np.full(mask.shape[0], -1)
    return np.where(mask.any(axis=1), np.argmax(mask, axis=1), -1)


def take_rows(matrix: np.ndarray, index: np.ndarray, fill: float = np.nan) -> np.ndarray:
    """matrix[row, index[row]] for every row; `fill` where index is -1."""
    if not matrix.shape[1]:
        return np.full(matrix.shape[0], fill)
    picked = matrix[np.arange(matrix.shape[0]), np.maximum(index, 0)]
    return np.where(index >= 0, picked, fill)


def last_observed(observed: np.ndarray) -> np.ndarray:
    """(rows x days) index of each row's last observed day on or before each day, -1 before the first."""
    positions = np.where(observed, np.arange(observed.shape[1]), -1)
    return np.maximum.accumulate(positions, axis=1)


def unbroken(observed: np.ndarray) -> bool:
    """Is every row observed on each day from its first observation to its last? Then the
    previous observation is always the day before, which spares the general lookups: the
    usual case once rows are grouped by calendar (portfolios.services.valuation)."""
    if observed.shape[1] < 2:
        return True
    starts = observed[:, 1:] & ~observed[:, :-1]  # an observation after a day without one
    return bool((starts.sum(axis=1) + observed[:, 0] <= 1).all())


@dataclass(frozen=True)
class Window:
    """Where each row's figures start and end on the date axis; -1 where there is no such day.

    `inside` marks the observed days from `start` to `end`. The window is the last 12 calendar
    months: it starts at the last observation on or before end - 12 months (`references
    ["return_1y"]`), or at the first observation when history is shorter (`full_year` false).
    """

    dates: np.ndarray
    end: np.ndarray
    start: np.ndarray
    full_year: np.ndarray
    inside: np.ndarray
    references: dict[str, np.ndarray]
    periods_per_year: np.ndarray

    def day(self, index: np.ndarray) -> np.ndarray:
        """Dates at the indexes, NaT at -1."""
        return day_at(self.dates, index)


def day_at(dates: np.ndarray, index: np.ndarray) -> np.ndarray:
    """dates[index], NaT where index is -1."""
    if not len(dates):
        return np.full(np.shape(index), np.datetime64("NaT"), dtype="datetime64[D]")
    return np.where(index >= 0, dates[np.maximum(index, 0)], np.datetime64("NaT"))


def one_year_window(values: np.ndarray, calendar: np.ndarray, dates: np.ndarray) -> Window:
    """Each row's window and period starts, from its observed days: calendar days with a positive value.

    Period starts, as indexes of observed days: return_1d the one before the last;
    return_1m and return_1y the last on or before one and twelve calendar months before the
    last; return_ytd the last on or before 31 December of the previous year.
    """
    values = np.atleast_2d(values)
    dates = np.asarray(dates, dtype="datetime64[D]")
    with np.errstate(invalid="ignore"):
        observed = np.atleast_2d(calendar) & (values > 0)
    rows, days = observed.shape
    first = first_true(observed)
    seen = first >= 0
    if unbroken(observed):
        end = np.where(seen, days - 1 - first_true(observed[:, ::-1]), -1)

        def last_at(position: np.ndarray) -> np.ndarray:
            return np.where((position >= first) & seen, np.minimum(position, end), -1)
    else:
        last = last_observed(observed)
        end = take_rows(last, np.full(rows, days - 1), fill=-1)

        def last_at(position: np.ndarray) -> np.ndarray:
            return take_rows(last, position, fill=-1)

    end_day = day_at(dates, end)

    def on_or_before(day: np.ndarray) -> np.ndarray:
        position = np.searchsorted(dates, day, side="right") - 1  # NaT sorts last: no row without an end
        return np.where(end >= 0, last_at(position), -1)

    previous_year_end = end_day.astype("datetime64[Y]").astype("datetime64[D]") - 1
    references = {
        "return_1d": last_at(np.where(end >= 1, end - 1, -1)),
        "return_1m": on_or_before(months_before(end_day, 1)),
        "return_ytd": on_or_before(previous_year_end),
        "return_1y": on_or_before(months_before(end_day, WINDOW_MONTHS)),
    }
    full_year = references["return_1y"] >= 0
    start = np.where(full_year, references["return_1y"], first)
    inside = observed & (np.arange(days) >= start[:, None]) & (start[:, None] >= 0)
    return Window(
        dates=dates,
        end=end,
        start=start,
        full_year=full_year,
        inside=inside,
        references=references,
        periods_per_year=periods_per_year(inside, dates),
    )


def periods_per_year(observed: np.ndarray, dates: np.ndarray) -> np.ndarray:
    """365 for rows observed on a Saturday or Sunday, else 252."""
    weekend = np.is_busday(dates, weekmask="0000011") if len(dates) else np.zeros(0, bool)
    return np.where((observed & weekend).any(axis=1), CALENDAR_DAYS, TRADING_DAYS)


def interval_returns(values: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Simple returns from each observed day to the next one: (returns, mask), both (rows x days - 1).

    returns[:, t - 1] = values[:, t] / values[:, p] - 1 where t is observed and p is the row's
    previous observed day; days in between are skipped, so a weekend or a holiday that is not
    on the row's calendar adds no return. Elsewhere returns is NaN and mask False. `values`
    may be one series (days,) shared by every row.
    """
    observed = np.atleast_2d(observed)
    values = np.broadcast_to(values, observed.shape)
    if observed.shape[1] < 2:
        empty = np.zeros((observed.shape[0], 0))
        return empty, empty.astype(bool)
    if unbroken(observed):
        mask, base = observed[:, 1:] & observed[:, :-1], values[:, :-1]
    else:
        previous = last_observed(observed)[:, :-1]
        mask = observed[:, 1:] & (previous >= 0)
        base = np.take_along_axis(values, np.maximum(previous, 0), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = values[:, 1:] / base - 1.0
    mask &= np.isfinite(returns)
    return np.where(mask, returns, np.nan), mask

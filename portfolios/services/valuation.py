"""Valuing chunks of portfolios on their own calendars, for the figures every chunk stores.

A chunk's portfolios are grouped by calendar (the days they are observed on), and each group's
figures are calculated on its own days only: the engine would skip the others anyway
(analytics.windows), this spares it the work. Figures come from one price history read for the
whole run; a portfolio whose prices all stopped well before the run's last day (a delisted
holding, say) is valued over a history of its own instead, so that its window is the year before
its own last day, however long ago, whatever else the run holds.
"""

from collections.abc import Callable, Sequence
from datetime import timedelta

import numpy as np

from portfolios.analytics.nulls import FigureSet
from portfolios.analytics.valuation import value_series
from portfolios.analytics.windows import HISTORY_DAYS
from portfolios.selectors.prices import PriceHistory, load_price_history

# A portfolio whose last price is this much older than the run's last day gets a history of its own.
STALE_AFTER = np.timedelta64(14, "D")
# Calendars with a group of their own, largest first; the rest share one, over all their days.
CALENDAR_GROUPS = 8

# figures_of(history on the group's days, values, calendar) -> figures of those rows.
Figures = Callable[[PriceHistory, np.ndarray, np.ndarray], FigureSet]


def last_days(history: PriceHistory, quantities: np.ndarray) -> np.ndarray:
    """Each portfolio's last priced day (NaT when nothing it holds has a price)."""
    never = np.iinfo(np.int64).min
    days = np.where(np.isnat(history.last_days), never, history.last_days.astype(np.int64))
    latest = np.where(quantities != 0, days[None, :], never).max(axis=1, initial=never)
    return np.where(latest == never, np.datetime64("NaT"), latest.astype("datetime64[D]"))


def calendar_groups(calendar: np.ndarray, *, limit: int = CALENDAR_GROUPS) -> list[tuple[np.ndarray, np.ndarray]]:
    """(rows, days) of portfolios sharing a calendar, the largest `limit` groups on their own and
    the other rows together on the union of their days."""
    rows = calendar.shape[0]
    if not rows:
        return []
    packed = np.packbits(calendar, axis=1)
    same = (packed == packed[0]).all(axis=1)
    if same.all():  # the usual case: one calendar for the whole chunk
        return [(np.arange(rows), np.flatnonzero(calendar[0]))]
    # Rows hashed to one number each; a row that differs from its group's first row despite an
    # equal hash (a collision) joins the rest.
    words = np.pad(packed, ((0, 0), (0, -packed.shape[1] % 8))).view(np.uint64)
    key = np.zeros(rows, np.uint64)
    for column in words.T:
        key = key * np.uint64(0x100000001B3) ^ column
    _, which, sizes = np.unique(key, return_inverse=True, return_counts=True)
    groups: list[tuple[np.ndarray, np.ndarray]] = []
    rest: list[np.ndarray] = []
    for rank, group in enumerate(np.argsort(-sizes, kind="stable")):
        members = np.flatnonzero(which == group)
        alike = (packed[members] == packed[members[0]]).all(axis=1)
        if rank < limit:
            groups.append((members[alike], np.flatnonzero(calendar[members[0]])))
            rest.append(members[~alike])
        else:
            rest.append(members)
    leftover = np.sort(np.concatenate(rest))
    if len(leftover):
        groups.append((leftover, np.flatnonzero(calendar[leftover].any(axis=0))))
    return groups


def figures_by_calendar(history: PriceHistory, quantities: np.ndarray, figures_of: Figures) -> FigureSet:
    """figures_of for each calendar group on its own days, stacked back into the chunk's row order."""
    values, calendar = value_series(quantities, history.closes, history.traded)
    parts = []
    for rows, days in calendar_groups(calendar):
        if len(rows) == values.shape[0] and len(days) == values.shape[1]:  # one calendar, every day
            parts.append((rows, figures_of(history, values, calendar)))
        else:
            parts.append(
                (rows, figures_of(history.on_days(days), values[np.ix_(rows, days)], calendar[np.ix_(rows, days)]))
            )
    return FigureSet.stacked(parts, quantities.shape[0])


def figures_on_own_calendars(
    history: PriceHistory, quantities: np.ndarray, figures_of: Figures, *, also_read: Sequence[int] = ()
) -> FigureSet:
    """figures_by_calendar, with stale portfolios' rows from a history of their own.

    Quantities of unpriced assets must be zero already. `also_read` names assets figures_of
    needs beside the held ones (the benchmark).
    """
    if not len(history.dates):
        return figures_by_calendar(history, quantities, figures_of)
    ends = last_days(history, quantities)
    stale = ~np.isnat(ends) & (ends < history.dates[-1] - STALE_AFTER)
    if not stale.any():
        return figures_by_calendar(history, quantities, figures_of)
    fresh = np.flatnonzero(~stale)
    parts = [(fresh, figures_by_calendar(history, quantities[fresh], figures_of))] if len(fresh) else []
    columns = np.flatnonzero((quantities[stale] != 0).any(axis=0))
    held = [history.asset_ids[c] for c in columns]
    own = load_price_history(
        asset_ids=[*held, *(a for a in also_read if a not in held)],
        start=ends[stale].min().item() - timedelta(days=HISTORY_DAYS),
    )
    stale_quantities = np.zeros((int(stale.sum()), len(own.asset_ids)))
    stale_quantities[:, : len(columns)] = quantities[stale][:, columns]
    parts.append((np.flatnonzero(stale), figures_by_calendar(own, stale_quantities, figures_of)))
    return FigureSet.stacked(parts, quantities.shape[0])

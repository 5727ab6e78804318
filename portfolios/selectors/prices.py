"""Price matrices of market data's bars and quotes, as the portfolio analytics read them.

A quote dated after an asset's last bar counts as one more close everywhere here, so figures
reflect the latest quotes. Dates are handled as int64 day numbers until the arrays are built.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt
from django.db.models import Max, OuterRef, Q, Subquery
from django.utils import timezone

from market_data.models import Asset, PriceBar, Quote
from portfolios.batches import QUERY_BATCH, batched

from .matrices import float_column, position_lookup
from .shared import PRICES, read_once

# Assets per price query: bounds the rows held as Python objects at any one time.
PRICE_BATCH = 100
NO_DAY = np.iinfo(np.int64).min
# date.toordinal() of 1970-01-01: ordinals minus this are numpy's datetime64[D] day numbers.
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _days(values: Sequence[date]) -> npt.NDArray[np.int64]:
    """Dates as int64 day numbers (days since 1970-01-01).

    Through date.toordinal, about 25 times faster than numpy parsing date objects one by one:
    a full refresh converts a few hundred thousand of them.
    """
    return np.fromiter(map(date.toordinal, values), dtype=np.int64, count=len(values)) - EPOCH_ORDINAL


def _as_dates(days: npt.NDArray[np.int64]) -> np.ndarray:
    """Day numbers as datetime64[D], NaT for NO_DAY."""
    return np.where(days == NO_DAY, np.datetime64("NaT", "D"), days.astype("datetime64[D]"))


def _quote_days(asset_ids: Sequence[int]) -> tuple[list[int], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Each quote's asset id, its as_of as a local day number, and its price."""
    ids: list[int] = []
    days: list[date] = []
    prices: list[float] = []
    for batch in batched(list(asset_ids), QUERY_BATCH):
        quotes = Quote.objects.filter(asset_id__in=batch).values_list("asset_id", "as_of", float_column("price"))
        for asset_id, as_of, price in quotes:
            if price is not None:
                ids.append(asset_id)
                days.append(timezone.localtime(as_of).date())
                prices.append(price)
    return ids, _days(days), np.asarray(prices, dtype=np.float64)


def _forward_fill(matrix: np.ndarray) -> np.ndarray:
    """Carries each row's last known value forward over NaN gaps."""
    known = ~np.isnan(matrix)
    last_known = np.where(known, np.arange(matrix.shape[1]), 0)
    np.maximum.accumulate(last_known, axis=1, out=last_known)
    filled: np.ndarray = matrix[np.arange(matrix.shape[0])[:, None], last_known]
    return filled


@dataclass(frozen=True)
class PriceHistory:
    """Daily closes of some assets on the union of their trading days, and which days each traded.

    closes (assets x days, rows in asset_ids order) carry each close forward over the days an
    asset did not trade, including the last close before the first day; they are NaN before
    an asset's first price. traded marks the days an asset had a bar, or a quote dated after
    its last bar (which counts as one more day, so figures reflect the latest quotes).
    last_days is each asset's last such day, before the first day included (NaT: never priced).
    """

    asset_ids: list[int]
    dates: np.ndarray
    closes: np.ndarray
    traded: np.ndarray
    last_days: np.ndarray

    @property
    def priced(self) -> np.ndarray:
        """Per asset: has it any price at all?"""
        priced: np.ndarray = ~np.isnat(self.last_days)
        return priced

    def row(self, asset_id: int) -> int:
        return self.asset_ids.index(asset_id)

    def on_days(self, days: np.ndarray) -> "PriceHistory":
        """The same history on some of its days (indexes, ascending)."""
        return PriceHistory(
            asset_ids=self.asset_ids,
            dates=self.dates[days],
            closes=self.closes[:, days],
            traded=self.traded[:, days],
            last_days=self.last_days,
        )


def load_price_history(*, asset_ids: Sequence[int], start: date | None = None) -> PriceHistory:
    """The assets' PriceHistory from `start` on (all of it when None)."""
    asset_ids = list(asset_ids)
    n = len(asset_ids)
    row_of = position_lookup(asset_ids)
    start_day = _days([start])[0] if start else None
    bar_rows, bar_days, bar_closes = [], [], []
    seed_days = np.full(n, NO_DAY, dtype=np.int64)
    seed_closes = np.full(n, np.nan)
    for batch in batched(asset_ids, PRICE_BATCH):
        bars = PriceBar.objects.filter(asset_id__in=batch).order_by()
        if start:
            bars = bars.filter(date__gte=start)
            earlier = PriceBar.objects.filter(asset_id=OuterRef("pk"), date__lt=start).order_by("-date")
            seeds = [
                seed
                for seed in Asset.objects.filter(id__in=batch)
                .annotate(
                    seed_date=Subquery(earlier.values("date")[:1]),
                    seed_close=Subquery(earlier.values(close_float=float_column("close"))[:1]),
                )
                .values_list("id", "seed_date", "seed_close")
                if seed[1] is not None
            ]
            if seeds:
                seed_ids, seed_dates, seed_values = zip(*seeds, strict=True)
                seed_days[row_of(seed_ids)] = _days(seed_dates)
                seed_closes[row_of(seed_ids)] = seed_values
        if found := list(bars.values_list("asset_id", "date", float_column("close"))):
            ids, days, closes = zip(*found, strict=True)
            bar_rows.append(row_of(ids))
            bar_days.append(_days(days))
            bar_closes.append(np.array(closes, dtype=np.float64))
    rows = np.concatenate([np.empty(0, np.int64), *bar_rows])
    day_numbers = np.concatenate([np.empty(0, np.int64), *bar_days])
    prices = np.concatenate([np.empty(0), *bar_closes])

    last_day = seed_days.copy()
    np.maximum.at(last_day, rows, day_numbers)
    quote_ids, quote_days, quote_prices = _quote_days(asset_ids)
    if quote_ids:
        quote_rows = row_of(quote_ids)
        fresh = quote_days > last_day[quote_rows]
        if start_day is not None:
            fresh &= quote_days >= start_day
        rows = np.concatenate([rows, quote_rows[fresh]])
        day_numbers = np.concatenate([day_numbers, quote_days[fresh]])
        prices = np.concatenate([prices, quote_prices[fresh]])
        np.maximum.at(last_day, quote_rows[fresh], quote_days[fresh])

    axis = np.unique(day_numbers)
    matrix = np.full((n, len(axis) + 1), np.nan)
    matrix[:, 0] = seed_closes
    matrix[rows, np.searchsorted(axis, day_numbers) + 1] = prices
    traded = ~np.isnan(matrix[:, 1:])
    return PriceHistory(
        asset_ids=asset_ids,
        dates=axis.astype("datetime64[D]"),
        closes=_forward_fill(matrix)[:, 1:],
        traded=traded,
        last_days=_as_dates(last_day),
    )


def load_recent_price_history(*, asset_ids: Sequence[int], days: int) -> PriceHistory:
    """load_price_history from `days` calendar days before the assets' latest bar."""

    def load() -> PriceHistory:
        latest = None
        for batch in batched(list(asset_ids), QUERY_BATCH):
            found = PriceBar.objects.filter(asset_id__in=batch).aggregate(latest=Max("date"))["latest"]
            latest = max(filter(None, [latest, found]), default=None)
        return load_price_history(asset_ids=asset_ids, start=latest - timedelta(days=days) if latest else None)

    return read_once(PRICES, ("recent", tuple(asset_ids), days), lambda: _read_only(load()))


def _read_only(history: PriceHistory) -> PriceHistory:
    """The history with its arrays made read-only: inside shared_reads() every reader gets the same one."""
    for array in (history.dates, history.closes, history.traded, history.last_days):
        array.flags.writeable = False
    return history


def figure_price_ids(asset_ids: Sequence[int], benchmark_id: int | None) -> list[int]:
    """The assets whose prices the figures read: the held ones in order, then the benchmark unless
    it is held or None. Metrics and comparisons read the same ids, so inside shared_reads()
    the second read is the first one's."""
    asset_ids = list(asset_ids)
    return asset_ids if benchmark_id is None or benchmark_id in asset_ids else [*asset_ids, benchmark_id]


def _recent_bars(asset_ids: Sequence[int], count: int) -> Q:
    """The assets' last `count` bars each: those on or after each asset's count-th latest date
    (all of an asset's bars when it has fewer), assets grouped by that date.

    Each date is one backward walk of the (asset, date) index; numbering every bar of the assets
    with a window function instead read and sorted all their history, about 0.7 s a refresh.
    """
    nth_latest = PriceBar.objects.filter(asset_id=OuterRef("pk")).order_by("-date").values("date")[count - 1 : count]
    since: dict[date | None, list[int]] = {}
    for asset_id, cutoff in (
        Asset.objects.filter(id__in=asset_ids).annotate(cutoff=Subquery(nth_latest)).values_list("id", "cutoff")
    ):
        since.setdefault(cutoff, []).append(asset_id)
    recent = Q(pk__in=[])
    for cutoff, ids in since.items():
        recent |= Q(asset_id__in=ids) if cutoff is None else Q(asset_id__in=ids, date__gte=cutoff)
    return recent


def load_recent_closes(*, asset_ids: Sequence[int], count: int) -> tuple[np.ndarray, np.ndarray]:
    """Each asset's own last `count` closes, latest last, with no calendar alignment.

    Returns (last_dates: datetime64[D] per asset, NaT without prices; closes: assets x count,
    NaN-padded on the left when history is shorter). A quote dated after the last bar counts
    as the latest close, as in load_price_history.
    """
    n = len(asset_ids)
    row_of = position_lookup(asset_ids)
    bar_ids: list[int] = []
    bar_days: list[date] = []
    bar_closes: list[float] = []
    for batch in batched(asset_ids, PRICE_BATCH):
        bars = (
            PriceBar.objects.filter(_recent_bars(batch, count))
            .order_by()
            .values_list("asset_id", "date", float_column("close"))
        )
        for asset_id, day, close in bars:
            bar_ids.append(asset_id)
            bar_days.append(day)
            bar_closes.append(close)
    rows = row_of(bar_ids) if bar_ids else np.empty(0, np.int64)
    days, closes = _days(bar_days), np.asarray(bar_closes, float)

    last_bar = np.full(n, NO_DAY, dtype=np.int64)
    np.maximum.at(last_bar, rows, days)
    quote_ids, quote_days, quote_prices = _quote_days(asset_ids)
    if quote_ids:
        quote_rows = row_of(quote_ids)
        fresh = quote_days > last_bar[quote_rows]
        rows = np.concatenate([rows, quote_rows[fresh]])
        days = np.concatenate([days, quote_days[fresh]])
        closes = np.concatenate([closes, quote_prices[fresh]])

    order = np.lexsort((days, rows))
    rows, days, closes = rows[order], days[order], closes[order]
    ends = np.cumsum(np.bincount(rows, minlength=n))
    from_end = ends[rows] - 1 - np.arange(len(rows))
    keep = from_end < count
    matrix = np.full((n, count), np.nan)
    matrix[rows[keep], count - 1 - from_end[keep]] = closes[keep]
    last_days = np.full(n, NO_DAY, dtype=np.int64)
    np.maximum.at(last_days, rows, days)
    return _as_dates(last_days), matrix


def load_latest_prices(*, asset_ids: Sequence[int]) -> np.ndarray:
    """Latest price per asset (NaN without any): the quote when dated after the last bar, else the last close."""
    prices = np.full(len(asset_ids), np.nan)
    last_bar = np.full(len(asset_ids), NO_DAY, dtype=np.int64)
    row_of = position_lookup(asset_ids)
    latest = PriceBar.objects.filter(asset_id=OuterRef("pk")).order_by("-date")
    for batch in batched(list(asset_ids), QUERY_BATCH):
        found = [
            row
            for row in Asset.objects.filter(id__in=batch)
            .annotate(
                last_date=Subquery(latest.values("date")[:1]),
                last_close=Subquery(latest.values(close_float=float_column("close"))[:1]),
            )
            .values_list("id", "last_date", "last_close")
            if row[1] is not None
        ]
        if found:
            ids, dates, closes = zip(*found, strict=True)
            last_bar[row_of(ids)], prices[row_of(ids)] = _days(dates), closes
    quote_ids, quote_days, quote_prices = _quote_days(asset_ids)
    if quote_ids:
        rows = row_of(quote_ids)
        fresh = quote_days > last_bar[rows]
        prices[rows[fresh]] = quote_prices[fresh]
    return prices

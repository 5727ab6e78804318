"""Writes for market data: assets, latest quotes and daily bars, all in bulk."""

from collections.abc import Iterable
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
from django.conf import settings
from django.db import DataError, IntegrityError, router, transaction
from django.db.models import Exists, OuterRef

from core.bulk_writes import write_rows

from .models import Asset, PriceBar, Quote
from .providers.base import History, QuoteData

SIX_PLACES = Decimal("0.000001")
QUOTE_FIELDS = ["price", "previous_close", "change", "as_of", "fetched_at", "source"]


def _quantize(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(SIX_PLACES, rounding=ROUND_HALF_UP)


def _asset_ids(symbols: Iterable[str]) -> dict[str, int]:
    return dict(Asset.objects.filter(symbol__in=set(symbols)).values_list("symbol", "id"))


def ensure_assets(*, symbols: Iterable[str]) -> dict[str, int]:
    """Create the assets that do not exist yet; return symbol -> id for every symbol given."""
    wanted = list(dict.fromkeys(symbols))
    ids = _asset_ids(wanted)
    missing = [Asset(symbol=symbol, name=symbol) for symbol in wanted if symbol not in ids]
    if missing:
        # ignore_conflicts: another worker may create the same asset at the same moment.
        Asset.objects.bulk_create(missing, ignore_conflicts=True)
        ids = _asset_ids(wanted)
    return ids


def store_quotes(*, quotes: Iterable[QuoteData], source: str, fetched_at: datetime) -> list[str]:
    """Upsert quotes of known assets; return the symbols whose price is new or changed.

    Every quote is written, changed or not, so `fetched_at` records that it was checked.
    Symbols without an Asset are ignored. A quote without a price or time is an anomaly the
    screen holds back; given one, this raises ValueError before writing anything.
    """
    latest = {quote.symbol: quote for quote in quotes}  # one row per asset in one upsert
    ids = _asset_ids(latest)
    if not ids:
        return []
    previous = dict(Quote.objects.filter(asset_id__in=ids.values()).values_list("asset_id", "price"))
    rows, changed = [], []
    for symbol, quote in latest.items():
        if symbol not in ids:
            continue
        if quote.price is None or quote.as_of is None:
            raise ValueError(f"The quote of {symbol} lacks a price or time; screen quotes before storing them.")
        price = quote.price.quantize(SIX_PLACES, rounding=ROUND_HALF_UP)
        if previous.get(ids[symbol]) != price:
            changed.append(symbol)
        rows.append(
            Quote(
                asset_id=ids[symbol],
                price=price,
                previous_close=_quantize(quote.previous_close),
                change=_quantize(quote.change),
                as_of=quote.as_of,
                fetched_at=fetched_at,
                source=source,
            )
        )
    with transaction.atomic():
        Quote.objects.bulk_create(
            rows,
            batch_size=settings.REFRESH_WRITE_BATCH,
            update_conflicts=True,
            unique_fields=["asset"],
            update_fields=QUOTE_FIELDS,
        )
    return changed


PRICE_COLUMNS = ("open", "high", "low", "close")


def _bar_columns(history: History) -> list[list[Any]]:
    """A history's bars as columns (ISO dates, prices rounded to 6 places, volumes), skipping
    bars with a missing (non-finite) price."""
    finite = np.logical_and.reduce([np.isfinite(getattr(history, name)) for name in PRICE_COLUMNS])
    return [
        np.datetime_as_string(history.dates[finite], unit="D").tolist(),
        *(np.round(getattr(history, name)[finite], 6).tolist() for name in PRICE_COLUMNS),
        history.volume[finite].tolist(),
    ]


# Bars per write: the histories of one statement and transaction. Their values as Python lists
# (about 20 MB per 100,000 bars) are all that a write adds to memory; a full refresh of 500
# assets × 5 years writes in 7 statements instead of 500.
BARS_PER_WRITE = 100_000


def store_history(*, histories: Iterable[History], batch_size: int | None = None) -> int:
    """Upsert daily bars of known assets; return how many rows were written.

    Whole histories go together, about BARS_PER_WRITE bars a transaction, so a failure never
    leaves a history half written: when a batch fails (a bad value, an asset deleted meanwhile,
    first bars of an asset stored by another run meanwhile) its histories are written again one
    by one, each upserted in a transaction of its own, and the one that fails raises, as it
    would alone. Symbols without an Asset are ignored. Bars go straight through the database
    driver, without model instances or Decimals: they are most of a full refresh's writes. A
    bar that comes back unchanged (most of a full refresh's history) is not rewritten; an
    asset with no bars yet gets its history inserted with nothing to compare (on PostgreSQL,
    one COPY straight into the table: a cold start's whole history).
    """
    histories = [history for history in histories if len(history)]
    ids = _asset_ids(history.symbol for history in histories)
    histories = [history for history in histories if history.symbol in ids]
    using = router.db_for_write(PriceBar)
    unbarred = set(
        Asset.objects.filter(id__in=ids.values())
        .exclude(Exists(PriceBar.objects.filter(asset_id=OuterRef("pk"))))
        .values_list("id", flat=True)
    )
    written = 0
    for batch in _batches(histories):
        first = [history for history in batch if ids[history.symbol] in unbarred]
        try:
            with transaction.atomic(using=using):
                written += _write_bars(first, ids, upsert=False, batch_size=batch_size)
                written += _write_bars(
                    [history for history in batch if ids[history.symbol] not in unbarred],
                    ids,
                    upsert=True,
                    batch_size=batch_size,
                )
        except (IntegrityError, DataError):
            for history in batch:
                with transaction.atomic(using=using):
                    written += _write_bars([history], ids, upsert=True, batch_size=batch_size)
    return written


def _batches(histories: list[History]) -> Iterable[list[History]]:
    """Consecutive histories, about BARS_PER_WRITE bars together (one history at least) and each
    symbol once: one statement cannot upsert the same bar twice."""
    batch: list[History] = []
    symbols: set[str] = set()
    bars = 0
    for history in histories:
        if history.symbol in symbols:
            yield batch
            batch, symbols, bars = [], set(), 0
        batch.append(history)
        symbols.add(history.symbol)
        bars += len(history)
        if bars >= BARS_PER_WRITE:
            yield batch
            batch, symbols, bars = [], set(), 0
    if batch:
        yield batch


def _write_bars(histories: list[History], ids: dict[str, int], *, upsert: bool, batch_size: int | None) -> int:
    """The histories' bars in one write: upserted, or inserted when their assets had none."""
    columns: dict[str, list[Any]] = {name: [] for name in ("asset", "date", *PRICE_COLUMNS, "volume")}
    for history in histories:
        bars = _bar_columns(history)
        columns["asset"] += [ids[history.symbol]] * len(bars[0])
        for name, values in zip(list(columns)[1:], bars, strict=True):
            columns[name] += values
    if upsert:
        return write_rows(
            PriceBar,
            columns=columns,
            unique_fields=["asset", "date"],
            skip_unchanged=True,
            batch_size=batch_size,
        )
    return write_rows(PriceBar, columns=columns, batch_size=batch_size)

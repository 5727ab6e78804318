"""Writes for market data: assets, latest quotes and daily bars, all in bulk."""
from collections.abc import Iterable
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import psycopg
from django.conf import settings
from django.db import connections, router, transaction

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
    Symbols without an Asset are ignored.
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
        price = _quantize(quote.price)
        if previous.get(ids[symbol]) != price:
            changed.append(symbol)
        rows.append(Quote(
            asset_id=ids[symbol], price=price, previous_close=_quantize(quote.previous_close),
            change=_quantize(quote.change), as_of=quote.as_of, fetched_at=fetched_at, source=source,
        ))
    with transaction.atomic():
        Quote.objects.bulk_create(rows, batch_size=settings.REFRESH_WRITE_BATCH, update_conflicts=True,
                                  unique_fields=["asset"], update_fields=QUOTE_FIELDS)
    return changed


PRICE_COLUMNS = ("open", "high", "low", "close")


def _bar_columns(history: History) -> list[list]:
    """A history's bars as columns (ISO dates, prices rounded to 6 places, volumes), skipping
    bars with a missing (non-finite) price."""
    finite = np.logical_and.reduce([np.isfinite(getattr(history, name)) for name in PRICE_COLUMNS])
    return [np.datetime_as_string(history.dates[finite], unit="D").tolist(),
            *(np.round(getattr(history, name)[finite], 6).tolist() for name in PRICE_COLUMNS),
            history.volume[finite].tolist()]


def _bar_upsert_sql(connection) -> str:
    """One statement that upserts a chunk of one asset's bars, in the database's fastest form.

    PostgreSQL takes whole columns as binary arrays (one round trip per chunk) and rounds to
    the columns' 6 places itself; SQLite runs the row statement in its own C loop.
    """
    def column(name: str) -> str:
        return connection.ops.quote_name(PriceBar._meta.get_field(name).column)

    table = connection.ops.quote_name(PriceBar._meta.db_table)
    names = [column(name) for name in ("asset", "date", *PRICE_COLUMNS, "volume")]
    values = names[2:]
    updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in values)
    # A bar that comes back unchanged (most of a full refresh's history) is not rewritten.
    distinct = "IS DISTINCT FROM" if connection.vendor == "postgresql" else "IS NOT"  # both null-safe
    differs = (f"({', '.join(f'{table}.{name}' for name in values)}) {distinct} "
               f"({', '.join(f'EXCLUDED.{name}' for name in values)})")
    conflict = f"ON CONFLICT ({names[0]}, {names[1]}) DO UPDATE SET {updates} WHERE {differs}"
    if connection.vendor == "postgresql":
        rounded = ", ".join(f"round({name}::numeric, 6)" for name in ("o", "h", "l", "c"))
        return (f"INSERT INTO {table} ({', '.join(names)}) SELECT %b, day, {rounded}, v FROM unnest("
                f"%b::date[], %b::float8[], %b::float8[], %b::float8[], %b::float8[], %b::bigint[]) "
                f"AS bar(day, o, h, l, c, v) {conflict}")
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))}) {conflict}"


def _write_bar_chunk(connection, sql: str, asset_id: int, columns: list[list]) -> None:
    if connection.vendor == "postgresql":
        # A server-binding cursor sends the arrays as binary, instead of Django's client-side
        # cursor quoting thousands of floats into the SQL text.
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(sql, [asset_id, *columns])
    else:
        with connection.cursor() as cursor:
            cursor.executemany(sql, [(asset_id, *row) for row in zip(*columns)])


def store_history(*, histories: Iterable[History], batch_size: int | None = None) -> int:
    """Upsert daily bars of known assets; return how many rows were written.

    Each symbol's bars go in one transaction, so a failure never leaves a history half
    written. Symbols without an Asset are ignored. Bars go straight through the database
    driver, without model instances or Decimals: they are most of a full refresh's writes.
    """
    histories = [history for history in histories if len(history)]
    ids = _asset_ids(history.symbol for history in histories)
    batch_size = batch_size or settings.REFRESH_WRITE_BATCH
    using = router.db_for_write(PriceBar)
    connection = connections[using]
    sql = _bar_upsert_sql(connection)
    written = 0
    for history in histories:
        if history.symbol not in ids:
            continue
        columns = _bar_columns(history)
        with transaction.atomic(using=using):
            connection.ensure_connection()
            for start in range(0, len(columns[0]), batch_size):
                _write_bar_chunk(connection, sql, ids[history.symbol],
                                 [column[start:start + batch_size] for column in columns])
        written += len(columns[0])
    return written

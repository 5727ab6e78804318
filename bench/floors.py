"""What a full refresh is measured against, on the rows and figures it has just produced.

- The write floor: every row the refresh wrote, written again with one plain ``executemany``
  per table through the database driver (sqlite3 or psycopg), outside Django.
- The COPY floor (PostgreSQL): the same rows loaded again with one ``COPY`` per table through
  psycopg into the table emptied of them, the fastest way in: no upsert, nothing to compare.
- The compute floor: the same figures computed by the same numpy functions on matrices
  already in memory, for every portfolio at once.
- The naive baseline: a sample of the same rows saved one by one through the ORM
  (``update_or_create``, one transaction each), extrapolated to all rows.
"""

import sqlite3
import time
from typing import Any

import numpy as np
import psycopg
from django.conf import settings
from django.db import connection, models
from django.db.models import QuerySet
from psycopg.types.json import Jsonb

from core.bulk_writes import column_name, concrete_field
from market_data.models import Asset, PriceBar, Quote
from portfolios.analytics.allocation import rebalance_trades, tilt_weights
from portfolios.analytics.benchmark import asset_correlations, compare_to_benchmark
from portfolios.analytics.performance import performance
from portfolios.analytics.signals import MIN_BARS, trend_momentum
from portfolios.analytics.valuation import current_weights, value_series
from portfolios.analytics.windows import HISTORY_DAYS
from portfolios.models import Allocation, BenchmarkComparison, PortfolioMetrics, RebalanceProposal, Signal
from portfolios.selectors.assets import active_asset_ids, asset_symbols
from portfolios.selectors.holdings import existing_portfolio_ids, held_asset_ids, load_holdings
from portfolios.selectors.prices import (
    figure_price_ids,
    load_latest_prices,
    load_recent_closes,
    load_recent_price_history,
)
from portfolios.selectors.strategies import signal_strengths, strategies_for

# Every table a full refresh writes, with the fields its upsert matches on (None: inserts only).
WRITTEN: list[tuple[type[models.Model], list[str] | None]] = [
    (Quote, ["asset"]),
    (PriceBar, ["asset", "date"]),
    (Signal, ["asset"]),
    (Allocation, ["strategy", "asset"]),
    (RebalanceProposal, None),
    (PortfolioMetrics, ["portfolio"]),
    (BenchmarkComparison, ["portfolio"]),
]


def _fields(model: type[models.Model]) -> list["models.Field[Any, Any]"]:
    """The concrete fields a write sets: all but an auto-created id."""
    return [f for f in model._meta.concrete_fields if not (f.primary_key and isinstance(f, models.AutoField))]


def _written_rows(model: type[models.Model]) -> QuerySet[Any]:
    """The model's rows the refresh wrote: all of them, except proposals (only the run's own)."""
    rows = model._default_manager.order_by()
    return rows.filter(status="proposed") if model is RebalanceProposal else rows


class _Driver:
    """A plain driver connection to the benchmark database, outside Django."""

    def __init__(self):
        db = connection.settings_dict
        self.vendor = connection.vendor
        self.conn: psycopg.Connection[Any] | sqlite3.Connection
        if self.vendor == "postgresql":
            self.conn = psycopg.connect(
                dbname=db["NAME"],
                user=db["USER"] or None,
                password=db["PASSWORD"] or None,
                host=db["HOST"] or None,
                port=db["PORT"] or None,
            )
        else:
            self.conn = sqlite3.connect(db["NAME"], isolation_level=None)
            self.conn.execute("PRAGMA synchronous=NORMAL")  # as the service runs it

    def placeholder(self, count: int) -> str:
        return ", ".join(["%s" if self.vendor == "postgresql" else "?"] * count)

    def begin(self):
        if self.vendor == "sqlite":
            self.conn.execute("BEGIN IMMEDIATE")

    def commit(self):
        self.conn.commit() if self.vendor == "postgresql" else self.conn.execute("COMMIT")

    def close(self):
        self.conn.close()


def _upsert_sql(driver: _Driver, model: type[models.Model], conflict: list[str] | None) -> str:
    fields = _fields(model)
    quote = connection.ops.quote_name
    names = [column_name(f) for f in fields]
    columns = ", ".join(quote(name) for name in names)
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({driver.placeholder(len(fields))})"  # noqa: S608 - names come from Model._meta, values are parameters
    if conflict is None:
        return sql
    keys = [column_name(concrete_field(model, name)) for name in conflict]
    updates = ", ".join(f"{quote(name)} = EXCLUDED.{quote(name)}" for name in names if name not in keys)
    return f"{sql} ON CONFLICT ({', '.join(quote(k) for k in keys)}) DO UPDATE SET {updates}"


def _driver_rows(driver: _Driver, model: type[models.Model]) -> list[tuple[Any, ...]]:
    """The rows as the driver returns them (JSON wrapped again for psycopg to send back)."""
    fields = _fields(model)
    sql, params = _written_rows(model).values_list(*[f.attname for f in fields]).query.sql_with_params()
    if driver.vendor == "sqlite":
        sql = sql.replace("%s", "?")
    rows = driver.conn.execute(sql, params).fetchall()
    json_columns = [i for i, f in enumerate(fields) if isinstance(f, models.JSONField)]
    if driver.vendor == "postgresql" and json_columns:
        rows = [tuple(Jsonb(v) if i in json_columns else v for i, v in enumerate(row)) for row in rows]
    return rows


def _summed(tables: dict[str, dict[str, float]]) -> dict[str, Any]:
    """A write floor: each table's rows and seconds, and their totals."""
    return {
        "tables": tables,
        "rows": sum(t["rows"] for t in tables.values()),
        "seconds": sum(t["seconds"] for t in tables.values()),
    }


def measure_write_floor() -> dict[str, Any]:
    """Seconds to write each table's rows with one executemany and commit, through the bare driver."""
    driver = _Driver()
    tables: dict[str, dict[str, float]] = {}
    try:
        for model, conflict in WRITTEN:
            rows = _driver_rows(driver, model)
            sql = _upsert_sql(driver, model, conflict)
            last_id = (
                model._default_manager.order_by("-pk").values_list("pk", flat=True).first()
                if conflict is None
                else None
            )
            began = time.perf_counter()
            driver.begin()
            driver.conn.cursor().executemany(sql, rows)
            driver.commit()
            tables[model._meta.db_table] = {"rows": len(rows), "seconds": time.perf_counter() - began}
            if conflict is None:  # undo the duplicate inserts, untimed
                model._default_manager.filter(pk__gt=last_id or 0).delete()
    finally:
        driver.close()
    return _summed(tables)


def empty_table_sql(model: type[models.Model]) -> tuple[str, list[Any]]:
    """What takes the written rows out of the table: TRUNCATE, or DELETE where the refresh wrote
    only some of its rows (proposals)."""
    table = connection.ops.quote_name(model._meta.db_table)
    if model is not RebalanceProposal:
        return f"TRUNCATE {table}", []
    sql, params = _written_rows(model).values("id").query.sql_with_params()
    return f"DELETE FROM {table} WHERE id IN ({sql})", list(params)  # noqa: S608 - names come from Model._meta, values are parameters


def measure_copy_floor() -> dict[str, Any]:
    """PostgreSQL: seconds to load each table's rows with one COPY and commit, through the bare driver.

    Each table is first emptied of those rows, untimed, in the same transaction (a failure
    puts them back), so the COPY pays what an insert of them pays: the same indexes, foreign
    keys (checked at the commit) and WAL. Statistics are gathered again afterwards, untimed.
    """
    driver = _Driver()
    if not isinstance(driver.conn, psycopg.Connection):
        raise TypeError("the COPY floor is measured on PostgreSQL only")
    conn = driver.conn
    tables: dict[str, dict[str, float]] = {}
    quote = connection.ops.quote_name
    try:
        for model, _ in WRITTEN:
            rows = _driver_rows(driver, model)
            table = quote(model._meta.db_table)
            columns = ", ".join(quote(column_name(f)) for f in _fields(model))
            conn.execute(*empty_table_sql(model))
            began = time.perf_counter()
            with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            conn.commit()
            tables[model._meta.db_table] = {"rows": len(rows), "seconds": time.perf_counter() - began}
            conn.execute(f"ANALYZE {table}")
            conn.commit()
    finally:
        driver.close()
    return _summed(tables)


def measure_compute_floor() -> dict[str, Any]:
    """Seconds for numpy alone to compute every figure of every portfolio from in-memory matrices."""
    asset_ids = held_asset_ids()
    benchmark_id = Asset.objects.get(symbol=settings.BENCHMARK_SYMBOL).pk
    history = load_recent_price_history(asset_ids=figure_price_ids(asset_ids, benchmark_id), days=HISTORY_DAYS)
    dates, bench_row = history.dates, history.row(benchmark_id)
    bench, bench_traded = history.closes[bench_row], history.traded[bench_row]
    closes, traded = history.closes[: len(asset_ids)], history.traded[: len(asset_ids)]
    portfolio_ids = existing_portfolio_ids()
    quantities, _ = load_holdings(portfolio_ids=portfolio_ids, asset_ids=asset_ids)
    _, recent = load_recent_closes(asset_ids=active_asset_ids(), count=MIN_BARS)
    column = dict(zip(asset_symbols(asset_ids=asset_ids), range(len(asset_ids)), strict=True))
    strategies = strategies_for(portfolio_ids=portfolio_ids)
    row = {pid: i for i, pid in enumerate(portfolio_ids)}
    targets, tilts, thresholds = np.zeros_like(quantities), np.zeros(len(portfolio_ids)), np.zeros(len(portfolio_ids))
    for _, pid, weights, tilt, threshold in strategies:
        tilts[row[pid]], thresholds[row[pid]] = tilt, threshold
        for symbol, weight in weights.items():
            if symbol in column:
                targets[row[pid], column[symbol]] = weight
    strengths = signal_strengths(asset_ids=asset_ids)
    prices = load_latest_prices(asset_ids=asset_ids)

    rate = settings.REFRESH_RISK_FREE_RATE
    began = time.perf_counter()
    values, calendar = value_series(quantities, closes, traded)
    performance(values, calendar, dates, risk_free_rate=rate)
    current_weights(quantities, closes[:, -1])
    compare_to_benchmark(values, calendar, bench, bench_traded, dates, risk_free_rate=rate)
    asset_correlations(closes, traded, bench, bench_traded, dates)
    trend_momentum(recent)
    rebalance_trades(quantities, prices, tilt_weights(targets, strengths, tilts), thresholds)
    return {"seconds": time.perf_counter() - began, "portfolios": len(portfolio_ids), "assets": len(asset_ids)}


def _save_one_by_one(model: type[models.Model], conflict: list[str] | None, rows: list[dict[str, Any]]) -> None:
    for values in rows:
        if conflict is None:
            model(**values).save()
        else:
            keys = {concrete_field(model, name).attname for name in conflict}
            model._default_manager.update_or_create(
                **{k: values[k] for k in keys}, defaults={k: v for k, v in values.items() if k not in keys}
            )


def measure_naive_baseline(*, sample: int, bar_sample: int) -> dict[str, Any]:
    """Row-by-row ORM saves of a sample of each table's rows, extrapolated to every row."""
    tables: dict[str, dict[str, float]] = {}
    for model, conflict in WRITTEN:
        attnames = [f.attname for f in _fields(model)]
        total = _written_rows(model).count()
        rows = list(_written_rows(model).values(*attnames)[: bar_sample if model is PriceBar else sample])
        if not rows:
            continue
        last_id = model._default_manager.order_by("-pk").values_list("pk", flat=True).first()
        began = time.perf_counter()
        _save_one_by_one(model, conflict, rows)
        seconds = time.perf_counter() - began
        if conflict is None:
            model._default_manager.filter(pk__gt=last_id or 0).delete()
        tables[model._meta.db_table] = {
            "rows_sampled": len(rows),
            "seconds": seconds,
            "rows": total,
            "estimated_seconds": seconds / len(rows) * total,
        }
    return {
        "tables": tables,
        "estimated_seconds": sum(t["estimated_seconds"] for t in tables.values()),
        "rows_sampled": sum(t["rows_sampled"] for t in tables.values()),
    }

"""Reads behind portfolio analytics and the read API.

Analytics: price and holdings matrices, and which portfolios to touch. Prices are read with
values_list and cast to float in the database, straight into numpy arrays; no model
instances are built for bars, quotes or holdings.

Read API: a portfolio in full and pages of portfolios, as JSON-ready dicts (decimals as
strings, times in UTC) that the data cache stores as they are.
"""
import math
from collections.abc import Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
from django.conf import settings
from django.db.models import Count, F, FloatField, Max, OuterRef, Subquery, Window
from django.db.models.functions import Cast, RowNumber
from django.utils import timezone

from market_data.models import Asset, PriceBar, Quote

from .batches import QUERY_BATCH, batched
from .models import (
    Allocation, BenchmarkComparison, Holding, Portfolio, PortfolioMetrics, ProposalStatus, RebalanceProposal, Signal,
    Strategy,
)

# Assets per price query: bounds the rows held as Python objects at any one time.
PRICE_BATCH = 100
NO_DAY = np.iinfo(np.int64).min


def _float(field: str) -> Cast:
    return Cast(field, FloatField())


# date.toordinal() of 1970-01-01: ordinals minus this are numpy's datetime64[D] day numbers.
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _days(values: list) -> np.ndarray:
    """Dates as int64 day numbers (days since 1970-01-01).

    Through date.toordinal, about 25 times faster than numpy parsing date objects one by one:
    a full refresh converts a few hundred thousand of them.
    """
    return np.fromiter(map(date.toordinal, values), dtype=np.int64, count=len(values)) - EPOCH_ORDINAL


def _position_lookup(ids: Sequence[int]):
    """A vectorised map from ids (all present in `ids`) to their positions in `ids`."""
    ids = np.asarray(ids, dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    return lambda found: order[np.searchsorted(ids[order], np.asarray(found, dtype=np.int64))]


def _quote_days(asset_ids: Sequence[int]) -> tuple[list[int], list[int], list[float]]:
    """Each quote's asset id, its as_of as a local day number, and its price."""
    ids, days, prices = [], [], []
    for batch in batched(list(asset_ids), QUERY_BATCH):
        quotes = Quote.objects.filter(asset_id__in=batch).values_list("asset_id", "as_of", _float("price"))
        for asset_id, as_of, price in quotes:
            if price is not None:
                ids.append(asset_id)
                days.append(timezone.localtime(as_of).date())
                prices.append(price)
    return ids, list(_days(days)), prices


def _forward_fill(matrix: np.ndarray) -> np.ndarray:
    """Carries each row's last known value forward over NaN gaps."""
    known = ~np.isnan(matrix)
    last_known = np.where(known, np.arange(matrix.shape[1]), 0)
    np.maximum.accumulate(last_known, axis=1, out=last_known)
    return matrix[np.arange(matrix.shape[0])[:, None], last_known]


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
        return ~np.isnat(self.last_days)

    def row(self, asset_id: int) -> int:
        return self.asset_ids.index(asset_id)

    def on_days(self, days: np.ndarray) -> "PriceHistory":
        """The same history on some of its days (indexes, ascending)."""
        return PriceHistory(asset_ids=self.asset_ids, dates=self.dates[days], closes=self.closes[:, days],
                            traded=self.traded[:, days], last_days=self.last_days)


def load_price_history(*, asset_ids: Sequence[int], start: date | None = None) -> PriceHistory:
    """The assets' PriceHistory from `start` on (all of it when None)."""
    asset_ids = list(asset_ids)
    n = len(asset_ids)
    row_of = _position_lookup(asset_ids)
    start_day = _days([start])[0] if start else None
    bar_rows, bar_days, bar_closes = [], [], []
    seed_days = np.full(n, NO_DAY, dtype=np.int64)
    seed_closes = np.full(n, np.nan)
    for batch in batched(asset_ids, PRICE_BATCH):
        bars = PriceBar.objects.filter(asset_id__in=batch).order_by()
        if start:
            bars = bars.filter(date__gte=start)
            earlier = PriceBar.objects.filter(asset_id=OuterRef("pk"), date__lt=start).order_by("-date")
            seeds = [seed for seed in Asset.objects.filter(id__in=batch).annotate(
                seed_date=Subquery(earlier.values("date")[:1]),
                seed_close=Subquery(earlier.values(close_float=_float("close"))[:1]),
            ).values_list("id", "seed_date", "seed_close") if seed[1] is not None]
            if seeds:
                seed_ids, seed_dates, seed_values = zip(*seeds)
                seed_days[row_of(seed_ids)] = _days(list(seed_dates))
                seed_closes[row_of(seed_ids)] = seed_values
        if rows := list(bars.values_list("asset_id", "date", _float("close"))):
            ids, days, closes = zip(*rows)
            bar_rows.append(row_of(ids))
            bar_days.append(_days(list(days)))
            bar_closes.append(np.array(closes, dtype=np.float64))
    rows = np.concatenate([np.empty(0, np.int64), *bar_rows])
    days = np.concatenate([np.empty(0, np.int64), *bar_days])
    closes = np.concatenate([np.empty(0), *bar_closes])

    last_day = seed_days.copy()
    np.maximum.at(last_day, rows, days)
    quote_ids, quote_days, quote_prices = _quote_days(asset_ids)
    if quote_ids:
        quote_rows, quote_days = row_of(quote_ids), np.asarray(quote_days, dtype=np.int64)
        fresh = quote_days > last_day[quote_rows]
        if start_day is not None:
            fresh &= quote_days >= start_day
        rows = np.concatenate([rows, quote_rows[fresh]])
        days = np.concatenate([days, quote_days[fresh]])
        closes = np.concatenate([closes, np.asarray(quote_prices)[fresh]])
        np.maximum.at(last_day, quote_rows[fresh], quote_days[fresh])

    axis = np.unique(days)
    matrix = np.full((n, len(axis) + 1), np.nan)
    matrix[:, 0] = seed_closes
    matrix[rows, np.searchsorted(axis, days) + 1] = closes
    traded = ~np.isnan(matrix[:, 1:])
    last_days = np.where(last_day == NO_DAY, np.datetime64("NaT", "D"), last_day.astype("datetime64[D]"))
    return PriceHistory(asset_ids=asset_ids, dates=axis.astype("datetime64[D]"), closes=_forward_fill(matrix)[:, 1:],
                        traded=traded, last_days=last_days)


# Price histories read inside a shared_price_reads() block, by (asset ids, start).
_shared_histories: ContextVar[dict | None] = ContextVar("shared_histories", default=None)


@contextmanager
def shared_price_reads():
    """Within the block, the same price history is read from the database once.

    One recalculation values portfolios and compares them with the benchmark over the same
    assets and days; prices do not change between the two. The histories are read-only.
    """
    token = _shared_histories.set({})
    try:
        yield
    finally:
        _shared_histories.reset(token)


def load_recent_price_history(*, asset_ids: Sequence[int], days: int) -> PriceHistory:
    """load_price_history from `days` calendar days before the assets' latest bar."""
    def load() -> PriceHistory:
        latest = None
        for batch in batched(list(asset_ids), QUERY_BATCH):
            found = PriceBar.objects.filter(asset_id__in=batch).aggregate(latest=Max("date"))["latest"]
            latest = max(filter(None, [latest, found]), default=None)
        return load_price_history(asset_ids=asset_ids, start=latest - timedelta(days=days) if latest else None)
    return _read_once(("recent", tuple(asset_ids), days), load)


def _read_once(key: tuple, load) -> PriceHistory:
    shared = _shared_histories.get()
    if shared is not None and key in shared:
        return shared[key]
    history = load()
    if shared is not None:
        for array in (history.dates, history.closes, history.traded, history.last_days):
            array.flags.writeable = False
        shared[key] = history
    return history


def load_recent_closes(*, asset_ids: Sequence[int], count: int) -> tuple[np.ndarray, np.ndarray]:
    """Each asset's own last `count` closes, latest last, with no calendar alignment.

    Returns (last_dates: datetime64[D] per asset, NaT without prices; closes: assets x count,
    NaN-padded on the left when history is shorter). A quote dated after the last bar counts
    as the latest close, as in load_price_history.
    """
    n = len(asset_ids)
    row_of = _position_lookup(asset_ids)
    ids, days, closes = [], [], []
    for batch in batched(asset_ids, PRICE_BATCH):
        newest_first = Window(RowNumber(), partition_by=[F("asset_id")], order_by=F("date").desc())
        bars = (PriceBar.objects.filter(asset_id__in=batch).annotate(recency=newest_first)
                .filter(recency__lte=count).order_by().values_list("asset_id", "date", _float("close")))
        for asset_id, day, close in bars:
            ids.append(asset_id)
            days.append(day)
            closes.append(close)
    rows, days, closes = row_of(ids) if ids else np.empty(0, np.int64), _days(days), np.asarray(closes, float)

    last_bar = np.full(n, NO_DAY, dtype=np.int64)
    np.maximum.at(last_bar, rows, days)
    quote_ids, quote_days, quote_prices = _quote_days(asset_ids)
    if quote_ids:
        quote_rows, quote_days = row_of(quote_ids), np.asarray(quote_days, dtype=np.int64)
        fresh = quote_days > last_bar[quote_rows]
        rows = np.concatenate([rows, quote_rows[fresh]])
        days = np.concatenate([days, quote_days[fresh]])
        closes = np.concatenate([closes, np.asarray(quote_prices)[fresh]])

    order = np.lexsort((days, rows))
    rows, days, closes = rows[order], days[order], closes[order]
    ends = np.cumsum(np.bincount(rows, minlength=n))
    from_end = ends[rows] - 1 - np.arange(len(rows))
    keep = from_end < count
    matrix = np.full((n, count), np.nan)
    matrix[rows[keep], count - 1 - from_end[keep]] = closes[keep]
    last_days = np.full(n, NO_DAY, dtype=np.int64)
    np.maximum.at(last_days, rows, days)
    return np.where(last_days == NO_DAY, np.datetime64("NaT", "D"), last_days.astype("datetime64[D]")), matrix


def load_latest_prices(*, asset_ids: Sequence[int]) -> np.ndarray:
    """Latest price per asset (NaN without any): the quote when dated after the last bar, else the last close."""
    prices = np.full(len(asset_ids), np.nan)
    last_bar = np.full(len(asset_ids), NO_DAY, dtype=np.int64)
    row_of = _position_lookup(asset_ids)
    latest = PriceBar.objects.filter(asset_id=OuterRef("pk")).order_by("-date")
    for batch in batched(list(asset_ids), QUERY_BATCH):
        found = [row for row in Asset.objects.filter(id__in=batch).annotate(
            last_date=Subquery(latest.values("date")[:1]),
            last_close=Subquery(latest.values(close_float=_float("close"))[:1]),
        ).values_list("id", "last_date", "last_close") if row[1] is not None]
        if found:
            ids, dates, closes = zip(*found)
            last_bar[row_of(ids)], prices[row_of(ids)] = _days(list(dates)), closes
    quote_ids, quote_days, quote_prices = _quote_days(asset_ids)
    if quote_ids:
        rows = row_of(quote_ids)
        fresh = np.asarray(quote_days, dtype=np.int64) > last_bar[rows]
        prices[rows[fresh]] = np.asarray(quote_prices)[fresh]
    return prices


def load_holdings(*, portfolio_ids: Sequence[int], asset_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Holdings as (quantities, cost bases), both portfolios x assets, in the given orders.

    Holdings of assets outside asset_ids are left out of both.
    """
    quantities = np.zeros((len(portfolio_ids), len(asset_ids)))
    costs = np.zeros((len(portfolio_ids), len(asset_ids)))
    if not len(asset_ids) or not len(portfolio_ids):
        return quantities, costs
    portfolio_row, asset_col = _position_lookup(portfolio_ids), _position_lookup(asset_ids)
    known_assets = np.sort(np.asarray(asset_ids, dtype=np.int64))
    for batch in batched(portfolio_ids, QUERY_BATCH):
        rows = Holding.objects.filter(portfolio_id__in=batch).order_by().values_list(
            "portfolio_id", "asset_id", _float("quantity"), _float("cost_basis"))
        if not (rows := list(rows)):
            continue
        pids, aids, qty, cost = (np.asarray(column) for column in zip(*rows))
        listed = np.isin(aids, known_assets)
        r, c = portfolio_row(pids[listed]), asset_col(aids[listed])
        np.add.at(quantities, (r, c), qty[listed].astype(float))
        np.add.at(costs, (r, c), cost[listed].astype(float))
    return quantities, costs


def existing_portfolio_ids(*, portfolio_ids: Sequence[int] | None = None) -> list[int]:
    """Ids of the given portfolios that exist (every portfolio when None), ascending."""
    if portfolio_ids is None:
        return list(Portfolio.objects.order_by("id").values_list("id", flat=True))
    found = set()
    for batch in batched(list(dict.fromkeys(portfolio_ids)), QUERY_BATCH):
        found.update(Portfolio.objects.filter(id__in=batch).values_list("id", flat=True))
    return sorted(found)


def portfolio_ids_holding(*, asset_ids: Sequence[int]) -> list[int]:
    """Ids of portfolios holding any of the assets, ascending."""
    found = set()
    for batch in batched(list(asset_ids), QUERY_BATCH):
        found.update(Holding.objects.filter(asset_id__in=batch).values_list("portfolio_id", flat=True).distinct())
    return sorted(found)


def portfolio_ids_for_user(*, user_id: int) -> list[int]:
    """Ids of the user's portfolios, ascending."""
    return list(Portfolio.objects.filter(owner_id=user_id).order_by("id").values_list("id", flat=True))


def held_asset_ids(*, portfolio_ids: Sequence[int] | None = None) -> list[int]:
    """Ids of assets held by any of the portfolios (by any portfolio when None), ascending."""
    if portfolio_ids is None:
        return sorted(set(Holding.objects.values_list("asset_id", flat=True).distinct()))
    found = set()
    for batch in batched(list(portfolio_ids), QUERY_BATCH):
        found.update(Holding.objects.filter(portfolio_id__in=batch).values_list("asset_id", flat=True).distinct())
    return sorted(found)


def benchmark_asset_id() -> int | None:
    """The benchmark's asset id (settings.BENCHMARK_SYMBOL); None without that asset or any bar of it."""
    benchmark_id = Asset.objects.filter(symbol=settings.BENCHMARK_SYMBOL).values_list("id", flat=True).first()
    if benchmark_id is None or not PriceBar.objects.filter(asset_id=benchmark_id).exists():
        return None
    return benchmark_id


def figure_price_ids(asset_ids: Sequence[int], benchmark_id: int | None) -> list[int]:
    """The assets whose prices the figures read: the held ones in order, then the benchmark unless
    it is held or None. Metrics and comparisons read the same ids, so inside shared_price_reads()
    the second read is the first one's."""
    asset_ids = list(asset_ids)
    return asset_ids if benchmark_id is None or benchmark_id in asset_ids else [*asset_ids, benchmark_id]


def active_asset_ids() -> list[int]:
    """Ids of assets the refresh keeps current, ascending."""
    return list(Asset.objects.filter(is_active=True).order_by("id").values_list("id", flat=True))


def asset_symbols(*, asset_ids: Sequence[int]) -> list[str]:
    """Symbols in asset_ids order."""
    symbols = {}
    for batch in batched(list(asset_ids), QUERY_BATCH):
        symbols.update(Asset.objects.filter(id__in=batch).values_list("id", "symbol"))
    return [symbols[asset_id] for asset_id in asset_ids]


def asset_ids_by_symbol(*, symbols: Sequence[str]) -> dict[str, int]:
    """Symbol to asset id, for the symbols that exist."""
    found = {}
    for batch in batched(list(symbols), QUERY_BATCH):
        found.update(Asset.objects.filter(symbol__in=batch).values_list("symbol", "id"))
    return found


def signal_strengths(*, asset_ids: Sequence[int]) -> np.ndarray:
    """Latest signal strength per asset in asset_ids order; 0 for assets without a signal."""
    strengths = np.zeros(len(asset_ids))
    position = {asset_id: i for i, asset_id in enumerate(asset_ids)}
    for batch in batched(list(asset_ids), QUERY_BATCH):
        for asset_id, strength in Signal.objects.filter(asset_id__in=batch).values_list("asset_id", "strength"):
            strengths[position[asset_id]] = strength
    return strengths


def strategies_for(*, portfolio_ids: Sequence[int]) -> list[tuple[int, int, dict, float, float]]:
    """(strategy id, portfolio id, target_weights, tilt, rebalance_threshold) of the portfolios' strategies."""
    found = []
    for batch in batched(list(portfolio_ids), QUERY_BATCH):
        found.extend(Strategy.objects.filter(portfolio_id__in=batch).order_by("portfolio_id").values_list(
            "id", "portfolio_id", "target_weights", _float("tilt"), _float("rebalance_threshold")))
    return found


# --- Read API ---------------------------------------------------------------------------

CENT = Decimal("0.01")
SUMMARY_METRICS = ("as_of", "market_value", "cost", "unrealised_pnl", "return_1d", "return_1m", "return_ytd",
                   "return_1y")
FIGURE_WINDOW = ("return_basis", "window_start", "window_end", "observations", "periods_per_year", "risk_free_rate",
                 "null_reasons")
DETAIL_METRICS = (*SUMMARY_METRICS, *FIGURE_WINDOW, "unpriced_holdings", "period_starts", "cumulative_return",
                  "annualised_return", "volatility", "downside_deviation", "sharpe", "sortino", "max_drawdown",
                  "max_drawdown_peak", "max_drawdown_trough", "max_drawdown_recovery", "calmar", "weights",
                  "calculated_at")
COMPARISON_FIGURES = ("benchmark_symbol", "as_of", *FIGURE_WINDOW, "benchmark_return_1d", "benchmark_return_1m",
                      "benchmark_return_ytd", "benchmark_return_1y", "excess_return_1y", "excess_return_ytd", "beta",
                      "alpha", "correlation", "tracking_error", "information_ratio", "asset_correlations",
                      "calculated_at")


def _json_value(value):
    """Decimals as strings (as DRF renders them), times as UTC ISO 8601, dates as ISO dates."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _json_row(row: dict, prefix: str = "") -> dict:
    return {name.removeprefix(prefix): _json_value(value) for name, value in row.items()}


def _latest_prices(asset_ids: Sequence[int]) -> dict[int, tuple[Decimal, str]]:
    """Each asset's latest price and when it was true: the quote when dated after the last bar
    (as the analytics do), else the last close; assets with neither are absent."""
    last_bar = PriceBar.objects.filter(asset_id=OuterRef("pk")).order_by("-date")
    rows = Asset.objects.filter(id__in=asset_ids).annotate(
        bar_date=Subquery(last_bar.values("date")[:1]), bar_close=Subquery(last_bar.values("close")[:1]),
    ).values_list("id", "bar_date", "bar_close", "quote__price", "quote__as_of")
    prices = {}
    for asset_id, bar_date, bar_close, quote_price, quote_as_of in rows:
        if quote_price is not None and (bar_date is None or timezone.localtime(quote_as_of).date() > bar_date):
            prices[asset_id] = (quote_price, _json_value(quote_as_of))
        elif bar_close is not None:
            prices[asset_id] = (bar_close, _json_value(bar_date))
    return prices


def _holdings(portfolio_id: int) -> list[dict]:
    rows = list(Holding.objects.filter(portfolio_id=portfolio_id).order_by("asset__symbol").values_list(
        "asset_id", "asset__symbol", "asset__name", "asset__asset_class", "quantity", "cost_basis"))
    prices = _latest_prices([row[0] for row in rows])
    values = {asset_id: (quantity * prices[asset_id][0]).quantize(CENT)
              for asset_id, *_, quantity, _ in rows if asset_id in prices}
    total = sum(values.values(), Decimal(0))
    holdings = []
    for asset_id, symbol, name, asset_class, quantity, cost_basis in rows:
        price, as_of = prices.get(asset_id, (None, None))
        value = values.get(asset_id)
        holdings.append({
            "symbol": symbol, "name": name, "asset_class": asset_class, "quantity": str(quantity),
            "cost_basis": str(cost_basis), "price": _json_value(price), "price_as_of": as_of,
            "market_value": _json_value(value),
            "weight": round(float(value / total), 6) if value is not None and total else None,
        })
    return holdings


def _strategy_parts(portfolio_id: int) -> tuple[dict | None, list[dict], list[dict], list[int]]:
    """The strategy, its allocations and open rebalance proposals, and the assets they name."""
    strategy = Strategy.objects.filter(portfolio_id=portfolio_id).values(
        "id", "signal_rule", "tilt", "rebalance_threshold", "target_weights").first()
    if strategy is None:
        return None, [], [], []
    allocations = list(Allocation.objects.filter(strategy_id=strategy["id"]).order_by("asset__symbol").values(
        "asset_id", "asset__symbol", "target_weight", "tilted_weight", "current_weight"))
    proposals = list(RebalanceProposal.objects.filter(strategy_id=strategy["id"], status=ProposalStatus.PROPOSED)
                     .order_by("asset__symbol").values("asset__symbol", "quantity", "price", "value",
                                                        "current_weight", "target_weight", "created_at",
                                                        "refresh_id"))
    asset_ids = [row.pop("asset_id") for row in allocations]
    strategy.pop("id")
    return (_json_row(strategy), [_json_row(row, "asset__") for row in allocations],
            [_json_row(row, "asset__") for row in proposals], asset_ids)


def portfolio_detail(*, portfolio_id: int) -> dict | None:
    """A portfolio in full: holdings at their latest prices, metrics, strategy, allocations,
    signals of the assets it holds or targets, open rebalance proposals and the benchmark
    comparison. None when there is no such portfolio.
    """
    portfolio = Portfolio.objects.filter(pk=portfolio_id).values(
        "id", "name", "base_currency", "created_at", "owner_id", "owner__username").first()
    if portfolio is None:
        return None
    holdings = _holdings(portfolio_id)
    strategy, allocations, proposals, allocated_ids = _strategy_parts(portfolio_id)
    held_ids = Holding.objects.filter(portfolio_id=portfolio_id).values_list("asset_id", flat=True)
    signals = Signal.objects.filter(asset_id__in={*held_ids, *allocated_ids}).order_by("asset__symbol").values(
        "asset__symbol", "as_of", "action", "strength", "trend", "momentum", "reason")
    metrics = PortfolioMetrics.objects.filter(portfolio_id=portfolio_id).values(*DETAIL_METRICS).first()
    comparison = BenchmarkComparison.objects.filter(portfolio_id=portfolio_id).values(*COMPARISON_FIGURES).first()
    return {
        "id": portfolio["id"], "name": portfolio["name"], "base_currency": portfolio["base_currency"],
        "owner": {"id": portfolio["owner_id"], "username": portfolio["owner__username"]},
        "created_at": _json_value(portfolio["created_at"]),
        "holdings": holdings,
        "metrics": _json_row(metrics) if metrics else None,
        "strategy": strategy,
        "allocations": allocations,
        "signals": [_json_row(row, "asset__") for row in signals],
        "rebalance_proposals": proposals,
        "benchmark_comparison": _json_row(comparison) if comparison else None,
    }


def portfolio_page(*, owner_id: int | None, page: int, size: int) -> dict | None:
    """One page of an owner's portfolios (everyone's when owner_id is None), by id, with their
    headline figures: {"count": all of them, "results": [...]}. None past the last page."""
    portfolios = Portfolio.objects.all() if owner_id is None else Portfolio.objects.filter(owner_id=owner_id)
    count = portfolios.count()
    if page < 1 or page > max(1, math.ceil(count / size)):
        return None
    fields = [f"metrics__{name}" for name in (*SUMMARY_METRICS, "null_reasons")]
    rows = portfolios.order_by("id").values("id", "name", "base_currency", "owner_id", "owner__username", *fields)
    results = []
    for row in rows[(page - 1) * size:page * size]:
        metrics = {name: _json_value(row[f"metrics__{name}"]) for name in SUMMARY_METRICS}
        metrics["null_reasons"] = {name: reason for name, reason in (row["metrics__null_reasons"] or {}).items()
                                   if name in SUMMARY_METRICS}
        results.append({
            "id": row["id"], "name": row["name"], "base_currency": row["base_currency"],
            "owner": {"id": row["owner_id"], "username": row["owner__username"]},
            "metrics": metrics if metrics["as_of"] is not None else None,
        })
    return {"count": count, "results": results}


def portfolio_list_pages(*, portfolio_ids: Sequence[int] | None, size: int) -> tuple[dict[int, set[int]], set[int]]:
    """Which list pages show these portfolios (all when None): ({owner id: its pages}, pages of
    the list of everyone's). Lists are ordered by id, as portfolio_page orders them."""
    if portfolio_ids is None:
        owners = Portfolio.objects.order_by().values_list("owner_id").annotate(n=Count("id"))
        total = Portfolio.objects.count()
        return ({owner: set(range(1, math.ceil(n / size) + 1)) for owner, n in owners},
                set(range(1, math.ceil(total / size) + 1)))
    all_ids = np.fromiter(Portfolio.objects.order_by("id").values_list("id", flat=True), dtype=np.int64)
    wanted = np.asarray(sorted(set(portfolio_ids)), dtype=np.int64)
    wanted = wanted[np.isin(wanted, all_ids)]
    all_pages = {int(p) for p in np.searchsorted(all_ids, wanted) // size + 1}
    owner_of = {}
    for batch in batched(wanted.tolist(), QUERY_BATCH):
        owner_of.update(Portfolio.objects.filter(id__in=batch).values_list("id", "owner_id"))
    owner_pages: dict[int, set[int]] = {}
    seen: dict[int, int] = {}  # portfolios of each owner passed so far, in id order
    for batch in batched(sorted(set(owner_of.values())), QUERY_BATCH):
        for owner, pid in Portfolio.objects.filter(owner_id__in=batch).order_by("owner_id", "id").values_list(
                "owner_id", "id"):
            position = seen.get(owner, 0)
            seen[owner] = position + 1
            if pid in owner_of:
                owner_pages.setdefault(owner, set()).add(position // size + 1)
    return owner_pages, all_pages


def portfolio_ids_showing(*, asset_ids: Sequence[int]) -> list[int]:
    """Ids of portfolios whose read-API view shows any of the assets (held, or allocated to by
    their strategy), ascending."""
    found = set(portfolio_ids_holding(asset_ids=asset_ids))
    for batch in batched(list(asset_ids), QUERY_BATCH):
        found.update(Allocation.objects.filter(asset_id__in=batch).values_list("strategy__portfolio_id", flat=True)
                     .distinct())
    return sorted(found)

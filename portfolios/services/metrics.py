"""Recalculating and storing each portfolio's valuation and performance figures."""
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial

import numpy as np
from django.db import transaction
from django.utils import timezone

from refresh_project.bulk_writes import write_rows

from ..analytics.nulls import FigureSet
from ..analytics.performance import FIGURES, PERIOD_RETURNS, performance
from ..analytics.valuation import current_weights
from ..analytics.windows import HISTORY_DAYS
from ..conventions import return_basis, risk_free_rate
from ..models import PortfolioMetrics
from ..parallel import run_chunks
from ..selectors import (
    PriceHistory, asset_symbols, benchmark_asset_id, existing_portfolio_ids, figure_price_ids, held_asset_ids,
    load_holdings, load_recent_price_history,
)
from .storage import dates_or_none, finite_or_none, rounded, window_columns
from .valuation import figures_on_own_calendars

DRAWDOWN_DATES = ("max_drawdown_peak", "max_drawdown_trough", "max_drawdown_recovery")


def recalculate_portfolio_metrics(
    *, portfolio_ids: Sequence[int] | None = None, on_progress: Callable[[int, int], None] | None = None,
) -> int:
    """Recalculates PortfolioMetrics for the portfolios (all when None); returns how many were stored.

    Each portfolio is valued on its own calendar (the days the assets it holds traded), so its
    figures are the same whatever else is recalculated with it. Holdings without any price are
    left out of value and cost and listed as unpriced. Prices are read once; holdings are
    valued in chunks of REFRESH_METRICS_CHUNK portfolios (in worker processes where
    configured, see portfolios.parallel), each stored in its own transaction before
    on_progress(done, total) runs, so an exception raised there (a cancel or timeout) leaves
    finished chunks stored and consistent.
    """
    ids = existing_portfolio_ids(portfolio_ids=portfolio_ids)
    if not ids:
        return 0
    asset_ids = held_asset_ids(portfolio_ids=None if portfolio_ids is None else ids)
    # The benchmark's prices too: the comparisons read the same history (shared_price_reads).
    history = load_recent_price_history(asset_ids=figure_price_ids(asset_ids, benchmark_asset_id()),
                                        days=HISTORY_DAYS)
    held = len(asset_ids)
    last_prices = history.closes[:held, -1] if len(history.dates) else np.full(held, np.nan)
    context = _Metrics(history=history, held=held, symbols=asset_symbols(asset_ids=asset_ids),
                       last_prices=last_prices, risk_free_rate=risk_free_rate(), basis=return_basis(),
                       calculated_at=timezone.now())
    run_chunks(_store_chunk, context, ids, on_progress=on_progress)
    return len(ids)


@dataclass(frozen=True)
class _Metrics:
    """What every chunk shares: the held assets' recent prices and the run's conventions."""

    history: PriceHistory
    held: int  # the first `held` assets of the history are the held ones (then maybe the benchmark)
    symbols: list[str]
    last_prices: np.ndarray
    risk_free_rate: float
    basis: str
    calculated_at: datetime


def _performance(history: PriceHistory, values: np.ndarray, calendar: np.ndarray, *,
                 risk_free_rate: float) -> FigureSet:
    return performance(values, calendar, history.dates, risk_free_rate=risk_free_rate)


def _store_chunk(context: _Metrics, chunk: Sequence[int]) -> int:
    """Values one chunk of portfolios and stores their metrics in one transaction."""
    history, held = context.history, context.held
    quantities, costs = load_holdings(portfolio_ids=chunk, asset_ids=history.asset_ids[:held])
    unpriced = (quantities != 0) & ~history.priced[None, :held]
    quantities = np.where(unpriced, 0.0, quantities)
    every_asset = np.pad(quantities, ((0, 0), (0, len(history.asset_ids) - held)))  # none of the benchmark
    figures = figures_on_own_calendars(history, every_asset,
                                       partial(_performance, risk_free_rate=context.risk_free_rate))
    _, market_values, weights = current_weights(quantities, context.last_prices)
    cost = np.where(unpriced, 0.0, costs).sum(axis=1)
    today = timezone.localdate(context.calculated_at)
    columns = figures.columns
    with transaction.atomic():
        return write_rows(PortfolioMetrics, unique_fields=["portfolio"], columns={
            "portfolio": chunk, **window_columns(figures, as_of=columns["window_end"], today=today),
            "market_value": rounded(market_values, 2), "cost": rounded(cost, 2),
            "unrealised_pnl": rounded(market_values - cost, 2),
            "unpriced_holdings": _unpriced_lists(chunk, unpriced, context.symbols, today),
            "weights": _weight_maps(weights, context.symbols),
            **{name: finite_or_none(columns[name]) for name in FIGURES},
            **{name: dates_or_none(columns[name]) for name in DRAWDOWN_DATES},
            "period_starts": _period_starts(columns),
        }, constants={"return_basis": context.basis, "risk_free_rate": context.risk_free_rate,
                      "calculated_at": context.calculated_at})


def _weight_maps(weights: np.ndarray, symbols: list[str]) -> list[dict[str, float]]:
    """Per portfolio, symbol to share of market value for every asset it holds."""
    maps = [{} for _ in range(weights.shape[0])]
    for row, col in zip(*np.nonzero(weights)):
        maps[row][symbols[col]] = round(float(weights[row, col]), 6)
    return maps


def _period_starts(columns: dict[str, np.ndarray]) -> list[dict[str, str]]:
    """Per portfolio, period return to the ISO date it starts from (periods without a start left out)."""
    starts = {name: dates_or_none(columns[f"start_{name}"]) for name in PERIOD_RETURNS}
    rows = len(columns["observations"])
    return [{name: day.isoformat() for name in PERIOD_RETURNS if (day := starts[name][row])} for row in range(rows)]


def _unpriced_lists(chunk: Sequence[int], unpriced: np.ndarray, symbols: list[str], today: date) -> list[list[dict]]:
    """Per portfolio, its holdings without a price: symbol, and since when the refresh has found it so."""
    lists = [[] for _ in chunk]
    rows = np.flatnonzero(unpriced.any(axis=1))
    if not len(rows):
        return lists
    earlier = dict(PortfolioMetrics.objects.filter(portfolio_id__in=[chunk[r] for r in rows])
                   .values_list("portfolio_id", "unpriced_holdings"))
    for row in rows:
        since = {entry.get("symbol"): entry.get("since") for entry in earlier.get(chunk[row]) or []
                 if isinstance(entry, dict)}
        lists[row] = [{"symbol": symbols[col], "since": since.get(symbols[col]) or today.isoformat()}
                      for col in np.flatnonzero(unpriced[row])]
    return lists

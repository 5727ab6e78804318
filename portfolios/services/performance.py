"""Recalculating and storing each portfolio's valuation and performance figures (its PortfolioMetrics row)."""

from collections.abc import Callable, Sequence
from datetime import date, datetime
from functools import partial
from typing import TypedDict

import numpy as np
from django.db import transaction
from django.utils import timezone

from core.bulk_writes import write_rows
from portfolios.analytics.nulls import FigureSet
from portfolios.analytics.performance import FIGURES, PERIOD_RETURNS, performance
from portfolios.analytics.valuation import current_weights
from portfolios.analytics.windows import HISTORY_DAYS
from portfolios.conventions import return_basis, risk_free_rate
from portfolios.models import PortfolioMetrics
from portfolios.selectors.assets import asset_symbols, benchmark_asset_id
from portfolios.selectors.holdings import existing_portfolio_ids, read_positions
from portfolios.selectors.prices import PriceHistory, figure_price_ids, load_recent_price_history

from .chunks import Params, calculate_in_chunks
from .storage import dates_or_none, finite_or_none, rounded, window_columns
from .valuation import figures_on_own_calendars

DRAWDOWN_DATES = ("max_drawdown_peak", "max_drawdown_trough", "max_drawdown_recovery")


class UnpricedHolding(TypedDict):
    """A holding without any price, as PortfolioMetrics.unpriced_holdings lists it."""

    symbol: str
    since: str  # ISO date the refresh first found it unpriced


def recalculate_portfolio_metrics(
    *,
    portfolio_ids: Sequence[int] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> int:
    """Recalculates PortfolioMetrics for the portfolios (all when None); returns how many were stored.

    Each portfolio is valued on its own calendar (the days the assets it holds traded), so its
    figures are the same whatever else is recalculated with it, and each chunk of portfolios
    reads only the prices it holds (services/chunks.py: chunks may go to other workers). Holdings
    without any price are left out of value and cost and listed as unpriced. Every chunk is
    stored in its own transaction before on_progress(done, total) runs, so an exception raised
    there (a cancel or timeout) leaves finished chunks stored and consistent.
    """
    ids = existing_portfolio_ids(portfolio_ids=portfolio_ids)
    if not ids:
        return 0
    params = {
        "risk_free_rate": risk_free_rate(),
        "basis": return_basis(),
        "calculated_at": timezone.now().isoformat(),
        "benchmark_id": benchmark_asset_id(),
    }
    calculate_in_chunks(work=store_metrics_chunk, params=params, portfolio_ids=ids, on_progress=on_progress)
    return len(ids)


def _performance(
    history: PriceHistory, values: np.ndarray, calendar: np.ndarray, *, risk_free_rate: float
) -> FigureSet:
    return performance(values, calendar, history.dates, risk_free_rate=risk_free_rate)


def store_metrics_chunk(params: Params, chunk: Sequence[int]) -> dict[str, int]:
    """Values one chunk of portfolios and stores their metrics in one transaction.

    params: the run's risk-free rate, return basis and time (ISO 8601), and the benchmark's
    asset id, whose prices are read with the held ones so that the comparisons reuse that read.
    """
    positions = read_positions(portfolio_ids=chunk)
    asset_ids = positions.asset_ids
    history = load_recent_price_history(
        asset_ids=figure_price_ids(asset_ids, params["benchmark_id"]), days=HISTORY_DAYS
    )
    held = len(asset_ids)  # the first `held` assets of the history are the held ones (then maybe the benchmark)
    symbols = asset_symbols(asset_ids=asset_ids)
    last_prices = history.closes[:held, -1] if len(history.dates) else np.full(held, np.nan)
    rate, calculated_at = params["risk_free_rate"], datetime.fromisoformat(params["calculated_at"])
    quantities, costs = positions.matrices(asset_ids)
    unpriced = (quantities != 0) & ~history.priced[None, :held]
    quantities = np.where(unpriced, 0.0, quantities)
    every_asset = np.pad(quantities, ((0, 0), (0, len(history.asset_ids) - held)))  # none of the benchmark
    figures = figures_on_own_calendars(history, every_asset, partial(_performance, risk_free_rate=rate))
    _, market_values, weights = current_weights(quantities, last_prices)
    cost = np.where(unpriced, 0.0, costs).sum(axis=1)
    today = timezone.localdate(calculated_at)
    columns = figures.columns
    with transaction.atomic():
        stored = write_rows(
            PortfolioMetrics,
            unique_fields=["portfolio"],
            skip_unchanged=True,
            stamps=["calculated_at"],
            columns={
                "portfolio": chunk,
                **window_columns(figures, as_of=columns["window_end"], today=today),
                "market_value": rounded(market_values, 2),
                "cost": rounded(cost, 2),
                "unrealised_pnl": rounded(market_values - cost, 2),
                "unpriced_holdings": _unpriced_lists(chunk, unpriced, symbols, today),
                "weights": _weight_maps(weights, symbols),
                **{name: finite_or_none(columns[name]) for name in FIGURES},
                **{name: dates_or_none(columns[name]) for name in DRAWDOWN_DATES},
                "period_starts": _period_starts(columns),
            },
            constants={"return_basis": params["basis"], "risk_free_rate": rate, "calculated_at": calculated_at},
        )
    return {"portfolios": stored}


def _weight_maps(weights: np.ndarray, symbols: list[str]) -> list[dict[str, float]]:
    """Per portfolio, symbol to share of market value for every asset it holds."""
    maps: list[dict[str, float]] = [{} for _ in range(weights.shape[0])]
    for row, col in zip(*np.nonzero(weights), strict=True):
        maps[row][symbols[col]] = round(float(weights[row, col]), 6)
    return maps


def _period_starts(columns: dict[str, np.ndarray]) -> list[dict[str, str]]:
    """Per portfolio, period return to the ISO date it starts from (periods without a start left out)."""
    starts = {name: dates_or_none(columns[f"start_{name}"]) for name in PERIOD_RETURNS}
    rows = len(columns["observations"])
    return [{name: day.isoformat() for name in PERIOD_RETURNS if (day := starts[name][row])} for row in range(rows)]


def _unpriced_lists(
    chunk: Sequence[int], unpriced: np.ndarray, symbols: list[str], today: date
) -> list[list[UnpricedHolding]]:
    """Per portfolio, its holdings without a price: symbol, and since when the refresh has found it so."""
    lists: list[list[UnpricedHolding]] = [[] for _ in chunk]
    rows: list[int] = np.flatnonzero(unpriced.any(axis=1)).tolist()
    if not rows:
        return lists
    earlier = dict(
        PortfolioMetrics.objects.filter(portfolio_id__in=[chunk[r] for r in rows]).values_list(
            "portfolio_id", "unpriced_holdings"
        )
    )
    for row in rows:
        since = {
            entry.get("symbol"): entry.get("since")
            for entry in earlier.get(chunk[row]) or []
            if isinstance(entry, dict)
        }
        lists[row] = [
            {"symbol": symbols[col], "since": since.get(symbols[col]) or today.isoformat()}
            for col in np.flatnonzero(unpriced[row])
        ]
    return lists

"""Recalculating and storing how each portfolio compares with the benchmark."""
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from refresh_project.bulk_writes import write_rows

from ..analytics.benchmark import FIGURES, asset_correlations, compare_to_benchmark
from ..analytics.nulls import FigureSet
from ..analytics.windows import HISTORY_DAYS
from ..conventions import return_basis, risk_free_rate
from ..models import BenchmarkComparison
from ..parallel import run_chunks
from ..selectors import (
    PriceHistory, asset_symbols, benchmark_asset_id, existing_portfolio_ids, figure_price_ids, held_asset_ids,
    load_holdings, load_recent_price_history,
)
from .storage import finite_or_none, window_columns
from .valuation import figures_on_own_calendars


def recalculate_benchmark_comparisons(
    *, portfolio_ids: Sequence[int] | None = None, on_progress: Callable[[int, int], None] | None = None,
) -> int:
    """Recalculates BenchmarkComparison for the portfolios (all when None); returns how many were stored.

    The benchmark is the asset named by settings.BENCHMARK_SYMBOL; without it or its bars
    nothing is stored and 0 is returned. Its history has the same adjustment as the holdings'
    (conventions.history_adjustment), so both sides are total or both price returns. Chunks
    and on_progress work as for metrics.
    """
    symbol = settings.BENCHMARK_SYMBOL
    benchmark_id = benchmark_asset_id()
    if benchmark_id is None:
        return 0
    ids = existing_portfolio_ids(portfolio_ids=portfolio_ids)
    if not ids:
        return 0
    asset_ids = held_asset_ids(portfolio_ids=None if portfolio_ids is None else ids)
    history = load_recent_price_history(asset_ids=figure_price_ids(asset_ids, benchmark_id), days=HISTORY_DAYS)
    bench = history.row(benchmark_id)
    correlations = asset_correlations(history.closes[:len(asset_ids)], history.traded[:len(asset_ids)],
                                      history.closes[bench], history.traded[bench], history.dates)
    context = _Benchmark(history=history, held=len(asset_ids), symbols=asset_symbols(asset_ids=asset_ids),
                         symbol=symbol, benchmark_id=benchmark_id, correlations=correlations,
                         risk_free_rate=risk_free_rate(), basis=return_basis(), calculated_at=timezone.now())
    run_chunks(_store_chunk, context, ids, on_progress=on_progress)
    return len(ids)


@dataclass(frozen=True)
class _Benchmark:
    """What every chunk shares: the held assets' prices with the benchmark's, and the run's conventions."""

    history: PriceHistory
    held: int  # the first `held` assets of the history are the held ones
    symbols: list[str]
    symbol: str
    benchmark_id: int
    correlations: np.ndarray
    risk_free_rate: float
    basis: str
    calculated_at: datetime


def _comparison(history: PriceHistory, values: np.ndarray, calendar: np.ndarray, *, benchmark_id: int,
                risk_free_rate: float) -> FigureSet:
    bench = history.row(benchmark_id)
    return compare_to_benchmark(values, calendar, history.closes[bench], history.traded[bench], history.dates,
                                risk_free_rate=risk_free_rate)


def _store_chunk(context: _Benchmark, chunk: Sequence[int]) -> int:
    """Compares one chunk of portfolios with the benchmark and stores it in one transaction."""
    history = context.history
    quantities, _ = load_holdings(portfolio_ids=chunk, asset_ids=history.asset_ids)
    quantities = np.where(history.priced[None, :], quantities, 0.0)
    figures = figures_on_own_calendars(
        history, quantities, partial(_comparison, benchmark_id=context.benchmark_id,
                                     risk_free_rate=context.risk_free_rate),
        also_read=[context.benchmark_id])
    columns = figures.columns
    today = timezone.localdate(context.calculated_at)
    with transaction.atomic():
        return write_rows(BenchmarkComparison, unique_fields=["portfolio"], columns={
            "portfolio": chunk, **window_columns(figures, as_of=columns["as_of"], today=today),
            "asset_correlations": _held_correlations(quantities[:, :context.held], context.correlations,
                                                     context.symbols),
            **{name: finite_or_none(columns[name]) for name in FIGURES},
        }, constants={"benchmark_symbol": context.symbol, "return_basis": context.basis,
                      "risk_free_rate": context.risk_free_rate, "calculated_at": context.calculated_at})


def _held_correlations(quantities: np.ndarray, correlations: np.ndarray, symbols: list[str]) -> list[dict]:
    """Per portfolio, symbol to its correlation with the benchmark for every priced asset it holds."""
    maps = [{} for _ in range(quantities.shape[0])]
    for row, col in zip(*np.nonzero(quantities)):
        maps[row][symbols[col]] = None if np.isnan(correlations[col]) else round(float(correlations[col]), 6)
    return maps

"""Recalculating and storing how each portfolio compares with the benchmark."""

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.bulk_writes import write_rows
from portfolios.analytics.benchmark import FIGURES, asset_correlations, compare_to_benchmark
from portfolios.analytics.nulls import FigureSet
from portfolios.analytics.windows import HISTORY_DAYS
from portfolios.conventions import return_basis, risk_free_rate
from portfolios.models import BenchmarkComparison
from portfolios.selectors.assets import asset_symbols, benchmark_asset_id
from portfolios.selectors.holdings import existing_portfolio_ids, read_positions
from portfolios.selectors.prices import PriceHistory, figure_price_ids, load_recent_price_history

from .chunks import Params, calculate_in_chunks
from .storage import finite_or_none, window_columns
from .valuation import figures_on_own_calendars


def recalculate_benchmark_comparisons(
    *,
    portfolio_ids: Sequence[int] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> int:
    """Recalculates BenchmarkComparison for the portfolios (all when None); returns how many were stored.

    The benchmark is the asset named by settings.BENCHMARK_SYMBOL; without it or its bars
    nothing is stored and 0 is returned. Its history has the same adjustment as the holdings'
    (conventions.history_adjustment), so both sides are total or both price returns. Chunks
    and on_progress work as for metrics.
    """
    benchmark_id = benchmark_asset_id()
    if benchmark_id is None:
        return 0
    ids = existing_portfolio_ids(portfolio_ids=portfolio_ids)
    if not ids:
        return 0
    params = {
        "symbol": settings.BENCHMARK_SYMBOL,
        "benchmark_id": benchmark_id,
        "risk_free_rate": risk_free_rate(),
        "basis": return_basis(),
        "calculated_at": timezone.now().isoformat(),
    }
    calculate_in_chunks(work=store_comparisons_chunk, params=params, portfolio_ids=ids, on_progress=on_progress)
    return len(ids)


def _comparison(
    history: PriceHistory, values: np.ndarray, calendar: np.ndarray, *, benchmark_id: int, risk_free_rate: float
) -> FigureSet:
    bench = history.row(benchmark_id)
    return compare_to_benchmark(
        values, calendar, history.closes[bench], history.traded[bench], history.dates, risk_free_rate=risk_free_rate
    )


def store_comparisons_chunk(params: Params, chunk: Sequence[int]) -> dict[str, int]:
    """Compares one chunk of portfolios with the benchmark and stores it in one transaction.

    params: the benchmark's symbol and asset id, and the run's risk-free rate, return basis and
    time (ISO 8601).
    """
    benchmark_id, rate = params["benchmark_id"], params["risk_free_rate"]
    positions = read_positions(portfolio_ids=chunk)
    asset_ids = positions.asset_ids
    history = load_recent_price_history(asset_ids=figure_price_ids(asset_ids, benchmark_id), days=HISTORY_DAYS)
    held, bench = len(asset_ids), history.row(benchmark_id)  # the first `held` assets are the held ones
    correlations = asset_correlations(
        history.closes[:held], history.traded[:held], history.closes[bench], history.traded[bench], history.dates
    )
    quantities, _ = positions.matrices(history.asset_ids)
    quantities = np.where(history.priced[None, :], quantities, 0.0)
    figures = figures_on_own_calendars(
        history,
        quantities,
        partial(_comparison, benchmark_id=benchmark_id, risk_free_rate=rate),
        also_read=[benchmark_id],
    )
    columns = figures.columns
    calculated_at = datetime.fromisoformat(params["calculated_at"])
    today = timezone.localdate(calculated_at)
    with transaction.atomic():
        stored = write_rows(
            BenchmarkComparison,
            unique_fields=["portfolio"],
            skip_unchanged=True,
            stamps=["calculated_at"],
            columns={
                "portfolio": chunk,
                **window_columns(figures, as_of=columns["as_of"], today=today),
                "asset_correlations": _held_correlations(
                    quantities[:, :held], correlations, asset_symbols(asset_ids=asset_ids)
                ),
                **{name: finite_or_none(columns[name]) for name in FIGURES},
            },
            constants={
                "benchmark_symbol": params["symbol"],
                "return_basis": params["basis"],
                "risk_free_rate": rate,
                "calculated_at": calculated_at,
            },
        )
    return {"comparisons": stored}


def _held_correlations(
    quantities: np.ndarray, correlations: np.ndarray, symbols: list[str]
) -> list[dict[str, float | None]]:
    """Per portfolio, symbol to its correlation with the benchmark for every priced asset it holds."""
    maps: list[dict[str, float | None]] = [{} for _ in range(quantities.shape[0])]
    for row, col in zip(*np.nonzero(quantities), strict=True):
        maps[row][symbols[col]] = None if np.isnan(correlations[col]) else round(float(correlations[col]), 6)
    return maps

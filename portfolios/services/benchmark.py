"""Recalculating and storing how each portfolio compares with the benchmark."""
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from market_data.models import Asset, PriceBar
from refresh_project.bulk_writes import write_rows

from ..analytics.benchmark import asset_correlations, compare_to_benchmark
from ..analytics.performance import HISTORY_DAYS
from ..analytics.valuation import portfolio_values
from ..models import BenchmarkComparison
from ..parallel import run_chunks
from ..selectors import (
    HeldPrices, asset_symbols, existing_portfolio_ids, held_asset_ids, load_holdings, load_recent_close_matrix,
)
from .storage import finite_or_none

COMPARISON_FIELDS = (
    "benchmark_return_1d", "benchmark_return_1m", "benchmark_return_ytd", "benchmark_return_1y",
    "excess_return_1y", "excess_return_ytd", "beta", "correlation", "tracking_error",
)


def recalculate_benchmark_comparisons(
    *, portfolio_ids: Sequence[int] | None = None, on_progress: Callable[[int, int], None] | None = None,
) -> int:
    """Recalculates BenchmarkComparison for the portfolios (all when None); returns how many were stored.

    The benchmark is the asset named by settings.BENCHMARK_SYMBOL; without it or its bars
    nothing is stored and 0 is returned. Chunks and on_progress work as for metrics.
    """
    symbol = settings.BENCHMARK_SYMBOL
    benchmark_id = Asset.objects.filter(symbol=symbol).values_list("id", flat=True).first()
    if benchmark_id is None or not PriceBar.objects.filter(asset_id=benchmark_id).exists():
        return 0
    ids = existing_portfolio_ids(portfolio_ids=portfolio_ids)
    if not ids:
        return 0
    asset_ids = held_asset_ids(portfolio_ids=None if portfolio_ids is None else ids)
    price_ids = asset_ids if benchmark_id in asset_ids else [*asset_ids, benchmark_id]
    dates, closes = load_recent_close_matrix(asset_ids=price_ids, days=HISTORY_DAYS)
    bench = closes[price_ids.index(benchmark_id)]
    closes = closes[:len(asset_ids)]
    correlations = asset_correlations(closes, bench)
    symbols = asset_symbols(asset_ids=asset_ids)
    benchmark = _Benchmark(symbol=symbol, asset_ids=asset_ids, symbols=symbols, dates=dates, closes=closes,
                           bench=bench, correlations=correlations, as_of=dates[-1].item(),
                           calculated_at=timezone.now())
    run_chunks(_store_chunk, benchmark, ids, on_progress=on_progress)
    return len(ids)


@dataclass(frozen=True)
class _Benchmark(HeldPrices):
    """What every chunk shares: the held assets' closes, and the benchmark's beside them."""

    symbol: str
    bench: np.ndarray
    correlations: np.ndarray


def _store_chunk(benchmark: _Benchmark, chunk: Sequence[int]) -> int:
    """Compares one chunk of portfolios with the benchmark and stores it in one transaction."""
    quantities, _ = load_holdings(portfolio_ids=chunk, asset_ids=benchmark.asset_ids)
    figures = compare_to_benchmark(portfolio_values(quantities, benchmark.closes), benchmark.bench, benchmark.dates)
    with transaction.atomic():
        return write_rows(BenchmarkComparison, unique_fields=["portfolio"], columns={
            "portfolio": chunk,
            "asset_correlations": _held_correlations(quantities, benchmark.correlations, benchmark.symbols),
            **{name: finite_or_none(figures[name]) for name in COMPARISON_FIELDS},
        }, constants={"benchmark_symbol": benchmark.symbol, "as_of": benchmark.as_of,
                      "calculated_at": benchmark.calculated_at})


def _held_correlations(quantities: np.ndarray, correlations: np.ndarray, symbols: list[str]) -> list[dict]:
    """Per portfolio, symbol to its correlation with the benchmark for every asset it holds."""
    maps = [{} for _ in range(quantities.shape[0])]
    for row, col in zip(*np.nonzero(quantities)):
        maps[row][symbols[col]] = None if np.isnan(correlations[col]) else round(float(correlations[col]), 6)
    return maps

"""Recalculating and storing how each portfolio compares with the benchmark."""
from collections.abc import Callable, Sequence

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from market_data.models import Asset, PriceBar

from ..analytics.benchmark import asset_correlations, compare_to_benchmark
from ..analytics.performance import HISTORY_DAYS
from ..analytics.valuation import portfolio_values
from ..batches import portfolio_chunks
from ..models import BenchmarkComparison
from ..selectors import asset_symbols, existing_portfolio_ids, held_asset_ids, load_holdings, load_recent_close_matrix
from .storage import float_or_none, upsert

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
    calculated_at = timezone.now()
    as_of = dates[-1].item()
    for chunk in portfolio_chunks(ids, on_progress):
        quantities, _ = load_holdings(portfolio_ids=chunk, asset_ids=asset_ids)
        figures = compare_to_benchmark(portfolio_values(quantities, closes), bench, dates)
        held_correlations = _held_correlations(quantities, correlations, symbols)
        rows = [
            BenchmarkComparison(
                portfolio_id=portfolio_id, benchmark_symbol=symbol, as_of=as_of, calculated_at=calculated_at,
                asset_correlations=held_correlations[i],
                **{name: float_or_none(figures[name][i]) for name in COMPARISON_FIELDS},
            )
            for i, portfolio_id in enumerate(chunk)
        ]
        with transaction.atomic():
            upsert(BenchmarkComparison, rows, unique_fields=["portfolio"])
    return len(ids)


def _held_correlations(quantities: np.ndarray, correlations: np.ndarray, symbols: list[str]) -> list[dict]:
    """Per portfolio, symbol to its correlation with the benchmark for every asset it holds."""
    maps = [{} for _ in range(quantities.shape[0])]
    for row, col in zip(*np.nonzero(quantities)):
        maps[row][symbols[col]] = None if np.isnan(correlations[col]) else round(float(correlations[col]), 6)
    return maps

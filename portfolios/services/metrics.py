"""Recalculating and storing each portfolio's valuation and performance figures."""
from collections.abc import Callable, Sequence

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..analytics.performance import HISTORY_DAYS, performance
from ..analytics.valuation import current_weights, portfolio_values
from ..batches import portfolio_chunks
from ..models import PortfolioMetrics
from ..selectors import asset_symbols, existing_portfolio_ids, held_asset_ids, load_holdings, load_recent_close_matrix
from .storage import float_or_none, to_decimal, upsert

PERFORMANCE_FIELDS = ("return_1d", "return_1m", "return_ytd", "return_1y", "volatility", "sharpe", "max_drawdown")


def recalculate_portfolio_metrics(
    *, portfolio_ids: Sequence[int] | None = None, on_progress: Callable[[int, int], None] | None = None,
) -> int:
    """Recalculates PortfolioMetrics for the portfolios (all when None); returns how many were stored.

    Prices are read once; holdings are valued in chunks of REFRESH_METRICS_CHUNK portfolios,
    each stored in its own transaction before on_progress(done, total) runs, so an exception
    raised there (a cancel or timeout) leaves finished chunks stored and consistent.
    """
    ids = existing_portfolio_ids(portfolio_ids=portfolio_ids)
    if not ids:
        return 0
    asset_ids = held_asset_ids(portfolio_ids=None if portfolio_ids is None else ids)
    dates, closes = load_recent_close_matrix(asset_ids=asset_ids, days=HISTORY_DAYS)
    symbols = asset_symbols(asset_ids=asset_ids)
    calculated_at = timezone.now()
    as_of = dates[-1].item() if len(dates) else timezone.localdate()
    last_prices = closes[:, -1] if len(dates) else np.full(len(asset_ids), np.nan)
    for chunk in portfolio_chunks(ids, on_progress):
        quantities, costs = load_holdings(portfolio_ids=chunk, asset_ids=asset_ids)
        figures = performance(portfolio_values(quantities, closes), dates,
                              risk_free_rate=settings.REFRESH_RISK_FREE_RATE)
        _, market_values, weights = current_weights(quantities, last_prices)
        weight_maps = _weight_maps(weights, symbols)
        rows = [
            PortfolioMetrics(
                portfolio_id=portfolio_id, as_of=as_of, calculated_at=calculated_at,
                market_value=to_decimal(market_values[i], 2), cost=to_decimal(costs[i], 2),
                unrealised_pnl=to_decimal(market_values[i] - costs[i], 2),
                weights=weight_maps[i],
                **{name: float_or_none(figures[name][i]) for name in PERFORMANCE_FIELDS},
            )
            for i, portfolio_id in enumerate(chunk)
        ]
        with transaction.atomic():
            upsert(PortfolioMetrics, rows, unique_fields=["portfolio"])
    return len(ids)


def _weight_maps(weights: np.ndarray, symbols: list[str]) -> list[dict[str, float]]:
    """Per portfolio, symbol to share of market value for every asset it holds."""
    maps = [{} for _ in range(weights.shape[0])]
    for row, col in zip(*np.nonzero(weights)):
        maps[row][symbols[col]] = round(float(weights[row, col]), 6)
    return maps

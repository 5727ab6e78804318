"""Recalculating and storing each portfolio's valuation and performance figures."""
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from refresh_project.bulk_writes import write_rows

from ..analytics.performance import HISTORY_DAYS, performance
from ..analytics.valuation import current_weights, portfolio_values
from ..models import PortfolioMetrics
from ..parallel import run_chunks
from ..selectors import (
    HeldPrices, asset_symbols, existing_portfolio_ids, held_asset_ids, load_holdings, load_recent_close_matrix,
)
from .storage import finite_or_none, rounded

PERFORMANCE_FIELDS = ("return_1d", "return_1m", "return_ytd", "return_1y", "volatility", "sharpe", "max_drawdown")


def recalculate_portfolio_metrics(
    *, portfolio_ids: Sequence[int] | None = None, on_progress: Callable[[int, int], None] | None = None,
) -> int:
    """Recalculates PortfolioMetrics for the portfolios (all when None); returns how many were stored.

    Prices are read once; holdings are valued in chunks of REFRESH_METRICS_CHUNK portfolios
    (in worker processes where configured, see portfolios.parallel), each stored in its own
    transaction before on_progress(done, total) runs, so an exception raised there (a
    cancel or timeout) leaves finished chunks stored and consistent.
    """
    ids = existing_portfolio_ids(portfolio_ids=portfolio_ids)
    if not ids:
        return 0
    asset_ids = held_asset_ids(portfolio_ids=None if portfolio_ids is None else ids)
    dates, closes = load_recent_close_matrix(asset_ids=asset_ids, days=HISTORY_DAYS)
    symbols = asset_symbols(asset_ids=asset_ids)
    as_of = dates[-1].item() if len(dates) else timezone.localdate()
    last_prices = closes[:, -1] if len(dates) else np.full(len(asset_ids), np.nan)
    prices = _Prices(asset_ids=asset_ids, symbols=symbols, dates=dates, closes=closes, last_prices=last_prices,
                     as_of=as_of, calculated_at=timezone.now())
    run_chunks(_store_chunk, prices, ids, on_progress=on_progress)
    return len(ids)


@dataclass(frozen=True)
class _Prices(HeldPrices):
    """What every chunk shares: the held assets' recent closes and latest prices."""

    last_prices: np.ndarray


def _store_chunk(prices: _Prices, chunk: Sequence[int]) -> int:
    """Values one chunk of portfolios and stores their metrics in one transaction."""
    quantities, costs = load_holdings(portfolio_ids=chunk, asset_ids=prices.asset_ids)
    figures = performance(portfolio_values(quantities, prices.closes), prices.dates,
                          risk_free_rate=settings.REFRESH_RISK_FREE_RATE)
    _, market_values, weights = current_weights(quantities, prices.last_prices)
    with transaction.atomic():
        return write_rows(PortfolioMetrics, unique_fields=["portfolio"], columns={
            "portfolio": chunk, "market_value": rounded(market_values, 2), "cost": rounded(costs, 2),
            "unrealised_pnl": rounded(market_values - costs, 2), "weights": _weight_maps(weights, prices.symbols),
            **{name: finite_or_none(figures[name]) for name in PERFORMANCE_FIELDS},
        }, constants={"as_of": prices.as_of, "calculated_at": prices.calculated_at})


def _weight_maps(weights: np.ndarray, symbols: list[str]) -> list[dict[str, float]]:
    """Per portfolio, symbol to share of market value for every asset it holds."""
    maps = [{} for _ in range(weights.shape[0])]
    for row, col in zip(*np.nonzero(weights)):
        maps[row][symbols[col]] = round(float(weights[row, col]), 6)
    return maps

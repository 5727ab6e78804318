"""What strategy recalculation reads: each portfolio's strategy settings and the latest signal per asset."""

from collections.abc import Sequence
from typing import Any

import numpy as np

from portfolios.batches import QUERY_BATCH, batched
from portfolios.models import Signal, Strategy

from .matrices import float_column

# (strategy id, portfolio id, target_weights, tilt, rebalance_threshold)
StrategyRow = tuple[int, int, dict[str, Any], float, float]


def strategies_for(*, portfolio_ids: Sequence[int]) -> list[StrategyRow]:
    """(strategy id, portfolio id, target_weights, tilt, rebalance_threshold) of the portfolios' strategies."""
    found: list[StrategyRow] = []
    for batch in batched(list(portfolio_ids), QUERY_BATCH):
        found.extend(
            Strategy.objects.filter(portfolio_id__in=batch)
            .order_by("portfolio_id")
            .values_list(
                "id", "portfolio_id", "target_weights", float_column("tilt"), float_column("rebalance_threshold")
            )
        )
    return found


def signal_strengths(*, asset_ids: Sequence[int]) -> np.ndarray:
    """Latest signal strength per asset in asset_ids order; 0 for assets without a signal."""
    strengths = np.zeros(len(asset_ids))
    position = {asset_id: i for i, asset_id in enumerate(asset_ids)}
    for batch in batched(list(asset_ids), QUERY_BATCH):
        for asset_id, strength in Signal.objects.filter(asset_id__in=batch).values_list("asset_id", "strength"):
            strengths[position[asset_id]] = strength
    return strengths

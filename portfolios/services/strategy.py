"""Recalculating strategies: signal-tilted allocations, rebalance proposals and, when asked, applying them."""
import logging
from collections.abc import Callable, Sequence

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..analytics.allocation import rebalance_trades, tilt_weights
from ..batches import portfolio_chunks
from ..models import Allocation, ProposalStatus, RebalanceProposal
from ..selectors import (
    asset_ids_by_symbol, existing_portfolio_ids, held_asset_ids, load_holdings, load_latest_prices,
    signal_strengths, strategies_for,
)
from .rebalance import apply_rebalances
from .storage import to_decimal, upsert

logger = logging.getLogger(__name__)


def recalculate_strategies(
    *, portfolio_ids: Sequence[int] | None = None, apply: bool = False, refresh_id: str = "",
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Re-tilts the portfolios' strategies (all when None) and proposes trades for drifted assets.

    Per strategy: upserts one Allocation per asset it targets or holds (dropping stale ones),
    marks earlier `proposed` proposals superseded and creates the new ones. Only with
    apply=True are the new proposals applied to holdings. Each chunk of
    REFRESH_METRICS_CHUNK portfolios is one transaction, followed by on_progress(done, total).
    Returns counts {"allocations", "proposals", "applied"}.
    """
    ids = existing_portfolio_ids(portfolio_ids=portfolio_ids)
    counts = {"allocations": 0, "proposals": 0, "applied": 0}
    for chunk in portfolio_chunks(ids, on_progress):
        strategies = strategies_for(portfolio_ids=chunk)
        if strategies:
            with transaction.atomic():
                allocations, proposals = _rebalance_rows(strategies, refresh_id=refresh_id)
                _store(strategies, allocations, proposals)
                counts["allocations"] += len(allocations)
                counts["proposals"] += len(proposals)
                if apply:
                    counts["applied"] += apply_rebalances(strategy_ids=[s[0] for s in strategies],
                                                          refresh_id=refresh_id)
    return counts


def _rebalance_rows(strategies: list[tuple], *, refresh_id: str) -> tuple[list, list]:
    """Allocation and RebalanceProposal rows for one chunk of strategies, computed as matrices."""
    now = timezone.now()
    weights = [_target_weights(strategy_id, raw) for strategy_id, _, raw, _, _ in strategies]
    symbol_ids = asset_ids_by_symbol(symbols=sorted({symbol for targets in weights for symbol in targets}))
    portfolio_ids = [row[1] for row in strategies]
    asset_ids = sorted(set(held_asset_ids(portfolio_ids=portfolio_ids)) | set(symbol_ids.values()))
    column = {asset_id: i for i, asset_id in enumerate(asset_ids)}
    targets = np.zeros((len(strategies), len(asset_ids)))
    for i, strategy_targets in enumerate(weights):
        for symbol, weight in strategy_targets.items():
            if symbol in symbol_ids:
                targets[i, column[symbol_ids[symbol]]] = weight
    quantities, _ = load_holdings(portfolio_ids=portfolio_ids, asset_ids=asset_ids)
    prices = load_latest_prices(asset_ids=asset_ids)
    tilted = tilt_weights(targets, signal_strengths(asset_ids=asset_ids), np.array([row[3] for row in strategies]))
    trades = rebalance_trades(quantities, prices, tilted, np.array([row[4] for row in strategies]))

    allocations = [
        Allocation(strategy_id=strategies[i][0], asset_id=asset_ids[c], target_weight=float(targets[i, c]),
                   tilted_weight=float(tilted[i, c]), current_weight=float(trades["current_weight"][i, c]),
                   calculated_at=now)
        for i, c in zip(*np.nonzero((targets != 0) | (quantities != 0)))
    ]
    proposals = [
        RebalanceProposal(strategy_id=strategies[i][0], asset_id=asset_ids[c],
                          current_weight=float(trades["current_weight"][i, c]), target_weight=float(tilted[i, c]),
                          quantity=to_decimal(trades["quantity"][i, c], 8), price=to_decimal(prices[c], 6),
                          value=to_decimal(trades["value"][i, c], 2), created_at=now, refresh_id=refresh_id)
        for i, c in zip(*np.nonzero(trades["trade"]))
    ]
    return allocations, proposals


def _target_weights(strategy_id: int, raw) -> dict[str, float]:
    """The usable {symbol: weight} entries of target_weights; hand-edited JSON can hold anything."""
    targets = {}
    for symbol, weight in (raw.items() if isinstance(raw, dict) else ()):
        try:
            targets[symbol] = float(weight)
        except (TypeError, ValueError):
            logger.warning("Strategy %s: ignoring target weight %r for %s", strategy_id, weight, symbol)
    return targets


def _store(strategies: list[tuple], allocations: list[Allocation], proposals: list[RebalanceProposal]) -> None:
    """Replaces the chunk's allocations and open proposals with the freshly calculated ones."""
    strategy_ids = [row[0] for row in strategies]
    upsert(Allocation, allocations, unique_fields=["strategy", "asset"])
    kept = {(a.strategy_id, a.asset_id) for a in allocations}
    stale = [pk for pk, strategy_id, asset_id in Allocation.objects.filter(strategy_id__in=strategy_ids)
             .values_list("id", "strategy_id", "asset_id") if (strategy_id, asset_id) not in kept]
    Allocation.objects.filter(pk__in=stale).delete()
    RebalanceProposal.objects.filter(strategy_id__in=strategy_ids, status=ProposalStatus.PROPOSED).update(
        status=ProposalStatus.SUPERSEDED)
    RebalanceProposal.objects.bulk_create(proposals, batch_size=settings.REFRESH_WRITE_BATCH)

"""Recalculating strategies: signal-tilted allocations, rebalance proposals and, when asked, applying them."""
import logging
from collections.abc import Callable, Sequence

import numpy as np
from django.db import transaction
from django.utils import timezone

from refresh_project.bulk_writes import write_rows

from ..analytics.allocation import rebalance_trades, tilt_weights
from ..models import Allocation, ProposalStatus, RebalanceProposal
from ..parallel import run_chunks
from ..selectors import (
    asset_ids_by_symbol, existing_portfolio_ids, held_asset_ids, load_holdings, load_latest_prices,
    signal_strengths, strategies_for,
)
from .rebalance import apply_rebalances
from .storage import rounded

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
    for chunk_counts in run_chunks(_rebalance_chunk, (apply, refresh_id), ids, on_progress=on_progress):
        for name, count in chunk_counts.items():
            counts[name] += count
    return counts


def _rebalance_chunk(job: tuple[bool, str], chunk: Sequence[int]) -> dict[str, int]:
    """Re-tilts one chunk of portfolios' strategies in one transaction; returns its counts."""
    apply, refresh_id = job
    strategies = strategies_for(portfolio_ids=chunk)
    if not strategies:
        return {}
    with transaction.atomic():
        allocations, proposals = _rebalance_columns(strategies)
        _store(strategies, allocations, proposals, now=timezone.now(), refresh_id=refresh_id)
        applied = apply_rebalances(strategy_ids=[s[0] for s in strategies], refresh_id=refresh_id) if apply else 0
    return {"allocations": len(allocations["asset"]), "proposals": len(proposals["asset"]), "applied": applied}


def _rebalance_columns(strategies: list[tuple]) -> tuple[dict[str, list], dict[str, list]]:
    """Allocation and RebalanceProposal rows for one chunk of strategies, computed as matrices
    and returned as columns (field name -> values)."""
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

    strategy_ids = np.array([row[0] for row in strategies], dtype=np.int64)
    asset_array = np.asarray(asset_ids, dtype=np.int64)
    rows, cols = np.nonzero((targets != 0) | (quantities != 0))
    allocations = {
        "strategy": strategy_ids[rows].tolist(), "asset": asset_array[cols].tolist(),
        "target_weight": targets[rows, cols].tolist(), "tilted_weight": tilted[rows, cols].tolist(),
        "current_weight": trades["current_weight"][rows, cols].tolist(),
    }
    rows, cols = np.nonzero(trades["trade"])
    proposals = {
        "strategy": strategy_ids[rows].tolist(), "asset": asset_array[cols].tolist(),
        "current_weight": trades["current_weight"][rows, cols].tolist(),
        "target_weight": tilted[rows, cols].tolist(), "quantity": rounded(trades["quantity"][rows, cols], 8),
        "price": rounded(prices[cols], 6), "value": rounded(trades["value"][rows, cols], 2),
    }
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


def _store(strategies: list[tuple], allocations: dict[str, list], proposals: dict[str, list], *,
           now, refresh_id: str) -> None:
    """Replaces the chunk's allocations and open proposals with the freshly calculated ones."""
    strategy_ids = [row[0] for row in strategies]
    write_rows(Allocation, columns=allocations, constants={"calculated_at": now}, unique_fields=["strategy", "asset"])
    # Allocations not rewritten just now (stamped `now`) are for assets no longer targeted or held.
    Allocation.objects.filter(strategy_id__in=strategy_ids).exclude(calculated_at=now).delete()
    RebalanceProposal.objects.filter(strategy_id__in=strategy_ids, status=ProposalStatus.PROPOSED).update(
        status=ProposalStatus.SUPERSEDED)
    write_rows(RebalanceProposal, columns=proposals, constants={
        "status": ProposalStatus.PROPOSED.value, "created_at": now, "refresh_id": refresh_id, "applied_at": None})

"""Recalculating strategies: signal-tilted allocations, rebalance proposals and, when asked, applying them."""

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from django.db import transaction
from django.utils import timezone

from core.bulk_writes import write_rows
from portfolios.analytics.allocation import rebalance_trades, tilt_weights
from portfolios.batches import QUERY_BATCH, batched
from portfolios.models import Allocation, ProposalStatus, RebalanceProposal
from portfolios.selectors.assets import asset_ids_by_symbol
from portfolios.selectors.holdings import existing_portfolio_ids, read_positions
from portfolios.selectors.prices import load_latest_prices
from portfolios.selectors.strategies import StrategyRow, signal_strengths, strategies_for

from .chunks import Params, calculate_in_chunks
from .rebalance import apply_rebalances
from .storage import rounded

logger = logging.getLogger(__name__)
# Rows to write as columns: field name -> one value per row.
Columns = dict[str, list[Any]]


def recalculate_strategies(
    *,
    portfolio_ids: Sequence[int] | None = None,
    apply: bool = False,
    refresh_id: str = "",
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Re-tilts the portfolios' strategies (all when None) and proposes trades for drifted assets.

    Per strategy: upserts one Allocation per asset it targets or holds (dropping stale ones),
    marks earlier `proposed` proposals superseded and creates the new ones. Only with
    apply=True are the new proposals applied to holdings. Each chunk of portfolios is one
    transaction (services/chunks.py: chunks may go to other workers), followed by
    on_progress(done, total). Returns counts {"allocations", "proposals", "applied"}.
    """
    ids = existing_portfolio_ids(portfolio_ids=portfolio_ids)
    stored = calculate_in_chunks(
        work=rebalance_chunk,
        params={"apply": apply, "refresh_id": refresh_id},
        portfolio_ids=ids,
        on_progress=on_progress,
    )
    return {name: stored.get(name, 0) for name in ("allocations", "proposals", "applied")}


def rebalance_chunk(params: Params, chunk: Sequence[int]) -> dict[str, int]:
    """Re-tilts one chunk of portfolios' strategies in one transaction; returns its counts.

    params: apply (bool) and the run's refresh_id.
    """
    apply, refresh_id = params["apply"], params["refresh_id"]
    strategies = strategies_for(portfolio_ids=chunk)
    if not strategies:
        return {}
    with transaction.atomic():
        allocations, proposals = _rebalance_columns(strategies)
        _store(strategies, allocations, proposals, now=timezone.now(), refresh_id=refresh_id)
        applied = apply_rebalances(strategy_ids=[s[0] for s in strategies], refresh_id=refresh_id) if apply else 0
    return {"allocations": len(allocations["asset"]), "proposals": len(proposals["asset"]), "applied": applied}


def _rebalance_columns(strategies: list[StrategyRow]) -> tuple[Columns, Columns]:
    """Allocation and RebalanceProposal rows for one chunk of strategies, computed as matrices
    and returned as columns (field name -> values)."""
    weights = [_target_weights(strategy_id, raw) for strategy_id, _, raw, _, _ in strategies]
    symbol_ids = asset_ids_by_symbol(symbols=sorted({symbol for targets in weights for symbol in targets}))
    portfolio_ids = [row[1] for row in strategies]
    positions = read_positions(portfolio_ids=portfolio_ids)
    asset_ids = sorted(set(positions.asset_ids) | set(symbol_ids.values()))
    column = {asset_id: i for i, asset_id in enumerate(asset_ids)}
    targets = np.zeros((len(strategies), len(asset_ids)))
    for i, strategy_targets in enumerate(weights):
        for symbol, weight in strategy_targets.items():
            if symbol in symbol_ids:
                targets[i, column[symbol_ids[symbol]]] = weight
    quantities, _ = positions.matrices(asset_ids)
    prices = load_latest_prices(asset_ids=asset_ids)
    tilted = tilt_weights(targets, signal_strengths(asset_ids=asset_ids), np.array([row[3] for row in strategies]))
    trades = rebalance_trades(quantities, prices, tilted, np.array([row[4] for row in strategies]))

    strategy_ids = np.array([row[0] for row in strategies], dtype=np.int64)
    asset_array = np.asarray(asset_ids, dtype=np.int64)
    rows, cols = np.nonzero((targets != 0) | (quantities != 0))
    allocations = {
        "strategy": strategy_ids[rows].tolist(),
        "asset": asset_array[cols].tolist(),
        "target_weight": targets[rows, cols].tolist(),
        "tilted_weight": tilted[rows, cols].tolist(),
        "current_weight": trades["current_weight"][rows, cols].tolist(),
    }
    rows, cols = np.nonzero(trades["trade"])
    proposals = {
        "strategy": strategy_ids[rows].tolist(),
        "asset": asset_array[cols].tolist(),
        "current_weight": trades["current_weight"][rows, cols].tolist(),
        "target_weight": tilted[rows, cols].tolist(),
        "quantity": rounded(trades["quantity"][rows, cols], 8),
        "price": rounded(prices[cols], 6),
        "value": rounded(trades["value"][rows, cols], 2),
    }
    return allocations, proposals


def _target_weights(strategy_id: int, raw: object) -> dict[str, float]:
    """The usable {symbol: weight} entries of target_weights; hand-edited JSON can hold anything."""
    targets: dict[str, float] = {}
    for symbol, weight in raw.items() if isinstance(raw, dict) else ():
        try:
            targets[symbol] = float(weight)
        except (TypeError, ValueError):
            logger.warning("Strategy %s: ignoring target weight %r for %s", strategy_id, weight, symbol)
    return targets


def _delete_stale_allocations(strategy_ids: list[int], allocations: Columns) -> None:
    """Deletes the strategies' allocations to assets they no longer target or hold.

    An unchanged allocation keeps its row and its calculated_at, so staleness is told by the
    (strategy, asset) pairs just calculated, not by the time they were written.
    """
    current = set(zip(allocations["strategy"], allocations["asset"], strict=True))
    stale = [
        allocation_id
        for batch in batched(strategy_ids, QUERY_BATCH)
        for allocation_id, strategy_id, asset_id in Allocation.objects.filter(strategy_id__in=batch)
        .order_by()
        .values_list("id", "strategy_id", "asset_id")
        if (strategy_id, asset_id) not in current
    ]
    for batch in batched(stale, QUERY_BATCH):
        Allocation.objects.filter(id__in=batch).delete()


def _store(
    strategies: list[StrategyRow], allocations: Columns, proposals: Columns, *, now: datetime, refresh_id: str
) -> None:
    """Replaces the chunk's allocations and open proposals with the freshly calculated ones."""
    strategy_ids = [row[0] for row in strategies]
    write_rows(
        Allocation,
        columns=allocations,
        constants={"calculated_at": now},
        unique_fields=["strategy", "asset"],
        skip_unchanged=True,
        stamps=["calculated_at"],
    )
    _delete_stale_allocations(strategy_ids, allocations)
    RebalanceProposal.objects.filter(strategy_id__in=strategy_ids, status=ProposalStatus.PROPOSED).update(
        status=ProposalStatus.SUPERSEDED
    )
    write_rows(
        RebalanceProposal,
        columns=proposals,
        constants={
            "status": ProposalStatus.PROPOSED.value,
            "created_at": now,
            "refresh_id": refresh_id,
            "applied_at": None,
        },
    )

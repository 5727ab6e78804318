"""Applying proposed rebalance trades to holdings."""

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portfolios.batches import QUERY_BATCH, batched
from portfolios.models import Holding, ProposalStatus, RebalanceProposal, Strategy
from portfolios.money import CENT
from portfolios.selectors.shared import HOLDINGS, forget_reads


def apply_rebalance(*, strategy: Strategy, refresh_id: str) -> int:
    """Applies the strategy's proposed trades to its portfolio's holdings; returns how many were applied."""
    return apply_rebalances(strategy_ids=[strategy.pk], refresh_id=refresh_id)


def apply_rebalances(*, strategy_ids: Sequence[int], refresh_id: str = "") -> int:
    """Applies every `proposed` trade of the strategies in one transaction; returns how many were applied.

    A buy adds its quantity and its value to the cost basis (creating the holding if
    needed). A sell removes quantity, at most what is held, and the same fraction of the
    cost basis; a position sold to zero is deleted. A sell of something no longer held is
    marked superseded instead. Proposals are locked first, so two concurrent calls cannot
    apply the same trade twice.
    """
    now = timezone.now()
    with transaction.atomic():
        proposals = list(
            RebalanceProposal.objects.select_for_update()
            .filter(strategy_id__in=list(strategy_ids), status=ProposalStatus.PROPOSED)
            .order_by("id")
        )
        if not proposals:
            return 0
        portfolio_of = dict(
            Strategy.objects.filter(id__in={p.strategy_id for p in proposals}).values_list("id", "portfolio_id")
        )
        holdings = {
            (h.portfolio_id, h.asset_id): h
            for h in Holding.objects.select_for_update().filter(
                portfolio_id__in=set(portfolio_of.values()), asset_id__in={p.asset_id for p in proposals}
            )
        }
        touched, applied, superseded = {}, [], []
        for proposal in proposals:
            key = (portfolio_of[proposal.strategy_id], proposal.asset_id)
            holding = holdings.get(key)
            if proposal.quantity > 0:
                if holding is None:
                    holding = holdings[key] = Holding(
                        portfolio_id=key[0], asset_id=key[1], quantity=Decimal(0), cost_basis=Decimal(0)
                    )
                holding.quantity += proposal.quantity
                holding.cost_basis += proposal.value
            elif holding is not None and holding.quantity > 0:
                sold = min(-proposal.quantity, holding.quantity)
                remaining = holding.quantity - sold
                holding.cost_basis = (holding.cost_basis * remaining / holding.quantity).quantize(CENT)
                holding.quantity = remaining
            else:
                superseded.append(proposal.pk)
                continue
            touched[key] = holding
            applied.append(proposal.pk)
        _store_holdings(list(touched.values()))
        run = {"refresh_id": refresh_id} if refresh_id else {}  # else keep the run that proposed it
        _mark(applied, status=ProposalStatus.APPLIED, applied_at=now, **run)
        _mark(superseded, status=ProposalStatus.SUPERSEDED)
    return len(applied)


def _mark(proposal_ids: list[int], **changes: Any) -> None:
    """Sets the same fields on many proposals with plain UPDATEs (bulk_update's CASE is slow)."""
    for batch in batched(proposal_ids, QUERY_BATCH):
        RebalanceProposal.objects.filter(pk__in=batch).update(**changes)


def _store_holdings(holdings: list[Holding]) -> None:
    """Writes changed holdings: positions sold to zero deleted, the rest inserted or updated in one upsert.

    A recalculation's later passes then read the holdings anew (selectors.shared).
    """
    forget_reads(HOLDINGS)
    for batch in batched([h.pk for h in holdings if h.pk is not None and h.quantity <= 0], QUERY_BATCH):
        Holding.objects.filter(pk__in=batch).delete()
    rows = [
        Holding(portfolio_id=h.portfolio_id, asset_id=h.asset_id, quantity=h.quantity, cost_basis=h.cost_basis)
        for h in holdings
        if h.quantity > 0
    ]  # without ids: (portfolio, asset) decides insert or update
    Holding.objects.bulk_create(
        rows,
        batch_size=settings.REFRESH_WRITE_BATCH,
        update_conflicts=True,
        unique_fields=["portfolio", "asset"],
        update_fields=["quantity", "cost_basis"],
    )

"""Portfolios and their holdings: which portfolios exist, hold what, belong to whom, and the holdings matrix."""

from collections.abc import Sequence

import numpy as np

from portfolios.batches import QUERY_BATCH, batched
from portfolios.models import Holding, Portfolio

from .matrices import float_column, position_lookup


def load_holdings(*, portfolio_ids: Sequence[int], asset_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Holdings as (quantities, cost bases), both portfolios x assets, in the given orders.

    Holdings of assets outside asset_ids are left out of both.
    """
    quantities = np.zeros((len(portfolio_ids), len(asset_ids)))
    costs = np.zeros((len(portfolio_ids), len(asset_ids)))
    if not len(asset_ids) or not len(portfolio_ids):
        return quantities, costs
    portfolio_row, asset_col = position_lookup(portfolio_ids), position_lookup(asset_ids)
    known_assets = np.sort(np.asarray(asset_ids, dtype=np.int64))
    for batch in batched(portfolio_ids, QUERY_BATCH):
        if not (
            rows := list(
                Holding.objects.filter(portfolio_id__in=batch)
                .order_by()
                .values_list("portfolio_id", "asset_id", float_column("quantity"), float_column("cost_basis"))
            )
        ):
            continue
        pids, aids, qty, cost = (np.asarray(column) for column in zip(*rows, strict=True))
        listed = np.isin(aids, known_assets)
        r, c = portfolio_row(pids[listed]), asset_col(aids[listed])
        np.add.at(quantities, (r, c), qty[listed].astype(float))
        np.add.at(costs, (r, c), cost[listed].astype(float))
    return quantities, costs


def existing_portfolio_ids(*, portfolio_ids: Sequence[int] | None = None) -> list[int]:
    """Ids of the given portfolios that exist (every portfolio when None), ascending."""
    if portfolio_ids is None:
        return list(Portfolio.objects.order_by("id").values_list("id", flat=True))
    found: set[int] = set()
    for batch in batched(list(dict.fromkeys(portfolio_ids)), QUERY_BATCH):
        found.update(Portfolio.objects.filter(id__in=batch).values_list("id", flat=True))
    return sorted(found)


def portfolio_ids_holding(*, asset_ids: Sequence[int]) -> list[int]:
    """Ids of portfolios holding any of the assets, ascending."""
    found: set[int] = set()
    for batch in batched(list(asset_ids), QUERY_BATCH):
        found.update(Holding.objects.filter(asset_id__in=batch).values_list("portfolio_id", flat=True).distinct())
    return sorted(found)


def portfolio_ids_for_user(*, user_id: int) -> list[int]:
    """Ids of the user's portfolios, ascending."""
    return list(Portfolio.objects.filter(owner_id=user_id).order_by("id").values_list("id", flat=True))


def held_asset_ids(*, portfolio_ids: Sequence[int] | None = None) -> list[int]:
    """Ids of assets held by any of the portfolios (by any portfolio when None), ascending."""
    if portfolio_ids is None:
        return sorted(set(Holding.objects.values_list("asset_id", flat=True).distinct()))
    found: set[int] = set()
    for batch in batched(list(portfolio_ids), QUERY_BATCH):
        found.update(Holding.objects.filter(portfolio_id__in=batch).values_list("asset_id", flat=True).distinct())
    return sorted(found)

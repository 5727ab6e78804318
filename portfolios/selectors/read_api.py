"""The read API's data: a portfolio in full, lists of portfolios and which pages and portfolios a change touches.

Selectors return model instances and Python values; portfolios/api/serializers.py renders them.
"""

import math
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.utils import timezone

from market_data.models import Asset, PriceBar
from portfolios.batches import QUERY_BATCH, batched
from portfolios.models import (
    Allocation,
    BenchmarkComparison,
    Holding,
    Portfolio,
    PortfolioMetrics,
    ProposalStatus,
    RebalanceProposal,
    Signal,
    Strategy,
)
from portfolios.money import CENT

from .holdings import portfolio_ids_holding


def _latest_prices(asset_ids: Sequence[int]) -> dict[int, tuple[Decimal, datetime | date]]:
    """Each asset's latest price and when it was true: the quote and its time when dated after
    the last bar (as the analytics do), else the last close and its day; assets with neither
    are absent."""
    last_bar = PriceBar.objects.filter(asset_id=OuterRef("pk")).order_by("-date")
    rows = (
        Asset.objects.filter(id__in=asset_ids)
        .annotate(
            bar_date=Subquery(last_bar.values("date")[:1]),
            bar_close=Subquery(last_bar.values("close")[:1]),
        )
        .values_list("id", "bar_date", "bar_close", "quote__price", "quote__as_of")
    )
    prices: dict[int, tuple[Decimal, datetime | date]] = {}
    for asset_id, bar_date, bar_close, quote_price, quote_as_of in rows:
        if quote_price is not None and (bar_date is None or timezone.localtime(quote_as_of).date() > bar_date):
            prices[asset_id] = (quote_price, quote_as_of)
        elif bar_close is not None:
            prices[asset_id] = (bar_close, bar_date)
    return prices


def _holdings(portfolio_id: int) -> list[dict[str, Any]]:
    rows = list(
        Holding.objects.filter(portfolio_id=portfolio_id)
        .order_by("asset__symbol")
        .values_list("asset_id", "asset__symbol", "asset__name", "asset__asset_class", "quantity", "cost_basis")
    )
    prices = _latest_prices([row[0] for row in rows])
    values = {
        asset_id: (quantity * prices[asset_id][0]).quantize(CENT)
        for asset_id, *_, quantity, _ in rows
        if asset_id in prices
    }
    total = sum(values.values(), Decimal(0))
    holdings = []
    for asset_id, symbol, name, asset_class, quantity, cost_basis in rows:
        price, as_of = prices.get(asset_id, (None, None))
        value = values.get(asset_id)
        holdings.append(
            {
                "symbol": symbol,
                "name": name,
                "asset_class": asset_class,
                "quantity": quantity,
                "cost_basis": cost_basis,
                "price": price,
                "price_as_of": as_of,
                "market_value": value,
                "weight": round(float(value / total), 6) if value is not None and total else None,
            }
        )
    return holdings


def portfolio_detail(*, portfolio_id: int) -> dict[str, Any] | None:
    """A portfolio in full: holdings at their latest prices, metrics, strategy, allocations,
    signals of the assets it holds or targets, open rebalance proposals and the benchmark
    comparison; model instances, with None for figures not yet calculated. None when there is
    no such portfolio.
    """
    portfolio = Portfolio.objects.select_related("owner").filter(pk=portfolio_id).first()
    if portfolio is None:
        return None
    strategy = Strategy.objects.filter(portfolio_id=portfolio_id).first()
    allocations: list[Allocation] = []
    proposals: list[RebalanceProposal] = []
    if strategy is not None:
        allocations = list(
            Allocation.objects.filter(strategy=strategy).select_related("asset").order_by("asset__symbol")
        )
        proposals = list(
            RebalanceProposal.objects.filter(strategy=strategy, status=ProposalStatus.PROPOSED)
            .select_related("asset")
            .order_by("asset__symbol")
        )
    held_ids = Holding.objects.filter(portfolio_id=portfolio_id).values_list("asset_id", flat=True)
    shown_ids = {*held_ids, *(allocation.asset_id for allocation in allocations)}
    signals = Signal.objects.filter(asset_id__in=shown_ids).select_related("asset").order_by("asset__symbol")
    return {
        "id": portfolio.pk,
        "name": portfolio.name,
        "base_currency": portfolio.base_currency,
        "owner": portfolio.owner,
        "created_at": portfolio.created_at,
        "holdings": _holdings(portfolio_id),
        "metrics": PortfolioMetrics.objects.filter(portfolio_id=portfolio_id).first(),
        "strategy": strategy,
        "allocations": allocations,
        "signals": list(signals),
        "rebalance_proposals": proposals,
        "benchmark_comparison": BenchmarkComparison.objects.filter(portfolio_id=portfolio_id).first(),
    }


def portfolio_list(*, owner_id: int | None) -> QuerySet[Portfolio]:
    """An owner's portfolios (everyone's when owner_id is None) by id, with their owners and
    headline figures (``metrics``, absent before the first refresh)."""
    portfolios = Portfolio.objects.all() if owner_id is None else Portfolio.objects.filter(owner_id=owner_id)
    return portfolios.select_related("owner", "metrics").order_by("id")


def portfolio_list_pages(*, portfolio_ids: Sequence[int] | None, size: int) -> tuple[dict[int, set[int]], set[int]]:
    """Which list pages show these portfolios (all when None): ({owner id: its pages}, pages of
    the list of everyone's). Lists are ordered by id, as portfolio_list orders them."""
    if portfolio_ids is None:
        owners = Portfolio.objects.order_by().values_list("owner_id").annotate(n=Count("id"))
        total = Portfolio.objects.count()
        return (
            {owner: set(range(1, math.ceil(n / size) + 1)) for owner, n in owners},
            set(range(1, math.ceil(total / size) + 1)),
        )
    all_ids = np.fromiter(Portfolio.objects.order_by("id").values_list("id", flat=True), dtype=np.int64)
    wanted = np.asarray(sorted(set(portfolio_ids)), dtype=np.int64)
    wanted = wanted[np.isin(wanted, all_ids)]
    all_pages = {int(p) for p in np.searchsorted(all_ids, wanted) // size + 1}
    owner_of: dict[int, int] = {}
    for batch in batched(wanted.tolist(), QUERY_BATCH):
        owner_of.update(Portfolio.objects.filter(id__in=batch).values_list("id", "owner_id"))
    owner_pages: dict[int, set[int]] = {}
    seen: dict[int, int] = {}  # portfolios of each owner passed so far, in id order
    for batch in batched(sorted(set(owner_of.values())), QUERY_BATCH):
        for owner, pid in (
            Portfolio.objects.filter(owner_id__in=batch).order_by("owner_id", "id").values_list("owner_id", "id")
        ):
            position = seen.get(owner, 0)
            seen[owner] = position + 1
            if pid in owner_of:
                owner_pages.setdefault(owner, set()).add(position // size + 1)
    return owner_pages, all_pages


def portfolio_ids_showing(*, asset_ids: Sequence[int]) -> list[int]:
    """Ids of portfolios whose read-API view shows any of the assets (held, or allocated to by
    their strategy), ascending."""
    found = set(portfolio_ids_holding(asset_ids=asset_ids))
    for batch in batched(list(asset_ids), QUERY_BATCH):
        found.update(
            Allocation.objects.filter(asset_id__in=batch).values_list("strategy__portfolio_id", flat=True).distinct()
        )
    return sorted(found)

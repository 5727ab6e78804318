"""Asset ids and symbols in the orders the portfolio matrices use, and which asset is the benchmark.

They read market data's assets, batched like every portfolio read: callers hand over the ids of
whole portfolios' holdings.
"""

from collections.abc import Sequence

from django.conf import settings

from market_data.models import Asset, PriceBar
from portfolios.batches import QUERY_BATCH, batched


def active_asset_ids() -> list[int]:
    """Ids of assets the refresh keeps current, ascending."""
    return list(Asset.objects.filter(is_active=True).order_by("id").values_list("id", flat=True))


def asset_symbols(*, asset_ids: Sequence[int]) -> list[str]:
    """Symbols in asset_ids order."""
    symbols: dict[int, str] = {}
    for batch in batched(list(asset_ids), QUERY_BATCH):
        symbols.update(Asset.objects.filter(id__in=batch).values_list("id", "symbol"))
    return [symbols[asset_id] for asset_id in asset_ids]


def asset_ids_by_symbol(*, symbols: Sequence[str]) -> dict[str, int]:
    """Symbol to asset id, for the symbols that exist."""
    found: dict[str, int] = {}
    for batch in batched(list(symbols), QUERY_BATCH):
        found.update(Asset.objects.filter(symbol__in=batch).values_list("symbol", "id"))
    return found


def benchmark_asset_id() -> int | None:
    """The benchmark's asset id (settings.BENCHMARK_SYMBOL); None without that asset or any bar of it."""
    benchmark_id: int | None = (
        Asset.objects.filter(symbol=settings.BENCHMARK_SYMBOL).values_list("id", flat=True).first()
    )
    if benchmark_id is None or not PriceBar.objects.filter(asset_id=benchmark_id).exists():
        return None
    return benchmark_id

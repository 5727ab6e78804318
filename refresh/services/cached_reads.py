"""After a run: drop the cached reads whose data it changed and rebuild the most read of them."""

from collections.abc import Iterable
from typing import Any

from django.conf import settings

from core import read_cache
from core.read_cache import CachedRead
from market_data.api import cached_reads as asset_reads
from portfolios.api import cached_reads as portfolio_reads

# How many names a run records on its cache_impact; the counts are always complete.
RECORDED_NAMES = 200


def reads_showing(*, portfolio_ids: Iterable[int] | None, symbols: Iterable[str] | None) -> list[CachedRead]:
    """Every cached read showing these portfolios or assets (None: all of them)."""
    return [*portfolio_reads.reads_showing(portfolio_ids=portfolio_ids), *asset_reads.reads_showing(symbols=symbols)]


def refresh_cached_reads(
    *, portfolio_ids: Iterable[int] | None = (), symbols: Iterable[str] = (), everything: bool = False
) -> dict[str, Any]:
    """Drop what changed (everything, or the entries showing these portfolios and assets),
    rebuild the most read of them, and describe that for the run's cache_impact:
    {"scope", "invalidated": count, "warmed": count, "invalidated_keys", "warmed_keys"}.
    """
    if everything:
        read_cache.invalidate_everything()
        candidates = reads_showing(portfolio_ids=None, symbols=None)  # what the new generation dropped
    else:
        candidates = reads_showing(portfolio_ids=portfolio_ids, symbols=symbols)
        read_cache.invalidate(names=[read.name for read in candidates])
    warmed = read_cache.warm(reads=read_cache.most_read(reads=candidates, limit=settings.DATA_CACHE_WARM_LIMIT))
    names = [] if everything else [read.name for read in candidates[:RECORDED_NAMES]]
    return {
        "scope": "everything" if everything else "selective",
        "invalidated": len(candidates),
        "warmed": len(warmed),
        "invalidated_keys": names,
        "warmed_keys": warmed[:RECORDED_NAMES],
    }

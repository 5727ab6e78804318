"""The read cache: named reads kept in the "data" cache, read through, invalidated and warmed.

Each app says what its reads are (portfolios/api/cached_reads.py, market_data/api/cached_reads.py):
a CachedRead names an entry (``portfolio:12``) and builds its value. A name is stored under the
current generation (``g3:portfolio:12``): bumping the generation orphans every entry at once,
without flushing a Redis that also holds rate-limit counters; ``invalidate`` deletes exactly the
entries named. Reads are counted per name, and the counts outlive generations, so whoever
invalidates can rebuild the entries read most before anyone asks again.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import BaseCache, caches

_GENERATION_KEY = "data-generation"
_READS_PREFIX = "reads:"
_BATCH = 1000  # keys per cache round trip


@dataclass(frozen=True)
class CachedRead:
    """One cacheable response: its name and how to build it (None: nothing to show, not cached)."""

    name: str
    build: Callable[[], Any]


def data_cache() -> BaseCache:
    return caches["data"]


def _fresh_generation() -> int:
    """A generation no earlier one can equal, even if the counter itself was evicted."""
    return time.time_ns() // 1_000_000


def generation() -> int:
    cache = data_cache()
    value = cache.get(_GENERATION_KEY)
    if value is None:
        cache.add(_GENERATION_KEY, _fresh_generation(), timeout=None)
        value = cache.get(_GENERATION_KEY) or _fresh_generation()
    return int(value)


def _stored_key(name: str, gen: int) -> str:
    return f"g{gen}:{name}"


def _count_read(name: str) -> None:
    """One more read of this name."""
    cache, key = data_cache(), _READS_PREFIX + name
    try:
        cache.incr(key)
    except ValueError:
        if not cache.add(key, 1, timeout=settings.DATA_CACHE_READS_TTL_SECONDS):
            cache.incr(key)


def fetch(read: CachedRead) -> tuple[Any, bool]:
    """The cached value and True, or the freshly built one (cached unless None) and False."""
    cache = data_cache()
    key = _stored_key(read.name, generation())
    value = cache.get(key)
    hit = value is not None
    if not hit:
        value = read.build()
        if value is None:  # nothing to show: neither cached nor counted
            return None, False
        # add, not set: a refresh may have warmed a newer value while this one was built.
        cache.add(key, value, timeout=settings.DATA_CACHE_TTL_SECONDS)
    _count_read(read.name)
    return value, hit


def invalidate(*, names: list[str]) -> None:
    """Delete these entries of the current generation."""
    cache, gen = data_cache(), generation()
    for start in range(0, len(names), _BATCH):
        cache.delete_many([_stored_key(name, gen) for name in names[start : start + _BATCH]])


def invalidate_everything() -> int:
    """Orphan every cached entry by starting a new generation; returns it."""
    cache = data_cache()
    generation()  # make sure there is one to increment
    try:
        return int(cache.incr(_GENERATION_KEY))
    except ValueError:  # evicted between the two calls
        value = _fresh_generation()
        cache.set(_GENERATION_KEY, value, timeout=None)
        return value


def most_read(*, reads: list[CachedRead], limit: int) -> list[CachedRead]:
    """Up to `limit` of the reads that were read at all, most read first (ties by name)."""
    if limit <= 0 or not reads:
        return []
    by_name = {read.name: read for read in reads}
    names = list(by_name)
    counts: dict[str, int] = {}
    for start in range(0, len(names), _BATCH):
        found = data_cache().get_many([_READS_PREFIX + name for name in names[start : start + _BATCH]])
        counts.update({key.removeprefix(_READS_PREFIX): count for key, count in found.items() if count})
    return [by_name[name] for name in sorted(counts, key=lambda name: (-counts[name], name))[:limit]]


def warm(*, reads: list[CachedRead]) -> list[str]:
    """Build and store these entries now; returns the names stored (some may have nothing to show)."""
    cache, gen = data_cache(), generation()
    stored = []
    for read in reads:
        value = read.build()
        if value is not None:
            cache.set(_stored_key(read.name, gen), value, timeout=settings.DATA_CACHE_TTL_SECONDS)
            stored.append(read.name)
    return stored

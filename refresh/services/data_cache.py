"""Keys of the cached read figures and their selective invalidation after a refresh.

Read views cache per portfolio and per asset in the ``data`` cache. Every key carries a
generation number: a full refresh bumps the generation, which orphans every old key at once
without flushing the cache server (rate-limit counters live in the same Redis).
"""
from collections.abc import Iterable

from django.core.cache import caches

_GENERATION_KEY = "data-generation"


def data_cache():
    return caches["data"]


def generation() -> int:
    cache = data_cache()
    value = cache.get(_GENERATION_KEY)
    if value is None:
        cache.add(_GENERATION_KEY, 1, timeout=None)
        value = cache.get(_GENERATION_KEY, 1)
    return int(value)


def portfolio_key(portfolio_id: int) -> str:
    return f"g{generation()}:portfolio:{portfolio_id}"


def portfolio_list_key(user_id: int | None) -> str:
    return f"g{generation()}:portfolio-list:{user_id if user_id is not None else 'all'}"


def asset_key(symbol: str) -> str:
    return f"g{generation()}:asset:{symbol}"


def invalidate(*, portfolio_ids: Iterable[int] = (), owner_ids: Iterable[int] = (),
               symbols: Iterable[str] = (), everything: bool = False) -> int:
    """Drop the cached figures that changed; returns how many keys were invalidated."""
    cache = data_cache()
    if everything:
        try:
            cache.incr(_GENERATION_KEY)
        except ValueError:
            cache.set(_GENERATION_KEY, generation() + 1, timeout=None)
        return 1
    keys = [portfolio_key(pid) for pid in portfolio_ids]
    keys += [portfolio_list_key(uid) for uid in set(owner_ids)]
    if keys or symbols:
        keys.append(portfolio_list_key(None))
    keys += [asset_key(symbol) for symbol in symbols]
    if keys:
        cache.delete_many(keys)
    return len(keys)

"""Cached read figures: their names, read-through, selective invalidation and pre-warming.

The read API caches four kinds of entry in the "data" cache, each under a name:
``portfolio:<id>`` (a portfolio in full), ``portfolio-list:<owner id | all>:page:<n>``,
``asset-list:page:<n>`` and ``asset-prices:<symbol>`` (the stored series; the view slices it).
A name is stored under the current generation (``g3:portfolio:12``): a full refresh bumps
the generation, orphaning every entry at once without flushing a Redis that also holds
rate-limit counters. Other refreshes delete exactly the entries whose data changed. Reads are
counted per name, so a refresh can rebuild the entries read most before anyone asks again.
"""
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import caches

from market_data import selectors as market_selectors
from portfolios import selectors as portfolio_selectors

_GENERATION_KEY = "data-generation"
_READS_PREFIX = "reads:"
# How many names a run records on its cache_impact; the counts are always complete.
RECORDED_NAMES = 200
_DELETE_BATCH = 1000


def data_cache():
    return caches["data"]


def page_size() -> int:
    """Rows per page of the cached lists: the API's page size."""
    return int(settings.REST_FRAMEWORK.get("PAGE_SIZE") or 50)


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


# --- names and what each holds ------------------------------------------------------------

def portfolio_name(portfolio_id: int) -> str:
    return f"portfolio:{portfolio_id}"


def portfolio_page_name(*, owner_id: int | None, page: int) -> str:
    """A page of one owner's portfolios, or of everyone's (owner_id None) for admins and support."""
    return f"portfolio-list:{'all' if owner_id is None else owner_id}:page:{page}"


def asset_page_name(*, page: int) -> str:
    return f"asset-list:page:{page}"


def price_series_name(symbol: str) -> str:
    return f"asset-prices:{symbol}"


@dataclass(frozen=True)
class CachedRead:
    """One cacheable response: its name and how to build it (None: nothing to show, not cached)."""

    name: str
    build: Callable[[], Any]


def portfolio_read(portfolio_id: int) -> CachedRead:
    return CachedRead(portfolio_name(portfolio_id),
                      lambda: portfolio_selectors.portfolio_detail(portfolio_id=portfolio_id))


def portfolio_page_read(*, owner_id: int | None, page: int) -> CachedRead:
    return CachedRead(portfolio_page_name(owner_id=owner_id, page=page),
                      lambda: portfolio_selectors.portfolio_page(owner_id=owner_id, page=page, size=page_size()))


def asset_page_read(*, page: int) -> CachedRead:
    return CachedRead(asset_page_name(page=page),
                      lambda: market_selectors.asset_page(page=page, size=page_size()))


def price_series_read(symbol: str) -> CachedRead:
    return CachedRead(price_series_name(symbol), lambda: market_selectors.price_series(symbol=symbol))


def read_named(name: str) -> CachedRead | None:
    """The CachedRead a name stands for (None for a name this module never makes)."""
    kind, _, rest = name.partition(":")
    try:
        if kind == "portfolio":
            return portfolio_read(int(rest))
        if kind == "portfolio-list":
            owner, _, page = rest.partition(":page:")
            return portfolio_page_read(owner_id=None if owner == "all" else int(owner), page=int(page))
        if kind == "asset-list":
            return asset_page_read(page=int(rest.removeprefix("page:")))
    except ValueError:
        return None
    if kind == "asset-prices" and rest:
        return price_series_read(rest)
    return None


# --- reading ------------------------------------------------------------------------------

def _stored_key(name: str, gen: int) -> str:
    return f"g{gen}:{name}"


def _count_read(name: str) -> None:
    """One more read of this name; counters outlive generations so warming knows what is popular."""
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


# --- invalidation and warming -------------------------------------------------------------

def names_showing(*, portfolio_ids: Iterable[int] | None, symbols: Iterable[str]) -> list[str]:
    """Every cached name whose content depends on these portfolios (None: all) or assets.

    A portfolio appears in its own entry and on one page of its owner's list and of the
    list of everyone's; an asset in its price series and on one page of the asset list.
    """
    size = page_size()
    every_id = portfolio_selectors.existing_portfolio_ids()
    ids = every_id if portfolio_ids is None else sorted(set(portfolio_ids))
    if set(ids) >= set(every_id):  # every page of every list: counted, not searched for
        owner_pages, all_pages = portfolio_selectors.portfolio_list_pages(portfolio_ids=None, size=size)
    else:
        owner_pages, all_pages = portfolio_selectors.portfolio_list_pages(portfolio_ids=ids, size=size)
    names = [portfolio_name(pid) for pid in ids]
    names += [portfolio_page_name(owner_id=owner, page=page)
              for owner, pages in sorted(owner_pages.items()) for page in sorted(pages)]
    names += [portfolio_page_name(owner_id=None, page=page) for page in sorted(all_pages)]
    symbols = sorted(set(symbols))
    names += [price_series_name(symbol) for symbol in symbols]
    names += [asset_page_name(page=page)
              for page in sorted(market_selectors.asset_list_pages(symbols=symbols, size=size))]
    return names


def every_name() -> list[str]:
    """Every name the read API can cache for the current data."""
    return names_showing(portfolio_ids=None, symbols=market_selectors.all_symbols())


def invalidate(*, names: list[str]) -> None:
    """Delete these entries of the current generation."""
    cache, gen = data_cache(), generation()
    for start in range(0, len(names), _DELETE_BATCH):
        cache.delete_many([_stored_key(name, gen) for name in names[start:start + _DELETE_BATCH]])


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


def most_read(*, names: list[str], limit: int) -> list[str]:
    """Up to `limit` of the names that were read at all, most read first."""
    if limit <= 0 or not names:
        return []
    counts = {}
    for start in range(0, len(names), _DELETE_BATCH):
        batch = names[start:start + _DELETE_BATCH]
        found = data_cache().get_many([_READS_PREFIX + name for name in batch])
        counts.update({name: found[_READS_PREFIX + name] for name in batch if found.get(_READS_PREFIX + name)})
    return sorted(counts, key=lambda name: (-counts[name], name))[:limit]


def warm(*, names: list[str]) -> list[str]:
    """Build and store these entries now; returns the names stored (some may have nothing to show)."""
    cache, gen = data_cache(), generation()
    stored = []
    for name in names:
        read = read_named(name)
        value = read.build() if read else None
        if value is not None:
            cache.set(_stored_key(name, gen), value, timeout=settings.DATA_CACHE_TTL_SECONDS)
            stored.append(name)
    return stored


def refresh_cached_reads(*, portfolio_ids: Iterable[int] | None = (), symbols: Iterable[str] = (),
                         everything: bool = False) -> dict:
    """After a refresh: drop what changed (everything, or the entries showing these portfolios
    and assets), rebuild the most read of them, and describe that for the run's cache_impact:
    {"scope", "invalidated": count, "warmed": count, "invalidated_keys", "warmed_keys"}.
    """
    if everything:
        invalidate_everything()
        candidates = every_name()  # what the new generation dropped, as far as names go
    else:
        candidates = names_showing(portfolio_ids=portfolio_ids, symbols=symbols)
        invalidate(names=candidates)
    warmed = warm(names=most_read(names=candidates, limit=settings.DATA_CACHE_WARM_LIMIT))
    return {"scope": "everything" if everything else "selective", "invalidated": len(candidates),
            "warmed": len(warmed), "invalidated_keys": [] if everything else candidates[:RECORDED_NAMES],
            "warmed_keys": warmed[:RECORDED_NAMES]}

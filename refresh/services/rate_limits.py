"""How often a requester may start refreshes: burst, per-target cooldown and hourly quota.

Only interactive requests (the API and the admin buttons) are limited; schedules, webhooks
and the command are the system's own work. Every process must see the same counts, so they
live in the "ratelimit" cache: Redis with REDIS_URL, otherwise a table in the database
(core/counter_cache.py), where they commit or roll back with the caller's transaction.

Checked in order: burst (every attempt counts), cooldown for this kind and target, hourly
quota. Burst and hourly are django-ratelimit fixed windows, counted with its public
``get_usage``. The cooldown stores the time of the last accepted request, so it is a true
interval whatever the cache's own expiry does. An hourly refusal gives back the cooldown the
request had claimed.
"""

import math
import time
from typing import TypedDict

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.core.cache import BaseCache, caches
from django_ratelimit.core import get_usage

from core.counter_cache import CounterCache
from refresh.errors import RefreshError
from refresh.models import RunSource
from refresh.services.access import Requester
from refresh.services.events import RATELIMIT_WARNING, emit_event

INTERACTIVE_SOURCES = (RunSource.API, RunSource.ADMIN)
WARNING_SHARE = 0.8
BURST_GROUP, HOURLY_GROUP = "refresh.burst", "refresh.hourly"


class RateUsage(TypedDict):
    """django-ratelimit's ``get_usage``: the window's count, its limit, and whole seconds until it ends."""

    count: int
    limit: int
    should_limit: bool
    time_left: int


class RateLimitExceeded(RefreshError):
    """A refused request: ``code`` is rate_limited, cooldown or burst; retry after whole seconds."""

    code = "rate_limited"
    status_code = 429

    def __init__(self, message: str, *, code: str, retry_after: int) -> None:
        super().__init__(message, code=code)
        self.retry_after = max(int(retry_after), 1)


def check_rate_limits(*, user: Requester, role: str, kind: str, target_user_id: int | None, source: str) -> None:
    """Count an interactive request against its requester's limits, or raise RateLimitExceeded."""
    if source not in INTERACTIVE_SOURCES or user is None or not getattr(settings, "RATELIMIT_ENABLE", True):
        return
    requester = str(user.pk)
    burst_rate, hourly_rate = settings.REFRESH_BURST_RATE, settings.REFRESH_RATE_LIMITS.get(role)
    if burst_rate:
        burst = _usage(BURST_GROUP, burst_rate, requester, increment=True)
        if burst and burst["should_limit"]:
            raise RateLimitExceeded(
                f"Too many refresh requests at once: at most {burst_rate.replace('/', ' per ')}.",
                code="burst",
                retry_after=_seconds_left(burst),
            )
    cooldown_key = f"refresh:cooldown:{requester}:{kind}:{target_user_id or '-'}"
    claimed = _claim_cooldown(cooldown_key)
    if not hourly_rate:
        return
    try:
        used = _count_within_quota(requester, role=role, rate=hourly_rate)
    except RateLimitExceeded:
        if claimed:
            counter_cache().delete(cooldown_key)
        raise
    if used:
        _warn_near_the_quota(user=user, role=role, usage=used)


def counted_in_the_database() -> bool:
    """Whether the counters are database rows, written in (and undone with) the caller's transaction."""
    return isinstance(counter_cache(), CounterCache)


def counter_cache() -> BaseCache:
    """The store every process shares for per-requester counts (limits, waits)."""
    return caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")]


def _usage(group: str, rate: str, requester: str, *, increment: bool) -> RateUsage | None:
    """django-ratelimit's usage of ``rate`` by the requester; None if its cache failed and it fails open.

    There is no HTTP request here (admin buttons call the service too): the requester's id is the key.
    """
    usage: RateUsage | None = get_usage(
        None, group=group, key=lambda _group, _request: requester, rate=rate, increment=increment
    )
    return usage


def _seconds_left(usage: RateUsage) -> int:
    # django-ratelimit's window ends at the second it names, inclusive; the next one starts after it.
    return usage["time_left"] + 1


def _count_within_quota(requester: str, *, role: str, rate: str) -> RateUsage | None:
    """Count one request in the hourly window, or refuse it; the usage after counting.

    The count itself decides: with the store's atomic increment exactly ``limit`` requests of a
    window pass, however many race. A refused request is counted too, beyond a full quota, where
    it changes nothing a later request is decided by: the window refuses until it ends either way.
    """
    usage = _usage(HOURLY_GROUP, rate, requester, increment=True)
    if usage is not None and usage["should_limit"]:
        raise RateLimitExceeded(
            f"The {role} role may start {usage['limit']} refreshes per hour; this hour's are used.",
            code="rate_limited",
            retry_after=_seconds_left(usage),
        )
    return usage


def _cooldown_seconds() -> int:
    return settings.REFRESH_COOLDOWN_SECONDS or 0


def _claim_cooldown(key: str) -> bool:
    """Record this request as the last accepted one for its kind and target, or refuse it."""
    seconds = _cooldown_seconds()
    if not seconds:
        return False
    cache = counter_cache()
    now = time.time()
    if cache.add(key, now, timeout=seconds):
        return True
    last = cache.get(key)
    if last is None:  # expired between the two calls
        if cache.add(key, now, timeout=seconds):
            return True
        last = cache.get(key, now)
    if now - last < seconds:
        raise RateLimitExceeded(
            f"This refresh was requested {int(now - last)} s ago; wait {seconds} s between identical requests.",
            code="cooldown",
            retry_after=math.ceil(seconds - (now - last)),
        )
    # The cache still holds an older time than the cooldown: exactly one request may replace it.
    if not cache.add(f"{key}:after:{last!r}", 1, timeout=seconds):
        raise RateLimitExceeded(
            f"This refresh was just requested; wait {seconds} s between identical requests.",
            code="cooldown",
            retry_after=seconds,
        )
    cache.set(key, now, timeout=seconds)
    return True


def _warn_near_the_quota(*, user: User | AnonymousUser, role: str, usage: RateUsage) -> None:
    """One event when a requester passes WARNING_SHARE of the hourly quota."""
    count, limit = usage["count"], usage["limit"]
    if count > limit * WARNING_SHARE >= count - 1:
        emit_event(
            event_type=RATELIMIT_WARNING,
            payload={
                "user_id": user.pk,
                "username": user.get_username(),
                "role": role,
                "used": count,
                "limit": limit,
                "resets_in": _seconds_left(usage),
            },
        )

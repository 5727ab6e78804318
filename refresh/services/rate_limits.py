"""How often a requester may start refreshes: burst, per-target cooldown and hourly quota.

Only interactive requests (the API and the admin buttons) are limited; schedules, webhooks
and the command are the system's own work. Counters live in the "default" cache, so every
web process shares them when that cache is Redis. Burst and hourly limits are django-ratelimit
fixed windows counted with the cache's atomic ``incr``; the cooldown stores the time of the
last accepted request and is claimed with the cache's atomic ``add``.
"""
import math
import time

from django.conf import settings
from django.core.cache import caches
from django_ratelimit.core import get_usage

from refresh.errors import RefreshError
from refresh.models import RunSource
from refresh.services.events import RATELIMIT_WARNING, emit_event

INTERACTIVE_SOURCES = (RunSource.API, RunSource.ADMIN)
WARNING_SHARE = 0.8


class RateLimitExceeded(RefreshError):
    """A refused request: ``code`` is rate_limited, cooldown or burst; retry after whole seconds."""

    code = "rate_limited"
    status_code = 429

    def __init__(self, message: str, *, code: str, retry_after: int):
        super().__init__(message, code=code)
        self.retry_after = max(int(retry_after), 1)


def check_rate_limits(*, user, role: str, kind: str, target_user_id: int | None, source: str) -> None:
    """Count an interactive request against its requester's limits, or raise RateLimitExceeded.

    Checked in order: burst (every attempt counts), cooldown (claimed for this kind and
    target), hourly quota (a refusal here releases the cooldown it had claimed).
    """
    if source not in INTERACTIVE_SOURCES or user is None or not getattr(settings, "RATELIMIT_ENABLE", True):
        return
    requester = str(user.pk)
    _count_burst(requester=requester)
    cooldown_key = _claim_cooldown(requester=requester, kind=kind, target_user_id=target_user_id)
    try:
        _count_hourly(requester=requester, user=user, role=role)
    except RateLimitExceeded:
        if cooldown_key:
            _cache().delete(cooldown_key)
        raise


def _cache():
    return caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")]


def _usage(*, group: str, requester: str, rate: str) -> dict | None:
    """Add one to the requester's counter in the current window; django-ratelimit's usage dict."""
    return get_usage(None, group=group, key=lambda _group, _request: requester, rate=rate, increment=True)


def _seconds_to_next_window(usage: dict) -> int:
    # django-ratelimit's window ends at the second it names, inclusive; the next one starts after it.
    return usage["time_left"] + 1


def _count_burst(*, requester: str) -> None:
    rate = settings.REFRESH_BURST_RATE
    usage = _usage(group="refresh.burst", requester=requester, rate=rate) if rate else None
    if usage and usage["should_limit"]:
        raise RateLimitExceeded(f"Too many refresh requests at once: at most {rate.replace('/', ' per ')}.",
                                code="burst", retry_after=_seconds_to_next_window(usage))


def _claim_cooldown(*, requester: str, kind: str, target_user_id: int | None) -> str | None:
    """Record this request as the last accepted one for its kind and target, or refuse it.

    The stored value is the accepted time, so the cooldown is a true interval from that
    request, whatever the cache's own expiry does.
    """
    seconds = settings.REFRESH_COOLDOWN_SECONDS
    if not seconds:
        return None
    cache, now = _cache(), time.time()
    key = f"refresh:cooldown:{requester}:{kind}:{target_user_id or '-'}"
    if cache.add(key, now, timeout=seconds):
        return key
    last = cache.get(key)
    if last is None:  # expired between the two calls
        if cache.add(key, now, timeout=seconds):
            return key
        last = cache.get(key, now)
    waited = now - last
    if waited < seconds:
        raise RateLimitExceeded(f"This refresh was requested {int(waited)} s ago; wait {seconds} s between "
                                f"identical requests.", code="cooldown", retry_after=math.ceil(seconds - waited))
    # The cache still holds an older time than the cooldown: exactly one request may replace it.
    if not cache.add(f"{key}:after:{last!r}", 1, timeout=seconds):
        raise RateLimitExceeded(f"This refresh was just requested; wait {seconds} s between identical requests.",
                                code="cooldown", retry_after=seconds)
    cache.set(key, now, timeout=seconds)
    return key


def _count_hourly(*, requester: str, user, role: str) -> None:
    rate = settings.REFRESH_RATE_LIMITS.get(role)
    usage = _usage(group="refresh.hourly", requester=requester, rate=rate) if rate else None
    if not usage:
        return
    count, limit = usage["count"], usage["limit"]
    if usage["should_limit"]:
        raise RateLimitExceeded(f"The {role} role may start {limit} refreshes per hour; this hour's are used.",
                                code="rate_limited", retry_after=_seconds_to_next_window(usage))
    threshold = limit * WARNING_SHARE
    if count > threshold >= count - 1:
        emit_event(event_type=RATELIMIT_WARNING, payload={
            "user_id": user.pk, "username": user.get_username(), "role": role, "used": count, "limit": limit,
            "resets_in": _seconds_to_next_window(usage),
        })

"""How often a requester may start refreshes: burst, per-target cooldown and hourly quota.

Only interactive requests (the API and the admin buttons) are limited; schedules, webhooks
and the command are the system's own work. Counters live in the "ratelimit" cache, which every
process shares: Redis with REDIS_URL, otherwise a table in the database (core/counter_cache.py),
where they commit or roll back with the caller's transaction. Burst and hourly limits are
django-ratelimit fixed windows; the cooldown stores the time of the last accepted request, so
it is a true interval whatever the cache's own expiry does.

Checked in order: burst (every attempt counts), cooldown (claimed for this kind and target),
hourly quota (a refusal here counts nothing and releases the cooldown it had claimed). On
Redis the three are one Lua script, a single atomic round trip on every request instead of
three to five; on the database (or any other cache) they are django-ratelimit's ``get_usage``
and the cache's atomic ``add``. Both count the same django-ratelimit counters under the same
keys (its window and key helpers are private: requirements pin the version, and a test checks
that ``get_usage`` reads what the script counted).
"""
import math
import time
from contextlib import suppress
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django_ratelimit import ALL
from django_ratelimit.core import EXPIRATION_FUDGE, _get_window, _make_cache_key, _split_rate, get_usage
from django_redis.cache import RedisCache

from core.counter_cache import CounterCache
from refresh.errors import RefreshError
from refresh.models import RunSource
from refresh.services.events import RATELIMIT_WARNING, emit_event

INTERACTIVE_SOURCES = (RunSource.API, RunSource.ADMIN)
WARNING_SHARE = 0.8
BURST_GROUP, HOURLY_GROUP = "refresh.burst", "refresh.hourly"

# KEYS: burst counter, cooldown, hourly counter. ARGV: burst limit (-1: none), burst expiry,
# now, cooldown seconds (0: none), hourly limit (-1: none), hourly expiry. Returns the outcome
# ("ok", "burst", "cooldown", "hourly") and the count or time it was decided on.
_CHECK_SCRIPT = """
local function count(key, expiry)
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('EXPIRE', key, expiry) end
  return n
end
if tonumber(ARGV[1]) >= 0 then
  local n = count(KEYS[1], ARGV[2])
  if n > tonumber(ARGV[1]) then return {'burst', n} end
end
local claimed = false
if tonumber(ARGV[4]) > 0 then
  local stored = redis.call('GET', KEYS[2])
  local last = stored and tonumber(stored)  -- not a number (an older release's value): no cooldown
  if last and tonumber(ARGV[3]) - last < tonumber(ARGV[4]) then return {'cooldown', stored} end
  redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[4])
  claimed = true
end
if tonumber(ARGV[5]) >= 0 then
  local n = count(KEYS[3], ARGV[6])
  if n > tonumber(ARGV[5]) then
    redis.call('DECR', KEYS[3])
    if claimed then redis.call('DEL', KEYS[2]) end
    return {'hourly', n - 1}
  end
  return {'ok', n}
end
return {'ok', 0}
"""


_script = None  # the registered _CHECK_SCRIPT, see _check_script


class RateLimitExceeded(RefreshError):
    """A refused request: ``code`` is rate_limited, cooldown or burst; retry after whole seconds."""

    code = "rate_limited"
    status_code = 429

    def __init__(self, message: str, *, code: str, retry_after: int):
        super().__init__(message, code=code)
        self.retry_after = max(int(retry_after), 1)


@dataclass(frozen=True)
class _Window:
    """One requester's django-ratelimit counter for a rate, in the current fixed window."""

    group: str
    rate: str
    requester: str
    limit: int
    key: str
    expiry: int
    ends: int

    @classmethod
    def of(cls, *, group: str, rate: str | None, requester: str) -> "_Window | None":
        if not rate:
            return None
        limit, period = _split_rate(rate)
        ends = _get_window(requester, period)
        return cls(group=group, rate=rate, requester=requester, limit=limit, expiry=period + EXPIRATION_FUDGE,
                   key=_make_cache_key(group, ends, rate, requester, ALL), ends=ends)

    def count(self) -> dict:
        """Add one with django-ratelimit itself (off Redis); its usage dict."""
        return get_usage(None, group=self.group, key=lambda _group, _request: self.requester, rate=self.rate,
                         increment=True)

    def seconds_left(self) -> int:
        # django-ratelimit's window ends at the second it names, inclusive; the next one starts after it.
        return self.ends - int(time.time()) + 1


def check_rate_limits(*, user, role: str, kind: str, target_user_id: int | None, source: str) -> None:
    """Count an interactive request against its requester's limits, or raise RateLimitExceeded."""
    if source not in INTERACTIVE_SOURCES or user is None or not getattr(settings, "RATELIMIT_ENABLE", True):
        return
    requester = str(user.pk)
    burst = _Window.of(group=BURST_GROUP, rate=settings.REFRESH_BURST_RATE, requester=requester)
    hourly = _Window.of(group=HOURLY_GROUP, rate=settings.REFRESH_RATE_LIMITS.get(role), requester=requester)
    cooldown_key = f"refresh:cooldown:{requester}:{kind}:{target_user_id or '-'}"
    cache = counter_cache()
    check = _check_in_redis if isinstance(cache, RedisCache) else _check_in_cache
    hourly_count = check(cache, burst=burst, cooldown_key=cooldown_key, hourly=hourly, role=role)
    if hourly is not None:
        _warn_near_the_quota(user=user, role=role, hourly=hourly, count=hourly_count)


def counted_in_the_database() -> bool:
    """Whether the counters are database rows, written in (and undone with) the caller's transaction."""
    return isinstance(counter_cache(), CounterCache)


def counter_cache():
    """The store every process shares for per-requester counts (limits, waits)."""
    return caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")]


def _cooldown_seconds() -> int:
    return settings.REFRESH_COOLDOWN_SECONDS or 0


def _check_in_redis(cache, *, burst, cooldown_key, hourly, role) -> int:
    """The Lua script: one atomic round trip. Returns the hourly count."""
    client = cache.client.get_client(write=True)
    keys = [cache.make_key(burst.key if burst else "refresh:no-burst"), cache.make_key(cooldown_key),
            cache.make_key(hourly.key if hourly else "refresh:no-hourly")]
    now = time.time()
    outcome, value = _check_script(client)(keys=keys, client=client, args=[
        burst.limit if burst else -1, burst.expiry if burst else 0, repr(now), _cooldown_seconds(),
        hourly.limit if hourly else -1, hourly.expiry if hourly else 0])
    outcome = outcome.decode() if isinstance(outcome, bytes) else outcome
    if outcome == "burst":
        _refuse_burst(burst)
    if outcome == "cooldown":
        _refuse_cooldown(waited=now - float(value))
    if outcome == "hourly":
        _refuse_hourly(hourly, role=role)
    return int(value)


def _check_script(client):
    """The script object, made once per process (Django gives each thread its own Redis client,
    so each call names the client it runs on); Redis runs it by its digest."""
    global _script
    if _script is None:
        _script = client.register_script(_CHECK_SCRIPT)
    return _script


def _check_in_cache(cache, *, burst, cooldown_key, hourly, role) -> int:
    """The database (or any other cache): django-ratelimit's counting, the cache's add."""
    if burst and (burst.count() or {}).get("should_limit"):  # None: the cache failed and RATELIMIT_FAIL_OPEN
        _refuse_burst(burst)
    claimed = _claim_cooldown(cache, cooldown_key)
    if hourly is None:
        return 0
    usage = hourly.count() or {"count": 0, "should_limit": False}
    if usage["should_limit"]:
        with suppress(ValueError):  # gone if its window ended meanwhile
            cache.decr(hourly.key)  # a refusal counts nothing
        if claimed:
            cache.delete(cooldown_key)
        _refuse_hourly(hourly, role=role)
    return usage["count"]


def _claim_cooldown(cache, key: str) -> bool:
    """Record this request as the last accepted one for its kind and target, or refuse it."""
    seconds = _cooldown_seconds()
    if not seconds:
        return False
    now = time.time()
    if cache.add(key, now, timeout=seconds):
        return True
    last = cache.get(key)
    if last is None:  # expired between the two calls
        if cache.add(key, now, timeout=seconds):
            return True
        last = cache.get(key, now)
    if now - last < seconds:
        _refuse_cooldown(waited=now - last)
    # The cache still holds an older time than the cooldown: exactly one request may replace it.
    if not cache.add(f"{key}:after:{last!r}", 1, timeout=seconds):
        raise RateLimitExceeded(f"This refresh was just requested; wait {seconds} s between identical requests.",
                                code="cooldown", retry_after=seconds)
    cache.set(key, now, timeout=seconds)
    return True


def _refuse_burst(burst: _Window):
    raise RateLimitExceeded(f"Too many refresh requests at once: at most {burst.rate.replace('/', ' per ')}.",
                            code="burst", retry_after=burst.seconds_left())


def _refuse_cooldown(*, waited: float):
    seconds = _cooldown_seconds()
    raise RateLimitExceeded(f"This refresh was requested {int(waited)} s ago; wait {seconds} s between "
                            f"identical requests.", code="cooldown", retry_after=math.ceil(seconds - waited))


def _refuse_hourly(hourly: _Window, *, role: str):
    raise RateLimitExceeded(f"The {role} role may start {hourly.limit} refreshes per hour; this hour's are used.",
                            code="rate_limited", retry_after=hourly.seconds_left())


def _warn_near_the_quota(*, user, role: str, hourly: _Window, count: int) -> None:
    """One event when a requester passes 80% of the hourly quota."""
    threshold = hourly.limit * WARNING_SHARE
    if count > threshold >= count - 1:
        emit_event(event_type=RATELIMIT_WARNING, payload={
            "user_id": user.pk, "username": user.get_username(), "role": role, "used": count,
            "limit": hourly.limit, "resets_in": hourly.seconds_left(),
        })

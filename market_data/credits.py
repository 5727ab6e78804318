"""The provider's credit budget, shared by every worker: credits per minute and per UTC day.

Callers reserve credits before a provider call and settle the difference afterwards.
With MARKET_DATA_CREDIT_STORE "redis" the counters live in Redis and one Lua script checks
and takes credits atomically; otherwise a locked database row per minute and per day does
the same. When the provider itself says a quota is gone (a 429), the window is marked
exhausted so that every worker stops asking: until the next minute, or until midnight UTC.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django_redis import get_redis_connection

from .models import CreditPeriod, CreditWindow

KEY_PREFIX = "market-data:credits"
# What a fetch reports for what it could not send once the day's credits are gone; a run that
# stopped for it is partial, not failed.
DAY_CREDITS_GONE = "The provider's credits for today are used up; fetching stops until midnight UTC."


@dataclass(frozen=True)
class CreditGrant:
    """Credits taken for one provider call, and why there are fewer than asked for."""

    credits: int
    minute: datetime
    day_exhausted: bool = False
    day_used: int = 0

    @property
    def day(self) -> date:
        return self.minute.date()

    @property
    def retry_at(self) -> datetime:
        """When asking again can succeed: the next minute, or midnight UTC once the day is gone."""
        if self.day_exhausted:
            return next_midnight(self.minute)
        return self.minute + timedelta(minutes=1)

    @property
    def crossed_warning(self) -> bool:
        """This grant took the day's use past the warning share of the daily limit."""
        limit = settings.MARKET_DATA_CREDITS_PER_DAY
        threshold = limit * settings.MARKET_DATA_CREDIT_WARNING_RATIO
        return bool(limit) and self.credits > 0 and self.day_used - self.credits < threshold <= self.day_used


@dataclass(frozen=True)
class CreditsLeft:
    """What the shared budget still allows, read without taking anything; None where there is no limit."""

    this_minute: int | None
    today: int | None
    per_minute: int | None  # what each later minute allows


def minute_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def next_midnight(moment: datetime) -> datetime:
    return datetime.combine(moment.astimezone(UTC).date() + timedelta(days=1), time(), UTC)


def _limits() -> tuple[int, int]:
    return settings.MARKET_DATA_CREDITS_PER_MINUTE, settings.MARKET_DATA_CREDITS_PER_DAY


class DatabaseCreditStore:
    """Counters in CreditWindow rows, changed under a row lock (SQLite locks the whole database)."""

    def reserve(self, wanted: int, minute: datetime) -> tuple[int, bool, int]:
        per_minute, per_day = _limits()
        day = datetime.combine(minute.date(), time(), UTC)
        if not (per_minute or per_day):
            exhausted = dict(
                CreditWindow.objects.filter(self._windows(minute, day), exhausted=True).values_list(
                    "period", "exhausted"
                )
            )
            if exhausted:
                return 0, CreditPeriod.DAY in exhausted, 0
            return wanted, False, 0
        with transaction.atomic():
            windows = self._locked(minute, day)
            minute_row, day_row = windows[CreditPeriod.MINUTE], windows[CreditPeriod.DAY]
            granted, day_gone = _grant(
                wanted,
                minute_used=minute_row.used,
                minute_gone=minute_row.exhausted,
                day_used=day_row.used,
                day_gone=day_row.exhausted,
            )
            if granted:
                CreditWindow.objects.filter(pk__in=[minute_row.pk, day_row.pk]).update(used=F("used") + granted)
            # Old minutes are only history; keep the table to the last hour.
            CreditWindow.objects.filter(period=CreditPeriod.MINUTE, starts_at__lt=minute - timedelta(hours=1)).delete()
        return granted, day_gone, day_row.used + granted

    def peek(self, minute: datetime) -> tuple[int, bool, int, bool]:
        """(minute used, minute exhausted, day used, day exhausted), read without a lock or a write."""
        day = datetime.combine(minute.date(), time(), UTC)
        rows = {row.period: row for row in CreditWindow.objects.filter(self._windows(minute, day))}
        minute_row, day_row = rows.get(CreditPeriod.MINUTE), rows.get(CreditPeriod.DAY)
        return (
            minute_row.used if minute_row else 0,
            bool(minute_row and minute_row.exhausted),
            day_row.used if day_row else 0,
            bool(day_row and day_row.exhausted),
        )

    def adjust(self, minute: datetime, delta: int) -> None:
        day = datetime.combine(minute.date(), time(), UTC)
        with transaction.atomic():
            windows = self._locked(minute, day)
            for row in windows.values():
                CreditWindow.objects.filter(pk=row.pk).update(used=max(row.used + delta, 0))

    def mark_exhausted(self, period: str, minute: datetime) -> None:
        starts_at = minute if period == CreditPeriod.MINUTE else datetime.combine(minute.date(), time(), UTC)
        CreditWindow.objects.bulk_create([CreditWindow(period=period, starts_at=starts_at)], ignore_conflicts=True)
        CreditWindow.objects.filter(period=period, starts_at=starts_at).update(exhausted=True)

    @staticmethod
    def _windows(minute: datetime, day: datetime) -> Q:
        return Q(period=CreditPeriod.MINUTE, starts_at=minute) | Q(period=CreditPeriod.DAY, starts_at=day)

    def _locked(self, minute: datetime, day: datetime) -> dict[str, CreditWindow]:
        CreditWindow.objects.bulk_create(
            [
                CreditWindow(period=CreditPeriod.MINUTE, starts_at=minute),
                CreditWindow(period=CreditPeriod.DAY, starts_at=day),
            ],
            ignore_conflicts=True,
        )
        rows = CreditWindow.objects.select_for_update().filter(self._windows(minute, day)).order_by("period")
        return {row.period: row for row in rows}


# KEYS: minute used, day used, minute exhausted, day exhausted.
# ARGV: wanted, per-minute limit, per-day limit (0: none), minute key TTL, day key TTL.
# Returns {granted, day exhausted (0/1), day used after}.
_RESERVE = """
local day_used = tonumber(redis.call('GET', KEYS[2]) or '0')
if redis.call('EXISTS', KEYS[4]) == 1 then return {0, 1, day_used} end
if redis.call('EXISTS', KEYS[3]) == 1 then return {0, 0, day_used} end
local granted = tonumber(ARGV[1])
local per_minute, per_day = tonumber(ARGV[2]), tonumber(ARGV[3])
if per_minute > 0 then
  granted = math.min(granted, per_minute - tonumber(redis.call('GET', KEYS[1]) or '0'))
end
if per_day > 0 then
  if per_day - day_used <= 0 then return {0, 1, day_used} end
  granted = math.min(granted, per_day - day_used)
end
if granted <= 0 then return {0, 0, day_used} end
redis.call('INCRBY', KEYS[1], granted)
redis.call('EXPIRE', KEYS[1], ARGV[4])
day_used = redis.call('INCRBY', KEYS[2], granted)
redis.call('EXPIRE', KEYS[2], ARGV[5])
return {granted, 0, day_used}
"""
_MINUTE_TTL = 180
_DAY_TTL = 2 * 24 * 3600


class RedisCreditStore:
    """Counters in Redis keys per minute and per day, reserved by one atomic script."""

    def __init__(self):
        self.redis = get_redis_connection("default")
        self.script = self.redis.register_script(_RESERVE)

    @staticmethod
    def _keys(minute: datetime) -> list[str]:
        stamp, day = f"{minute:%Y%m%d%H%M}", f"{minute:%Y%m%d}"
        return [
            f"{KEY_PREFIX}:minute:{stamp}",
            f"{KEY_PREFIX}:day:{day}",
            f"{KEY_PREFIX}:minute-exhausted:{stamp}",
            f"{KEY_PREFIX}:day-exhausted:{day}",
        ]

    def reserve(self, wanted: int, minute: datetime) -> tuple[int, bool, int]:
        per_minute, per_day = _limits()
        granted, day_gone, day_used = self.script(
            keys=self._keys(minute), args=[wanted, per_minute, per_day, _MINUTE_TTL, _DAY_TTL]
        )
        return int(granted), bool(day_gone), int(day_used)

    def peek(self, minute: datetime) -> tuple[int, bool, int, bool]:
        """(minute used, minute exhausted, day used, day exhausted), read in one round trip."""
        minute_used, day_used, minute_gone, day_gone = self.redis.mget(self._keys(minute))
        return int(minute_used or 0), minute_gone is not None, int(day_used or 0), day_gone is not None

    def adjust(self, minute: datetime, delta: int) -> None:
        minute_key, day_key, *_ = self._keys(minute)
        with self.redis.pipeline() as pipe:
            pipe.incrby(minute_key, delta).incrby(day_key, delta).execute()

    def mark_exhausted(self, period: str, minute: datetime) -> None:
        _, _, minute_flag, day_flag = self._keys(minute)
        if period == CreditPeriod.MINUTE:
            self.redis.set(minute_flag, 1, ex=_MINUTE_TTL)
        else:
            # A relative expiry from our clock, so the flag lasts exactly until midnight UTC.
            seconds = max(int((next_midnight(minute) - minute).total_seconds()), 1)
            self.redis.set(day_flag, 1, ex=seconds)


def _grant(wanted: int, *, minute_used: int, minute_gone: bool, day_used: int, day_gone: bool) -> tuple[int, bool]:
    """How many of `wanted` credits the limits allow, and whether the day is used up."""
    per_minute, per_day = _limits()
    if day_gone or (per_day and day_used >= per_day):
        return 0, True
    if minute_gone:
        return 0, False
    granted = wanted
    if per_minute:
        granted = min(granted, per_minute - minute_used)
    if per_day:
        granted = min(granted, per_day - day_used)
    return max(granted, 0), False


def credit_store() -> DatabaseCreditStore | RedisCreditStore:
    """The store MARKET_DATA_CREDIT_STORE names."""
    return RedisCreditStore() if settings.MARKET_DATA_CREDIT_STORE == "redis" else DatabaseCreditStore()


def reserve_credits(*, wanted: int, now: datetime | None = None) -> CreditGrant:
    """Take up to `wanted` credits from this minute's and this day's budget, for every worker."""
    minute = minute_start(now or timezone.now())
    if wanted <= 0:
        return CreditGrant(credits=0, minute=minute)
    granted, day_gone, day_used = credit_store().reserve(wanted, minute)
    return CreditGrant(credits=granted, minute=minute, day_exhausted=day_gone and not granted, day_used=day_used)


def credits_left(*, now: datetime | None = None) -> CreditsLeft:
    """What the budget allows now and later, taking nothing: for planning a fetch before spending."""
    per_minute, per_day = _limits()
    minute_used, minute_gone, day_used, day_gone = credit_store().peek(minute_start(now or timezone.now()))
    today = 0 if day_gone else (max(per_day - day_used, 0) if per_day else None)
    this_minute = 0 if (minute_gone or today == 0) else (max(per_minute - minute_used, 0) if per_minute else None)
    return CreditsLeft(this_minute=this_minute, today=today, per_minute=per_minute or None)


def settle_credits(*, grant: CreditGrant, spent: int) -> None:
    """Correct the budget once the real cost of a call is known: return or add the difference."""
    if spent != grant.credits:
        credit_store().adjust(grant.minute, spent - grant.credits)


def mark_credits_exhausted(*, period: str, now: datetime | None = None) -> None:
    """The provider refused for lack of credits: stop every worker until the period ends."""
    credit_store().mark_exhausted(CreditPeriod(period), minute_start(now or timezone.now()))

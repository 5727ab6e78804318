"""The django-q2 schedules of routine refreshes and the lease reaper, and their triggers."""
from datetime import datetime
from zoneinfo import ZoneInfo

from django.utils import timezone
from django_q.models import Schedule

from refresh.models import RefreshKind, RefreshMode, RunSource
from refresh.services.requests import request_refresh

SCHEDULES = [
    # (name, function, kwargs, schedule type, minutes)
    ("refresh: incremental prices", "refresh.tasks.scheduled_refresh",
     {"kind": RefreshKind.PRICES, "mode": RefreshMode.INCREMENTAL, "trading_hours_only": True},
     Schedule.MINUTES, 15),
    ("refresh: nightly full", "refresh.tasks.scheduled_refresh",
     {"kind": RefreshKind.ALL, "mode": RefreshMode.FULL}, Schedule.DAILY, None),
    ("refresh: daily benchmark", "refresh.tasks.scheduled_refresh",
     {"kind": RefreshKind.BENCHMARK, "mode": RefreshMode.INCREMENTAL}, Schedule.DAILY, None),
    ("refresh: reap lost runs", "refresh.tasks.reap_lost_runs", {}, Schedule.MINUTES, 1),
]


def install_schedules() -> int:
    """Create or update every schedule by name; returns how many exist."""
    for name, func, kwargs, kind, minutes in SCHEDULES:
        Schedule.objects.update_or_create(name=name, defaults={
            "func": func, "kwargs": kwargs, "schedule_type": kind, "minutes": minutes, "repeats": -1,
        })
    return len(SCHEDULES)


def in_us_trading_hours(moment: datetime) -> bool:
    """Weekday, 09:30-16:00 New York time (holidays are the provider issue's calendar)."""
    local = timezone.localtime(moment, timezone=_new_york())
    minutes = local.hour * 60 + local.minute
    return local.weekday() < 5 and 9 * 60 + 30 <= minutes <= 16 * 60


def _new_york():
    return ZoneInfo("America/New_York")


def trigger_scheduled_refresh(*, kind: str, mode: str, trading_hours_only: bool = False):
    """A schedule's run, as the system at low priority; None outside trading hours."""
    if trading_hours_only and not in_us_trading_hours(timezone.now()):
        return None
    run, _ = request_refresh(kind=kind, mode=mode, requested_by=None, source=RunSource.SCHEDULE)
    return run

"""The django-q2 schedules of routine refreshes and the lease reaper, and their triggers."""
import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule

from refresh.models import RefreshKind, RefreshMode, RefreshRun, Role, RunPriority, RunSource, RunStatus
from refresh.services.requests import request_refresh
from refresh.services.scopes import scope_for
from refresh.services.tracking import record_instant_step

logger = logging.getLogger("refresh.scheduled")

DAY = 24 * 60
SCHEDULES = [
    # (name, function, kwargs, schedule type, minutes)
    ("refresh: incremental prices", "refresh.tasks.scheduled_refresh",
     {"kind": RefreshKind.PRICES, "mode": RefreshMode.INCREMENTAL, "interval_minutes": 15,
      "trading_hours_only": True}, Schedule.MINUTES, 15),
    ("refresh: nightly full", "refresh.tasks.scheduled_refresh",
     {"kind": RefreshKind.ALL, "mode": RefreshMode.FULL, "interval_minutes": DAY}, Schedule.DAILY, None),
    ("refresh: daily benchmark", "refresh.tasks.scheduled_refresh",
     {"kind": RefreshKind.BENCHMARK, "mode": RefreshMode.INCREMENTAL, "interval_minutes": DAY},
     Schedule.DAILY, None),
    ("refresh: reap lost runs", "refresh.tasks.reap_lost_runs", {}, Schedule.MINUTES, 1),
    ("notifications: recover lost deliveries", "notifications.tasks.recover_lost_notifications", {},
     Schedule.MINUTES, 1),
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


def recent_equivalent_manual_run(*, kind: str, mode: str, within: timedelta) -> RefreshRun | None:
    """A manual run that did this work (or more: kind all, mode full) within the interval."""
    return (
        RefreshRun.objects.filter(kind__in={kind, RefreshKind.ALL}, mode__in={mode, RefreshMode.FULL},
                                  target_user__isnull=True, status__in=[RunStatus.SUCCESS, RunStatus.PARTIAL],
                                  finished_at__gte=timezone.now() - within)
        .exclude(source=RunSource.SCHEDULE).order_by("-finished_at").first()
    )


@transaction.atomic  # nobody may see the skipped run without the step that says why
def _record_skipped(*, kind: str, mode: str, reason: str) -> RefreshRun:
    now = timezone.now()
    run = RefreshRun.objects.create(
        kind=kind, mode=mode, status=RunStatus.SKIPPED, priority=RunPriority.LOW, requested_role=Role.SYSTEM,
        source=RunSource.SCHEDULE, scope=scope_for(kind=kind, target_user_id=None),
        dedup_key=f"skipped:{kind}:{mode}", current_step="Skipped: a manual run did this recently",
        started_at=now, finished_at=now, duration_ms=0, progress=1.0, estimated_completion=now,
        params={"symbols": [], "apply_rebalancing": False, "skip_reason": reason},
    )
    record_instant_step(run=run, position=1, name="Skipped", message=reason)
    return run


def trigger_scheduled_refresh(*, kind: str, mode: str, interval_minutes: int = 0,
                              trading_hours_only: bool = False) -> RefreshRun | None:
    """A schedule's run, as the system at low priority.

    Manual overrides the schedule: when an equivalent manual run finished within the
    schedule's interval, the scheduled run is recorded as skipped with the reason.
    Returns None outside trading hours for a trading-hours schedule.
    """
    if trading_hours_only and not in_us_trading_hours(timezone.now()):
        return None
    manual = recent_equivalent_manual_run(kind=kind, mode=mode, within=timedelta(minutes=interval_minutes))
    if manual is not None:
        reason = (f"Manual run {manual.refresh_id} ({manual.kind}, {manual.mode}) finished at "
                  f"{manual.finished_at:%Y-%m-%d %H:%M:%S}Z, within this schedule's {interval_minutes}-minute interval.")
        logger.info("scheduled %s %s refresh skipped: %s", kind, mode, reason)
        return _record_skipped(kind=kind, mode=mode, reason=reason)
    run, _ = request_refresh(kind=kind, mode=mode, requested_by=None, source=RunSource.SCHEDULE)
    return run

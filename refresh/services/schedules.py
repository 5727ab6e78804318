"""The django-q2 schedules of routine refreshes and the lease reaper, their triggers and their failures.

django-q2 keeps a schedule's kwargs as text and reads them back with ``ast.literal_eval``, so
they hold plain strings and numbers only. Its daily schedules add 24 hours in UTC; ours name a
local time in ``REFRESH_SCHEDULE_TZ`` instead, and every firing puts the next one back on that
local time, so daylight saving never shifts them.
"""

import logging
from calendar import SATURDAY
from collections.abc import Mapping
from datetime import datetime, time, timedelta
from typing import NotRequired, TypedDict
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule

from core.roles import Role
from refresh.models import COMPLETED_STATUSES, RefreshKind, RefreshMode, RefreshRun, RunPriority, RunSource, RunStatus
from refresh.services.events import SCHEDULE_FAILED, emit_event
from refresh.services.requests import request_refresh
from refresh.services.scopes import scope_for
from refresh.services.tracking import record_instant_step

logger = logging.getLogger("refresh.scheduled")

DAY = 24 * 60
SCHEDULED_REFRESH = "refresh.tasks.scheduled_refresh"
# US regular trading hours, in minutes after midnight New York time.
MARKET_OPENS, MARKET_CLOSES = 9 * 60 + 30, 16 * 60

# A task's keyword arguments, as django-q2 can keep them in text (literals only).
TaskKwargs = dict[str, str | int | bool]


class ScheduleEntry(TypedDict):
    """One schedule this service installs; a daily one names its local time ``at``."""

    name: str
    func: str
    schedule_type: str
    kwargs: TaskKwargs
    minutes: NotRequired[int]
    at: NotRequired[str]


def _routine(kind: str, mode: str, **options: int | bool) -> TaskKwargs:
    return {"kind": str(kind), "mode": str(mode), **options}


def schedules() -> list[ScheduleEntry]:
    """Every schedule this service installs: name, function, kwargs, type, and a daily local time."""
    return [
        {
            "name": "refresh: incremental prices",
            "func": SCHEDULED_REFRESH,
            "schedule_type": Schedule.MINUTES,
            "minutes": 15,
            "kwargs": _routine(
                RefreshKind.PRICES, RefreshMode.INCREMENTAL, interval_minutes=15, trading_hours_only=True
            ),
        },
        {
            "name": "refresh: nightly full",
            "func": SCHEDULED_REFRESH,
            "schedule_type": Schedule.DAILY,
            "at": settings.REFRESH_NIGHTLY_AT,
            "kwargs": _routine(RefreshKind.ALL, RefreshMode.FULL, interval_minutes=DAY),
        },
        {
            "name": "refresh: daily benchmark",
            "func": SCHEDULED_REFRESH,
            "schedule_type": Schedule.DAILY,
            "at": settings.REFRESH_BENCHMARK_AT,
            "kwargs": _routine(RefreshKind.BENCHMARK, RefreshMode.INCREMENTAL, interval_minutes=DAY),
        },
        {
            "name": "refresh: reap lost runs",
            "func": "refresh.tasks.reap_lost_runs",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "kwargs": {},
        },
        {
            "name": "notifications: recover lost deliveries",
            "func": "notifications.tasks.recover_lost_notifications",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "kwargs": {},
        },
    ]


def schedule_zone() -> ZoneInfo:
    return ZoneInfo(settings.REFRESH_SCHEDULE_TZ)


def parse_local_time(value: str) -> time:
    """``HH:MM`` (24-hour) as a time, or ValueError naming the value."""
    try:
        hours, minutes = (int(part) for part in value.split(":"))
        return time(hours, minutes)
    except (TypeError, ValueError):
        raise ValueError(f"Not a HH:MM time of day: {value!r}") from None


def next_local_time(at: str, *, after: datetime | None = None) -> datetime:
    """The first moment strictly after ``after`` (now) when the schedule's zone shows ``at``."""
    zone = schedule_zone()
    local = timezone.localtime(after or timezone.now(), timezone=zone)
    candidate = datetime.combine(local.date(), parse_local_time(at), tzinfo=zone)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), parse_local_time(at), tzinfo=zone)
    return candidate


def install_schedules() -> int:
    """Create or update every schedule by name, daily ones due at their next local time; returns how many."""
    entries = schedules()
    for entry in entries:
        defaults: dict[str, object] = {
            "func": entry["func"],
            "kwargs": repr(entry["kwargs"]),
            "schedule_type": entry["schedule_type"],
            "minutes": entry.get("minutes"),
            "repeats": -1,
        }
        if "at" in entry:
            defaults["next_run"] = next_local_time(entry["at"])
        Schedule.objects.update_or_create(name=entry["name"], defaults=defaults)
    return len(entries)


def scheduled_task_finished(*, task: Mapping[str, object]) -> None:
    """After a django-q2 task a schedule started: a daily schedule goes back on its local time
    (django-q2 added 24 h in UTC), and a failure is reported.

    django-q2 groups a scheduled task under its schedule's name (a one-off schedule is gone by
    the time its task ends), and nothing else here queues grouped tasks; other failed tasks
    (a run's pickup, a notification) report through their runs and deliveries.
    """
    name = str(task.get("group") or "")
    if not name:
        return
    at = next((entry["at"] for entry in schedules() if entry["name"] == name and "at" in entry), None)
    if at is not None:
        Schedule.objects.filter(name=name).update(next_run=next_local_time(at))
    if not task.get("success", True):
        _report_failure(name=name, task=task)


def _report_failure(*, name: str, task: Mapping[str, object]) -> None:
    """An error log, the schedule.failed event (and so its notifications)."""
    payload = {
        "schedule": name,
        "func": str(task.get("func", "")),
        "task_id": str(task.get("id", "")),
        "task_name": str(task.get("name", "")),
        "error": str(task.get("result", ""))[:1000],
        "failed_at": timezone.now().isoformat(),
    }
    logger.error(
        "scheduled task %s failed: %s",
        name,
        payload["error"],
        extra={"event": SCHEDULE_FAILED, "event_type": SCHEDULE_FAILED, **payload},
    )
    emit_event(event_type=SCHEDULE_FAILED, payload=payload)


def in_us_trading_hours(moment: datetime) -> bool:
    """Weekday, 09:30-16:00 New York time (holidays are the provider issue's calendar)."""
    local = timezone.localtime(moment, timezone=_new_york())
    minutes = local.hour * 60 + local.minute
    return local.weekday() < SATURDAY and MARKET_OPENS <= minutes <= MARKET_CLOSES


def _new_york() -> ZoneInfo:
    return ZoneInfo("America/New_York")


def recent_equivalent_manual_run(*, kind: str, mode: str, within: timedelta) -> RefreshRun | None:
    """A manual run that did this work (or more: kind all, mode full) within the interval."""
    return (
        RefreshRun.objects.filter(
            kind__in={kind, RefreshKind.ALL},
            mode__in={mode, RefreshMode.FULL},
            target_user__isnull=True,
            status__in=COMPLETED_STATUSES,
            finished_at__gte=timezone.now() - within,
        )
        .exclude(source=RunSource.SCHEDULE)
        .order_by("-finished_at")
        .first()
    )


@transaction.atomic  # nobody may see the skipped run without the step that says why
def _record_skipped(*, kind: str, mode: str, reason: str) -> RefreshRun:
    now = timezone.now()
    run = RefreshRun.objects.create(
        kind=kind,
        mode=mode,
        status=RunStatus.SKIPPED,
        priority=RunPriority.LOW,
        requested_role=Role.SYSTEM,
        source=RunSource.SCHEDULE,
        scope=scope_for(kind=kind, target_user_id=None),
        dedup_key=f"skipped:{kind}:{mode}",
        current_step="Skipped: a manual run did this recently",
        started_at=now,
        finished_at=now,
        duration_ms=0,
        progress=1.0,
        estimated_completion=now,
        params={"symbols": [], "apply_rebalancing": False, "skip_reason": reason},
    )
    record_instant_step(run=run, position=1, name="Skipped", message=reason)
    return run


def trigger_scheduled_refresh(
    *, kind: str, mode: str, interval_minutes: int = 0, trading_hours_only: bool = False
) -> RefreshRun | None:
    """A schedule's run, as the system at low priority.

    Manual overrides the schedule: when an equivalent manual run finished within the
    schedule's interval, the scheduled run is recorded as skipped with the reason.
    Returns None outside trading hours for a trading-hours schedule.
    """
    if trading_hours_only and not in_us_trading_hours(timezone.now()):
        return None
    manual = recent_equivalent_manual_run(kind=kind, mode=mode, within=timedelta(minutes=interval_minutes))
    if manual is not None:
        reason = (
            f"Manual run {manual.refresh_id} ({manual.kind}, {manual.mode}) finished at "
            f"{manual.finished_at:%Y-%m-%d %H:%M:%S}Z, within this schedule's {interval_minutes}-minute interval."
        )
        logger.info("scheduled %s %s refresh skipped: %s", kind, mode, reason)
        return _record_skipped(kind=kind, mode=mode, reason=reason)
    run, _ = request_refresh(kind=kind, mode=mode, requested_by=None, source=RunSource.SCHEDULE)
    return run

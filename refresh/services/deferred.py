"""Deferred runs: recorded at once as ``scheduled``, entering the queue at their ``run_at``.

A one-off django-q2 schedule wakes a worker SCHEDULER_LEAD before the time (django-q2's
scheduler looks for due schedules every 30 seconds, so a schedule due at the time itself could
start up to 30 s late), and the task waits out the rest: the run enters the queue within about
a second of its time, at the cost of a worker waiting for up to SCHEDULER_LEAD. Entering the
queue is then like a request at that moment: an identical active run is joined (the deferred
run ends ``skipped``, naming it) and conflicting runs are waited for. Should a schedule be lost,
the reaper puts a run whose time passed LATE_AFTER ago in the queue.
"""

import time
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import schedule

from refresh.errors import InvalidRefreshRequest
from refresh.models import RefreshRun, RunPriority, RunStatus
from refresh.selectors import active_runs_with_key
from refresh.services.dispatch import enqueue_pickup_on_commit
from refresh.services.preemption import preempt_for
from refresh.services.tracking import estimate_duration_seconds, last_step_position, record_instant_step

MAX_DEFERRAL = timedelta(days=7)
SCHEDULER_LEAD = timedelta(seconds=35)
LATE_AFTER = timedelta(minutes=1)
START_TASK = "refresh.tasks.start_deferred_run"


def check_run_at(run_at: datetime) -> None:
    """A deferred run's time is in the future, within MAX_DEFERRAL, and names its zone."""
    if timezone.is_naive(run_at):
        raise InvalidRefreshRequest("run_at needs its time zone, e.g. 2026-12-08T02:00:00Z.", code="invalid_run_at")
    now = timezone.now()
    if run_at <= now:
        raise InvalidRefreshRequest("run_at is in the past; leave it out to start now.", code="invalid_run_at")
    if run_at > now + MAX_DEFERRAL:
        raise InvalidRefreshRequest("run_at may be at most 7 days ahead.", code="invalid_run_at")


def _schedule_name(run: RefreshRun) -> str:
    return f"deferred {run.refresh_id}"


def schedule_start(run: RefreshRun) -> None:
    """Create the one-off schedule that starts the run at its time (in the caller's transaction)."""
    assert run.run_at is not None  # noqa: S101 - only deferred runs get here
    schedule(
        START_TASK,
        refresh_id=run.refresh_id,
        name=_schedule_name(run),
        schedule_type=Schedule.ONCE,
        next_run=run.run_at - SCHEDULER_LEAD,
    )


def forget_schedule(run: RefreshRun) -> None:
    """Drop a cancelled run's schedule (its task would find nothing to start anyway)."""
    Schedule.objects.filter(name=_schedule_name(run), func=START_TASK).delete()


def start_deferred_run(refresh_id: str, *, sleep: Callable[[float], object] = time.sleep) -> RefreshRun | None:
    """Wait for the run's time, then put it in the queue; None if it was cancelled meanwhile."""
    run = RefreshRun.objects.filter(refresh_id=refresh_id, status=RunStatus.SCHEDULED).first()
    if run is None or run.run_at is None:
        return None
    early = (run.run_at - timezone.now()).total_seconds()
    if early > 0:
        sleep(min(early, SCHEDULER_LEAD.total_seconds()))
    return enter_queue(run)


def enter_queue(run: RefreshRun) -> RefreshRun:
    """Move a scheduled run into the queue now, or end it skipped if an identical run is active."""
    now = timezone.now()
    expected = timedelta(seconds=estimate_duration_seconds(kind=run.kind, mode=run.mode))
    try:
        with transaction.atomic():
            entered = RefreshRun.objects.filter(pk=run.pk, status=RunStatus.SCHEDULED).update(
                status=RunStatus.QUEUED, current_step="Queued", estimated_completion=now + expected
            )
            if entered:
                record_instant_step(
                    run=run,
                    position=last_step_position(run) + 1,
                    name="Entered the queue",
                    message=f"Deferred to {run.run_at:%Y-%m-%d %H:%M:%S %Z}.",
                )
                preempt_for(run)
                enqueue_pickup_on_commit(emergency=run.priority >= RunPriority.EMERGENCY)
    except IntegrityError:  # the dedup index: an identical run is queued or running
        active = active_runs_with_key(run.dedup_key).first()
        reason = f"An identical run ({active.refresh_id if active else 'now finished'}) was active at its time."
        RefreshRun.objects.filter(pk=run.pk, status=RunStatus.SCHEDULED).update(
            status=RunStatus.SKIPPED,
            finished_at=now,
            current_step="Skipped",
            estimated_completion=now,
            params={**run.params, "skip_reason": reason},
        )
    run.refresh_from_db()
    return run


def start_late_runs() -> int:
    """Put in the queue deferred runs whose time passed LATE_AFTER ago (their schedule was lost)."""
    late = RefreshRun.objects.filter(status=RunStatus.SCHEDULED, run_at__lt=timezone.now() - LATE_AFTER)
    return sum(1 for run in late if enter_queue(run).status == RunStatus.QUEUED)

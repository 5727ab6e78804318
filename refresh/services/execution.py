"""Claiming queued runs in priority order, executing them, and recovering from lost workers."""

import logging
import time
from collections.abc import Callable
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from core.heartbeat import process_name
from core.log_context import request_context
from core.log_redaction import redact_text
from core.read_cache import invalidate_everything
from market_data.credits import DAY_CREDITS_GONE
from refresh.errors import RunNotCancellable, RunPreempted, RunStopped
from refresh.models import COMPLETED_STATUSES, RefreshRun, RunStatus, ScopeLease
from refresh.selectors import runs_waiting
from refresh.services import access, deferred
from refresh.services.access import Requester
from refresh.services.dispatch import enqueue_pickup
from refresh.services.events import REFRESH_COMPLETED, REFRESH_FAILED, emit_event, run_payload
from refresh.services.scopes import (
    grant_lease,
    held_scopes,
    lease_expiry,
    release_lease,
    scopes_conflict,
    serialise_lease_changes,
)
from refresh.services.symbol_outcomes import record_symbol_outcomes
from refresh.services.tracking import RunTracker, forget_duration_estimate

logger = logging.getLogger("refresh.execution")
# What the run's last step says once it has ended; any other outcome shows its status's label.
_COMPLETED_STEP: dict[str, str] = {RunStatus.SUCCESS: "Completed", RunStatus.PARTIAL: "Completed with errors"}


def claim_next_run(*, min_priority: int = 0, run_id: int | None = None) -> RefreshRun | None:
    """Atomically move the most urgent runnable queued run to in_progress and lease its scope.

    Runs go by priority, then age. A run whose scope conflicts with a held lease waits, and
    so does any less urgent run that conflicts with a waiting one, so urgent work is not
    starved by a stream of smaller runs.
    """
    with transaction.atomic():
        serialise_lease_changes()
        blocked = held_scopes()
        queued = RefreshRun.objects.filter(status=RunStatus.QUEUED, priority__gte=min_priority)
        for run in queued.order_by("-priority", "created_at", "id")[:500]:
            if any(scopes_conflict(run.scope, scope) for scope in blocked):
                blocked.append(run.scope)
                continue
            if run_id is not None and run.pk != run_id:
                blocked.append(run.scope)  # a more urgent run this worker leaves to others still goes first
                continue
            now = timezone.now()
            claimed = RefreshRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(
                status=RunStatus.IN_PROGRESS,
                started_at=now,
                worker=process_name(),
                lease_expires_at=lease_expiry(),
                current_step="Acquiring lock",
                preempted_by=None,  # kept while it was queued after making way (preemption)
            )
            if claimed:
                run.refresh_from_db()
                grant_lease(run=run)
                return run
    return None


def _final_status(run: RefreshRun) -> str:
    """Errors with some work saved are partial; so is a run cut short by the day's credits."""
    if not (run.errors or run.failed_symbols):
        return RunStatus.SUCCESS
    out_of_credits = any(error.startswith(DAY_CREDITS_GONE) for error in run.errors)
    return RunStatus.PARTIAL if out_of_credits or any(run.items_updated.values()) else RunStatus.FAILED


def _finish(tracker: RunTracker, status: str) -> bool:
    """Record the outcome; False when the run was already ended elsewhere (reaped as lost)."""
    run = tracker.run
    with tracker.step("Reporting status", checkpoint=False) as record:
        record.message = status
    now = timezone.now()
    run.status = status
    run.finished_at = now
    run.duration_ms = int((now - tracker.started_at).total_seconds() * 1000)
    run.progress = 1.0 if status in COMPLETED_STATUSES else run.progress
    run.current_step = _COMPLETED_STEP.get(status, RunStatus(status).label)
    run.estimated_completion = now
    run.lease_expires_at = None
    fields = [
        "status",
        "finished_at",
        "duration_ms",
        "progress",
        "current_step",
        "items_updated",
        "errors",
        "failed_symbols",
        "estimated_completion",
        "lease_expires_at",
    ]
    with transaction.atomic():  # whoever sees the run finished sees its scope free and its symbols
        saved = RefreshRun.objects.filter(pk=run.pk, status=RunStatus.IN_PROGRESS).update(
            **{field: getattr(run, field) for field in fields}
        )
        if saved:
            record_symbol_outcomes(run=run, outcomes=tracker.symbol_outcomes)
        release_lease(run=run)
    forget_duration_estimate(kind=run.kind, mode=run.mode)  # the next estimate includes this run
    return bool(saved)


def _requeue(tracker: RunTracker, stop: RunPreempted) -> bool:
    """Put a pre-empted run back in the queue, with what it saved kept; False when it was ended
    elsewhere meanwhile (reaped as lost). It stays marked until claimed again (preemption)."""
    run = tracker.run
    stopped = (
        f"Made way for emergency run {stop.by}, as every worker was busy: stopped between batches"
        if stop.worker_busy
        else f"Stopped between batches for emergency run {stop.by}"
    )
    with tracker.step("Pre-empted", checkpoint=False) as record:
        record.message = f"{stopped}; what it saved is kept. Back in the queue at its place, to resume after it."
    with transaction.atomic():  # whoever sees it queued sees its scope free
        saved = RefreshRun.objects.filter(pk=run.pk, status=RunStatus.IN_PROGRESS).update(
            status=RunStatus.QUEUED,
            worker="",
            lease_expires_at=None,
            current_step="Queued (pre-empted)",
            progress=0.0,
            items_updated=run.items_updated,
            errors=run.errors,
            failed_symbols=run.failed_symbols,
        )
        release_lease(run=run)
    return bool(saved)


def execute_claimed_run(
    run: RefreshRun,
    *,
    claimed_at: float | None = None,
    listener: Callable[[RefreshRun], object] | None = None,
    holds_worker: bool = True,
) -> RefreshRun:
    """Run the steps of a run this worker has claimed, and always release its scope.

    Log records written meanwhile carry the run's refresh_id and the request id of the HTTP
    request that started it, so a worker's lines join the request's. ``holds_worker``: False
    where no worker executes it (the command), so it never yields one to an emergency run.
    """
    context = {**(request_context.get() or {}), "refresh_id": run.refresh_id}
    if run.request_id:
        context["request_id"] = run.request_id
    token = request_context.set(context)
    try:
        return _execute_claimed_run(run, claimed_at=claimed_at, listener=listener, holds_worker=holds_worker)
    finally:
        request_context.reset(token)


def _execute_claimed_run(
    run: RefreshRun,
    *,
    claimed_at: float | None,
    listener: Callable[[RefreshRun], object] | None,
    holds_worker: bool,
) -> RefreshRun:
    from refresh.steps.flow import run_refresh_steps  # noqa: PLC0415 - the run path loads with a run (start-up time)

    run.refresh_from_db()
    tracker = RunTracker(run, listener=listener, holds_worker=holds_worker)
    status: str = RunStatus.FAILED
    preempted: RunPreempted | None = None
    try:
        tracker.record_finished_step(
            "Acquiring lock",
            started_at=tracker.started_at,
            message=f"Holding scope {run.scope}",
            duration_ms=int((time.monotonic() - claimed_at) * 1000) if claimed_at else 0,
        )
        run_refresh_steps(tracker)
        status = _final_status(run)
    except RunPreempted as stop:
        preempted = stop
    except RunStopped as stop:
        status = stop.status
        tracker.add_error(stop.reason)
    except Exception as exc:
        logger.exception("refresh run %s failed", run.refresh_id)
        tracker.add_error(f"Internal error ({type(exc).__name__}): {redact_text(str(exc))[:300]}")
    finally:
        if status not in COMPLETED_STATUSES and tracker.wrote_data:
            # Some batches were saved before the run ended early: no cached figure may outlive them.
            invalidate_everything()
        try:
            finished = _requeue(tracker, preempted) if preempted else _finish(tracker, status)
        finally:
            tracker.close()
            release_lease(run=run)  # again, in case recording the outcome failed
    if preempted is not None and finished:
        logger.info("refresh run %s pre-empted by %s: back in the queue", run.refresh_id, preempted.by)
        enqueue_pickup(emergency=True)  # this worker, now free, takes the emergency run
        run.refresh_from_db()
        return run
    if not finished:
        logger.warning("refresh run %s was already ended elsewhere (lease lost); result discarded", run.refresh_id)
        run.refresh_from_db()
        return run
    logger.info("refresh run %s finished: %s", run.refresh_id, run.status)
    emit_event(
        event_type=REFRESH_COMPLETED if run.status in COMPLETED_STATUSES else REFRESH_FAILED,
        payload=run_payload(run),
    )
    if runs_waiting():
        enqueue_pickup()
    return run


def execute_next_refresh(*, min_priority: int = 0) -> RefreshRun | None:
    """Claim and execute the most urgent runnable run; None when there is nothing to start."""
    began = time.monotonic()
    fail_lost_runs()  # a dead worker's scope must not block what waits for it
    run = claim_next_run(min_priority=min_priority)
    if run is None:
        return None
    return execute_claimed_run(run, claimed_at=began)


def execute_run_in_process(
    *, run: RefreshRun, listener: Callable[[RefreshRun], object] | None = None, poll: float = 0.5
) -> RefreshRun:
    """Execute this run here once its scope is free; if a worker took it first, follow it."""
    while True:
        began = time.monotonic()
        claimed = claim_next_run(run_id=run.pk)
        if claimed is not None:
            run = execute_claimed_run(claimed, claimed_at=began, listener=listener, holds_worker=False)
            if run.status != RunStatus.QUEUED:
                return run
            continue  # pre-empted: it resumes here once the emergency run has freed the scope
        run.refresh_from_db()
        if listener:
            listener(run)
        if run.is_finished:
            return run
        time.sleep(poll)


def fail_lost_runs() -> int:
    """Fail runs whose lease lapsed (their worker died) and free their scopes."""
    lost = RefreshRun.objects.filter(status=RunStatus.IN_PROGRESS, lease_expires_at__lt=timezone.now())
    return sum(fail_if_lost(run) for run in lost)


def worker_lost(run: RefreshRun, *, now: datetime | None = None) -> bool:
    """Whether the run, as it was read, is in progress under a lease that lapsed unrenewed."""
    now = now or timezone.now()
    return run.status == RunStatus.IN_PROGRESS and run.lease_expires_at is not None and run.lease_expires_at < now


def fail_if_lost(run: RefreshRun) -> bool:
    """Fail the run if its worker is known lost (its lease lapsed unrenewed), freeing its scope."""
    now = timezone.now()
    if not worker_lost(run, now=now):
        return False  # as the run was read: no write for a healthy run an identical request joins
    with transaction.atomic():
        updated = RefreshRun.objects.filter(pk=run.pk, status=RunStatus.IN_PROGRESS, lease_expires_at__lt=now).update(
            status=RunStatus.FAILED,
            finished_at=now,
            current_step="Failed: worker lost",
            errors=[*run.errors, "worker lost"],
            lease_expires_at=None,
            duration_ms=int((now - run.started_at).total_seconds() * 1000) if run.started_at else None,
        )
        if updated:
            ScopeLease.objects.filter(run=run).delete()
    if not updated:
        return False
    logger.warning("refresh run %s failed: worker %s lost", run.refresh_id, run.worker)
    run.refresh_from_db()
    emit_event(event_type=REFRESH_FAILED, payload=run_payload(run))
    return True


def reap_lost_runs() -> int:
    """The periodic reaper: fail lost runs, queue deferred runs whose schedule was lost, then let
    the queue move on."""
    deferred.start_late_runs()
    reaped = fail_lost_runs()
    if reaped or runs_waiting():
        enqueue_pickup()
    return reaped


def cancel_run(*, run: RefreshRun, requested_by: Requester) -> RefreshRun:
    """Cancel a scheduled or queued run at once; ask a running one to stop at its next batch."""
    access.check_cancel_allowed(user=requested_by, run=run)
    now = timezone.now()
    if RefreshRun.objects.filter(pk=run.pk, status__in=(RunStatus.SCHEDULED, RunStatus.QUEUED)).update(
        status=RunStatus.CANCELLED, finished_at=now, current_step="Cancelled", cancel_requested_at=now
    ):
        if run.run_at is not None:
            deferred.forget_schedule(run)
        run.refresh_from_db()
        return run
    running = RefreshRun.objects.filter(pk=run.pk, status=RunStatus.IN_PROGRESS)
    if running.filter(cancel_requested_at__isnull=True).update(cancel_requested_at=now) or running.exists():
        run.refresh_from_db()
        return run
    run.refresh_from_db()
    raise RunNotCancellable(f"Run {run.refresh_id} has already finished ({run.status}).")

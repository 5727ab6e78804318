"""Where a queued run stands: the active runs it waits for, and so when it should finish.

A queued run starts once no conflicting run holds its scope and no conflicting run ahead of it
in the queue (higher priority, or as high and older) is still waiting; runs on other scopes
go side by side and do not delay it. So its ETA is now, plus the remaining time of the
conflicting running run, plus the expected durations of the conflicting runs ahead, taken one
after another, plus its own. Durations are the recent medians the run's own estimate uses. It
is computed when the status is read, so it moves as the runs ahead finish. Workers are assumed
free; when every worker is busy with other scopes the run waits longer than this says.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from refresh.models import ACTIVE_STATUSES, RefreshRun, RunStatus
from refresh.services.scopes import conflicting_scopes
from refresh.services.tracking import current_eta, estimate_duration_seconds


@dataclass(frozen=True)
class QueueStanding:
    position: int  # 1: the next of its conflicting runs to start
    estimated_completion: datetime
    ahead: tuple[str, ...] = ()  # refresh ids of the active conflicting runs it waits for, running first


def queue_standing(run: RefreshRun) -> QueueStanding:
    """A queued run's place among the runs it waits for and its estimated completion (one query)."""
    ahead = (
        Q(status=RunStatus.IN_PROGRESS)
        | Q(priority__gt=run.priority)
        | Q(priority=run.priority, created_at__lt=run.created_at)
        | Q(priority=run.priority, created_at=run.created_at, pk__lt=run.pk)
    )
    blocking = RefreshRun.objects.filter(ahead).exclude(pk=run.pk)
    return _standing(blocking, scope=run.scope, kind=run.kind, mode=run.mode)


def standing_of_new_run(
    *, scope: str, priority: int, kind: str, mode: str, exclude: int | None = None
) -> QueueStanding:
    """Where a run requested now would stand: behind every conflicting running run and every
    conflicting queued run at least as urgent (all of them older). ``exclude``: a run's pk to leave
    out (one the request would fail as lost)."""
    blocking = RefreshRun.objects.filter(Q(status=RunStatus.IN_PROGRESS) | Q(priority__gte=priority))
    if exclude is not None:
        blocking = blocking.exclude(pk=exclude)
    return _standing(blocking, scope=scope, kind=kind, mode=mode)


def _standing(candidates: QuerySet[RefreshRun], *, scope: str, kind: str, mode: str) -> QueueStanding:
    blocking = candidates.filter(conflicting_scopes(scope), status__in=ACTIVE_STATUSES).only(
        "refresh_id", "status", "kind", "mode", "progress", "estimated_completion", "priority", "created_at"
    )
    now = timezone.now()
    running_left, queued_ahead, waiting = 0.0, 0, 0.0
    running: list[str] = []
    queued: list[tuple[int, datetime, int, str]] = []
    for other in blocking:
        if other.status == RunStatus.IN_PROGRESS:
            running_left = max(running_left, (current_eta(other) - now).total_seconds())
            running.append(other.refresh_id)
        else:
            queued_ahead += 1
            waiting += estimate_duration_seconds(kind=other.kind, mode=other.mode)
            queued.append((-other.priority, other.created_at, other.pk, other.refresh_id))
    own = estimate_duration_seconds(kind=kind, mode=mode)
    return QueueStanding(
        position=queued_ahead + 1,
        estimated_completion=now + timedelta(seconds=running_left + waiting + own),
        ahead=(*sorted(running), *(refresh_id for *_, refresh_id in sorted(queued))),
    )

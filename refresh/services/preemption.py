"""Emergency pre-emption: an emergency run waits neither behind a less urgent run on its scope
nor for a worker to come free.

When an emergency run is queued, every running run of lower priority on a conflicting scope is
marked (``preempt_for``). When instead every worker is busy with runs on other scopes, one less
urgent running run yields its worker (``yield_worker``): once the emergency run has waited
``REFRESH_EMERGENCY_GRACE_SECONDS`` while a free worker could have started it, the next running
run to look at a checkpoint (each looks at most every ``LOOK_SECONDS``) marks itself. So no
process of its own is needed for an emergency to start within seconds; a reserved emergency
lane only spares the stop.

Either way the marked run stops at its next checkpoint (between batches, where a cancel would
stop it), keeping everything it has saved, records a "Pre-empted" step and goes back to the
queue (refresh.services.execution) with its original request time, so it is the first of its
priority to resume once the emergency run has freed the scope or the worker. It stays marked
until it is claimed again, so that no second run yields for the same emergency meanwhile. Its
worker, now free, takes the emergency run.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.utils import timezone

from refresh.models import ACTIVE_STATUSES, RefreshRun, RefreshStep, RunPriority, RunStatus
from refresh.services.scopes import conflicting_scopes, held_scopes, scopes_conflict, serialise_lease_changes

# A running run looks for a starved emergency run at most this often: checkpoints can come every
# few milliseconds, and building the look's subquery costs about one.
LOOK_SECONDS = 0.5


def preempt_for(run: RefreshRun) -> int:
    """Ask the running runs an emergency run conflicts with to make way; how many were asked.

    A run below emergency priority pre-empts nothing; a run already asked to stop is left alone.
    """
    if run.priority < RunPriority.EMERGENCY:
        return 0
    return (
        RefreshRun.objects.filter(
            conflicting_scopes(run.scope),
            status=RunStatus.IN_PROGRESS,
            priority__lt=run.priority,
            preempted_by__isnull=True,
            cancel_requested_at__isnull=True,
        )
        .exclude(pk=run.pk)
        .update(preempted_by=run)
    )


def emergency_waits(run: RefreshRun) -> Exists:
    """For the checkpoint's query: whether an emergency run more urgent than this one was queued
    longer than the grace ago and no run makes way for it yet.

    Cheap (the queue's index, then the ``preempted_by`` index), and only a hint: ``yield_worker``
    decides.
    """
    waiting = _queued_emergencies(above=run.priority).filter(created_at__lte=_grace_cutoff())
    return Exists(waiting.exclude(_made_way_for()))


def yield_worker(run: RefreshRun) -> str | None:
    """Mark this running run to make way for an emergency run starved of a worker; that run's
    refresh_id if it did, else None.

    Starved: a free worker would start it now (no live lease, nor an emergency waiting before
    it, holds a conflicting scope), no run makes way for it yet, and it has waited the grace
    since it entered the queue or was raised, which a free worker would not have let pass.
    The run that yields is the caller, a run at its checkpoint that holds a worker: between
    batches, its worker is free at once and no other process needs telling. Checkpoints on
    every worker and machine decide one at a time (the lease lock, then the emergency run's
    row), and the first one marks itself, so exactly one run yields per emergency. A run
    never yields to one as urgent as itself (so an emergency never yields), nor to a run
    that has started.
    """
    if run.priority >= RunPriority.EMERGENCY:
        return None
    with transaction.atomic():
        serialise_lease_changes()  # leases and claims hold still while this decides
        emergency = _starved_emergency(above=run.priority)
        if emergency is None:
            return None
        marked = RefreshRun.objects.filter(
            pk=run.pk, status=RunStatus.IN_PROGRESS, preempted_by__isnull=True, cancel_requested_at__isnull=True
        ).update(preempted_by=emergency)
    return emergency.refresh_id if marked else None


def _starved_emergency(*, above: int) -> RefreshRun | None:
    """The first starved emergency run, in the order workers claim runs; its row stays locked
    to the end of the transaction (one being cancelled or raised right now is skipped)."""
    cutoff = _grace_cutoff()
    blocked = held_scopes()
    last_change = RefreshStep.objects.filter(run=OuterRef("pk")).order_by("-position").values("started_at")[:1]
    waiting = (
        _queued_emergencies(above=above)
        .annotate(made_way_for=_made_way_for(), last_change=Subquery(last_change))
        .order_by("-priority", "created_at", "id")
        .select_for_update(skip_locked=True)
    )
    for emergency in waiting[:100]:
        runnable = not any(scopes_conflict(emergency.scope, scope) for scope in blocked)
        waited = (emergency.last_change or emergency.created_at) <= cutoff  # since queued, raised or entered
        if runnable and waited and not emergency.made_way_for:
            return emergency
        blocked.append(emergency.scope)  # a worker takes it, or it waits: either way before the next
    return None


def _queued_emergencies(*, above: int) -> QuerySet[RefreshRun]:
    return RefreshRun.objects.filter(status=RunStatus.QUEUED, priority__gte=RunPriority.EMERGENCY, priority__gt=above)


def _made_way_for() -> Exists:
    """Whether an active run (running, or queued after it stopped) makes way for the outer emergency run."""
    return Exists(RefreshRun.objects.filter(preempted_by=OuterRef("pk"), status__in=ACTIVE_STATUSES))


def _grace_cutoff() -> datetime:
    return timezone.now() - timedelta(seconds=settings.REFRESH_EMERGENCY_GRACE_SECONDS)

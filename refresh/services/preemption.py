"""Emergency pre-emption: an emergency run does not wait behind a less urgent run on its scope.

When an emergency run is queued, every running run of lower priority on a conflicting scope is
marked. Each stops at its next checkpoint (between batches, where a cancel would stop it),
keeping everything it has saved, records a "Pre-empted" step and goes back to the queue
(refresh.services.execution) with its original request time, so it is the first of its
priority to resume once the emergency run has freed the scope. Its worker, now free, takes the
emergency run.
"""

from refresh.models import RefreshRun, RunPriority, RunStatus
from refresh.services.scopes import conflicting_scopes


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

"""Reading refresh runs: who sees which, recent runs, their symbols' outcomes, waiting for one to finish, the queue."""

import time
from collections.abc import Callable

from django.db.models import BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.http import Http404

from refresh.models import (
    ACTIVE_STATUSES,
    RefreshRun,
    RunStatus,
    RunSymbol,
)
from refresh.services import access
from refresh.services.access import Requester

# The condition of the one_active_run_per_request index in literals. SQLite uses a partial
# index only for a query that repeats its condition, and it cannot tell that bound parameters
# (Django binds status__in) would: it scanned every active run instead, slow with a backlog.
_IS_ACTIVE = RawSQL(  # noqa: S611 - the model's own status constants, no input
    '"status" IN ({})'.format(", ".join(f"'{status}'" for status in ACTIVE_STATUSES)), [], output_field=BooleanField()
)


def active_runs_with_key(dedup_key: str) -> QuerySet[RefreshRun]:
    """The queued or running run doing this work, if any (found through its unique index).

    Join nothing onto it: the condition names the status column unqualified.
    """
    return RefreshRun.objects.filter(_IS_ACTIVE, dedup_key=dedup_key)


def runs_visible_to(*, user: Requester) -> QuerySet[RefreshRun]:
    """Holders of view_all_runs (admin, support, system) see every run; anyone else their own:
    those they asked for or that targeted their portfolio."""
    runs = RefreshRun.objects.select_related("requested_by", "target_user", "retry_of")
    if access.may_view_all_runs(user):
        return runs
    return runs.filter(Q(requested_by=user) | Q(target_user=user))


def get_run_for_user(*, user: Requester, refresh_id: str) -> RefreshRun:
    """The run, or 404 when it does not exist or is not the user's (no enumeration)."""
    run = runs_visible_to(user=user).filter(refresh_id=refresh_id).first()
    if run is None:
        raise Http404("No such refresh run.")
    return run


def run_symbol_outcomes(*, run: RefreshRun) -> QuerySet[RunSymbol]:
    """The symbols the run dealt with and their outcomes, by symbol (its unique index's order)."""
    return RunSymbol.objects.filter(run=run).order_by("symbol")


def wait_for_run(
    *,
    run: RefreshRun,
    timeout: float | None = None,
    poll: float = 0.2,
    listener: Callable[[RefreshRun], object] | None = None,
) -> RefreshRun:
    """Poll until the run finishes or the timeout passes, telling the listener each state."""
    deadline = time.monotonic() + timeout if timeout is not None else float("inf")
    run.refresh_from_db()
    while not run.is_finished and time.monotonic() < deadline:
        time.sleep(min(poll, max(deadline - time.monotonic(), 0)))
        run.refresh_from_db()
        if listener:
            listener(run)
    return run


def runs_waiting(*, min_priority: int = 0) -> bool:
    """Whether any run (of at least this priority) is queued and not started."""
    return RefreshRun.objects.filter(status=RunStatus.QUEUED, priority__gte=min_priority).exists()

"""Reading refresh runs: who sees which, recent runs, waiting for one to finish."""
import time

from django.db.models import Q, QuerySet
from django.http import Http404

from refresh.models import RefreshRun
from refresh.services import access


def runs_visible_to(*, user) -> QuerySet[RefreshRun]:
    """Holders of view_all_runs (admin, support, system) see every run; anyone else their own.

    A user's own runs are those they asked for or that targeted their portfolio.
    """
    runs = RefreshRun.objects.select_related("requested_by", "target_user")
    if access.may_view_all_runs(user):
        return runs
    return runs.filter(Q(requested_by=user) | Q(target_user=user))


def get_run_for_user(*, user, refresh_id: str) -> RefreshRun:
    """The run, or 404 when it does not exist or is not the user's (no enumeration)."""
    run = runs_visible_to(user=user).filter(refresh_id=refresh_id).first()
    if run is None:
        raise Http404("No such refresh run.")
    return run


def wait_for_run(*, run: RefreshRun, timeout: float | None = None, poll: float = 0.2,
                 listener=None) -> RefreshRun:
    """Poll until the run finishes or the timeout passes, telling the listener each state."""
    deadline = time.monotonic() + timeout if timeout is not None else float("inf")
    run.refresh_from_db()
    while not run.is_finished and time.monotonic() < deadline:
        time.sleep(min(poll, max(deadline - time.monotonic(), 0)))
        run.refresh_from_db()
        if listener:
            listener(run)
    return run

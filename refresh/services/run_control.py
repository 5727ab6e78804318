"""What an operator does to a run after it was requested: change its priority, retry it."""

from refresh.errors import InvalidRefreshRequest, RunNotQueued, RunNotRetryable
from refresh.models import RefreshKind, RefreshRun, RunStatus
from refresh.services import access
from refresh.services.access import Requester
from refresh.services.requests import parse_priority, raise_priority, request_refresh

RETRYABLE_STATUSES = (RunStatus.FAILED, RunStatus.PARTIAL, RunStatus.TIMEOUT, RunStatus.CANCELLED)


def reprioritise_run(*, run: RefreshRun, requested_by: Requester, priority: int | str) -> RefreshRun:
    """Move a queued run to another priority, recorded as a step with who asked.

    The requester of the run or an admin may, and only to a priority their role may request.
    Raises RunNotQueued (409) once a worker has started it or it finished.
    """
    access.check_cancel_allowed(user=requested_by, run=run, action="reprioritise")
    new = parse_priority(priority)
    if new is None:
        raise InvalidRefreshRequest("Name a priority: low, medium, high or emergency.", code="invalid_priority")
    access.check_priority_allowed(user=requested_by, priority=new)
    who = requested_by.get_username() if requested_by is not None else "the system"
    if run.status == RunStatus.QUEUED and run.priority == new:
        return run
    if not raise_priority(run, priority=new, message=f"Set to {{priority}} by {who}."):
        raise RunNotQueued(f"Run {run.refresh_id} is {run.status}; only a queued run can be reprioritised.")
    return run


def retry_run(
    *, run: RefreshRun, requested_by: Requester, source: str, all_symbols: bool = False
) -> tuple[RefreshRun, bool]:
    """Start the run's work again as a new run linked to it (``retry_of``).

    A prices run that failed for some symbols retries just those, unless ``all_symbols``. The
    retry is a request like any other: permissions, limits and deduplication apply, and the
    role's default priority (not the original's, which the retrier may not be allowed).
    """
    if run.status not in RETRYABLE_STATUSES:
        raise RunNotRetryable(
            f"Run {run.refresh_id} is {run.status}; only a failed, partial, timed-out or cancelled run can be retried."
        )
    symbols = run.params.get("symbols") or None
    if run.kind == RefreshKind.PRICES and run.failed_symbols and not all_symbols:
        symbols = sorted(run.failed_symbols)
    return request_refresh(
        kind=run.kind,
        mode=run.mode,
        requested_by=requested_by,
        source=source,
        target_user_id=run.target_user_id,
        symbols=symbols,
        apply_rebalancing=bool(run.params.get("apply_rebalancing")),
        retry_of=run,
    )

"""Starting a refresh: validate, check permissions, record the run once, queue it."""

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Required, TypedDict, Unpack

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.log_context import current_request_id
from core.roles import role_of
from market_data.models import Asset
from refresh.errors import InvalidRefreshRequest, TargetNotFound
from refresh.models import (
    RefreshKind,
    RefreshMode,
    RefreshRun,
    RunPriority,
    RunSource,
    RunStatus,
)
from refresh.selectors import active_runs_with_key
from refresh.services import access, deferred, preemption, rate_limits
from refresh.services.access import Requester
from refresh.services.dispatch import enqueue_pickup_on_commit
from refresh.services.execution import fail_if_lost
from refresh.services.scopes import scope_for
from refresh.services.tracking import estimate_duration_seconds, last_step_position, record_instant_step

_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9.\-/:]{0,19}$")
_PRIORITY_BY_NAME = {p.label: p.value for p in RunPriority}


def parse_priority(value: object) -> int | None:
    """Accept a priority name ("high") or its number; None means the role's default.

    Anything else (a webhook's JSON may hold any value) raises InvalidRefreshRequest.
    """
    if value in (None, ""):
        return None
    if isinstance(value, str) and value.lower() in _PRIORITY_BY_NAME:
        return _PRIORITY_BY_NAME[value.lower()]
    if isinstance(value, int | float) and value in RunPriority.values:
        return int(value)
    raise InvalidRefreshRequest(
        f'Unknown priority "{value}"; use one of {", ".join(_PRIORITY_BY_NAME)}.', code="invalid_priority"
    )


def _validate(
    *,
    kind: str,
    mode: str,
    target_user_id: int | None,
    symbols: Iterable[str] | None,
    apply_rebalancing: bool,
    requested_by: Requester,
) -> list[str]:
    """Raise InvalidRefreshRequest or TargetNotFound for a request that cannot run; its clean symbols."""
    if kind not in RefreshKind.values:
        raise InvalidRefreshRequest(f'Unknown refresh kind "{kind}".', code="invalid_kind")
    if mode not in RefreshMode.values:
        raise InvalidRefreshRequest(f'Unknown mode "{mode}"; use full, incremental or smart.', code="invalid_mode")
    if kind == RefreshKind.PORTFOLIO:
        _check_target_user(target_user_id=target_user_id, requested_by=requested_by)
    if symbols and kind != RefreshKind.PRICES:
        raise InvalidRefreshRequest("Only a prices refresh takes symbols.", code="invalid_symbols")
    if apply_rebalancing and kind not in (RefreshKind.STRATEGY, RefreshKind.ALL):
        raise InvalidRefreshRequest("Only a strategy refresh can apply rebalancing.", code="invalid_request")
    return _known_symbols(symbols)


def _check_target_user(*, target_user_id: int | None, requested_by: Requester) -> None:
    """A portfolio refresh names a user who exists."""
    if target_user_id is None:
        raise InvalidRefreshRequest("A portfolio refresh needs a user id.", code="invalid_user")
    own = requested_by is not None and str(target_user_id) == str(requested_by.pk)  # most requests
    if not own and not get_user_model().objects.filter(pk=target_user_id).exists():
        raise TargetNotFound(f"No user with id {target_user_id}.")


def _known_symbols(symbols: Iterable[str] | None) -> list[str]:
    """The symbols upper-cased, deduplicated and sorted; each must be well formed and a known asset."""
    clean = sorted({str(s).strip().upper() for s in symbols or []})
    bad = [s for s in clean if not _SYMBOL.match(s)]
    if bad:
        raise InvalidRefreshRequest(f"Malformed symbols: {', '.join(bad[:10])}.", code="invalid_symbols")
    if clean:
        known = set(Asset.objects.filter(symbol__in=clean).values_list("symbol", flat=True))
        unknown = [s for s in clean if s not in known]
        if unknown:
            raise InvalidRefreshRequest(f"Unknown symbols: {', '.join(unknown[:10])}.", code="unknown_symbols")
    return clean


def dedup_key(*, kind: str, mode: str, target_user_id: int | None, params: dict[str, object]) -> str:
    """Requests with equal keys would do the same work, so only one may be active."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    return f"{kind}:{target_user_id or '-'}:{mode}:{digest}"


def _change_queued(
    run: RefreshRun, *, step: str, message: str, priority: int, only_if: dict[str, object], **changes: object
) -> bool:
    """Change a still-queued run and record the change as a step, in one transaction (a worker
    claiming the run meanwhile waits, then sees the step); False when a worker took it first.
    A run raised to emergency pre-empts the runs in its way and gets the emergency lane's pickup."""
    with transaction.atomic():
        queued = RefreshRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED, **only_if)
        changed = queued.update(priority=priority, **changes)
        if changed:
            record_instant_step(run=run, position=last_step_position(run) + 1, name=step, message=message)
            if priority >= RunPriority.EMERGENCY:
                run.priority = priority
                preemption.preempt_for(run)
                enqueue_pickup_on_commit(emergency=True)
    run.refresh_from_db()
    return bool(changed)


def _take_over_scheduled(
    run: RefreshRun, *, requested_by: Requester, role: str, source: str, priority: int
) -> RefreshRun:
    """A manual request for work a schedule already queued makes that run its own, sooner."""
    raised = max(priority, run.priority)
    _change_queued(
        run,
        step="Taken over",
        message=f"A {source} request took over this scheduled run at priority {RunPriority(raised).label}.",
        only_if={"source": RunSource.SCHEDULE},
        source=source,
        requested_by=requested_by,
        requested_role=role,
        priority=raised,
    )
    return run


class _IdenticalRunActive(Exception):
    """Raised inside the transaction to undo what it counted: the request joins that run instead."""


def _record(
    run: RefreshRun, *, check_limits: Callable[[], None], enqueue: bool
) -> rate_limits.RateLimitExceeded | None:
    """Count the request against its limits and insert its run, in one transaction.

    Returns a refusal, whose counted attempts are committed with no run. Raises IntegrityError
    (the dedup index) or _IdenticalRunActive when an identical run is active, counting nothing.
    """
    with transaction.atomic():
        if rate_limits.counted_in_the_database():
            # The counters are rows in this transaction: count first, so that a refusal commits
            # its attempts without a run, and an accepted request commits its counts and run together.
            try:
                check_limits()
            except rate_limits.RateLimitExceeded as refusal:
                if active_runs_with_key(run.dedup_key).exists():  # started since the first look
                    raise _IdenticalRunActive from refusal
                return refusal
            run.save()
        else:
            # Redis counts outside the transaction: the dedup index first, so that an identical
            # request stops there before counting; a refusal rolls the new run back.
            run.save()
            check_limits()
        if run.status == RunStatus.SCHEDULED:
            deferred.schedule_start(run)
        else:
            preemption.preempt_for(run)
            if enqueue:
                enqueue_pickup_on_commit(emergency=run.priority >= RunPriority.EMERGENCY)
    return None


def _join_active(key: str, *, requested_by: Requester, role: str, source: str, priority: int) -> RefreshRun | None:
    """The active run with this dedup key, taken over if a schedule queued it, raised to this
    request's priority if it is still queued at a lower one; None if there is none.

    A run whose worker is known lost (its lease lapsed) is failed here rather than joined, so the
    request starts a new run at once instead of waiting for the reaper.
    """
    existing = active_runs_with_key(key).first()
    if existing is None or fail_if_lost(existing):
        return None
    if source != RunSource.SCHEDULE and existing.source == RunSource.SCHEDULE:
        return _take_over_scheduled(existing, requested_by=requested_by, role=role, source=source, priority=priority)
    if priority > existing.priority:
        raise_priority(existing, priority=priority, message=f"Joined by a {role} request at priority {{priority}}.")
    return existing


def raise_priority(run: RefreshRun, *, priority: int, message: str) -> bool:
    """Set a queued run's priority and record it as a step; False when it is no longer queued.

    ``message`` may name ``{priority}``. An emergency gets the emergency lane's pickup too.
    """
    said = f"{message.format(priority=RunPriority(priority).label)} Was {RunPriority(run.priority).label}."
    return _change_queued(run, step="Reprioritised", message=said, only_if={}, priority=priority)


def _new_run(*, run_at: datetime | None, expected_seconds: float, **fields: object) -> RefreshRun:
    """A run to record: queued now, or scheduled for ``run_at``."""
    start = run_at or timezone.now()
    run = RefreshRun(
        request_id=current_request_id() or "",
        estimated_completion=start + timedelta(seconds=expected_seconds),
        **fields,
    )
    if run_at is not None:
        run.status, run.run_at, run.current_step = RunStatus.SCHEDULED, run_at, "Scheduled"
    return run


class RefreshArgs(TypedDict, total=False):
    """What a refresh request asks for, as every interface passes it to ``request_refresh``,
    ``check_refresh_request`` and ``plan_refresh`` (refresh.services.dry_run)."""

    kind: Required[str]
    requested_by: Required[Requester]
    mode: str  # default incremental
    priority: int | str | None  # a name or number; None: the role's default
    target_user_id: int | None  # portfolio runs only
    symbols: Iterable[str] | None  # prices runs: only these
    apply_rebalancing: bool  # strategy runs
    role: str | None  # None: the requester's own (core.roles)
    grants: frozenset[str]  # permissions a caller holds beyond its role (a signed webhook's)
    run_at: datetime | None  # defer the run to this time


@dataclass(frozen=True)
class CheckedRequest:
    """A refresh request that passed validation and permissions: the run it would record, as values."""

    kind: str
    mode: str
    requested_by: User | None  # None: the system itself
    role: str
    priority: int  # the requested one, else the role's default
    target_user_id: int | None
    params: dict[str, object]  # symbols (clean), apply_rebalancing
    dedup_key: str
    scope: str
    run_at: datetime | None


def check_refresh_request(**request: Unpack[RefreshArgs]) -> CheckedRequest:
    """Validate a request and check its permissions (deferring it, with ``run_at``), writing nothing.

    Raises InvalidRefreshRequest, TargetNotFound or PermissionDenied. A real request and a dry
    run both pass here, so a dry run is refused exactly where the request would be.
    """
    kind, requested_by = request["kind"], request["requested_by"]
    mode = request.get("mode", RefreshMode.INCREMENTAL)
    apply_rebalancing, grants = request.get("apply_rebalancing", False), request.get("grants", frozenset())
    run_at = request.get("run_at")
    if isinstance(requested_by, AnonymousUser):  # the interfaces let only signed-in users through
        raise PermissionDenied("Sign in to request a refresh.")
    target_user_id = request.get("target_user_id") if kind == RefreshKind.PORTFOLIO else None
    clean_symbols = _validate(
        kind=kind,
        mode=mode,
        target_user_id=target_user_id,
        symbols=request.get("symbols"),
        apply_rebalancing=apply_rebalancing,
        requested_by=requested_by,
    )
    role = request.get("role") or role_of(requested_by)
    requested_priority = parse_priority(request.get("priority"))
    access.check_refresh_allowed(
        user=requested_by,
        kind=kind,
        target_user_id=target_user_id,
        mode=mode,
        requested_priority=requested_priority,
        apply_rebalancing=apply_rebalancing,
        grants=grants,
    )
    if run_at is not None:
        access.check_defer_allowed(user=requested_by, grants=grants)
        deferred.check_run_at(run_at)
    params: dict[str, object] = {"symbols": clean_symbols, "apply_rebalancing": bool(apply_rebalancing)}
    return CheckedRequest(
        kind=kind,
        mode=mode,
        requested_by=requested_by,
        role=role,
        priority=requested_priority or access.default_priority(role),
        target_user_id=target_user_id,
        params=params,
        dedup_key=dedup_key(kind=kind, mode=mode, target_user_id=target_user_id, params=params),
        scope=scope_for(kind=kind, target_user_id=target_user_id),
        run_at=run_at,
    )


def request_refresh(
    *,
    source: str,
    enqueue: bool = True,
    retry_of: RefreshRun | None = None,
    **request: Unpack[RefreshArgs],
) -> tuple[RefreshRun, bool]:
    """Record a refresh run and queue it, or return the identical run already active.

    With ``run_at`` the run is deferred: recorded as scheduled, it enters the queue then
    (refresh.services.deferred), where an identical active run is joined.

    Returns ``(run, created)``. Raises InvalidRefreshRequest, TargetNotFound,
    PermissionDenied or RateLimitExceeded (interactive sources only) without recording a run.
    """
    checked = check_refresh_request(**request)
    kind, mode, run_at = checked.kind, checked.mode, checked.run_at
    requested_by, role, run_priority, key = checked.requested_by, checked.role, checked.priority, checked.dedup_key
    expected_seconds = estimate_duration_seconds(kind=kind, mode=mode)  # before the write lock is taken
    if run_at is None and rate_limits.counted_in_the_database():
        # Counting writes rows: an identical request for an active run joins it without a write.
        # (With Redis the insert comes first, and the dedup index stops an identical request.)
        existing = _join_active(key, requested_by=requested_by, role=role, source=source, priority=run_priority)
        if existing is not None:
            return existing, False
    # The checks above become the run's first steps when a worker starts it (tracking.REQUEST_STEPS).
    check_limits = partial(
        rate_limits.check_rate_limits,
        user=requested_by,
        role=role,
        kind=kind,
        target_user_id=checked.target_user_id,
        source=source,
    )
    for _ in range(3):
        run = _new_run(
            run_at=run_at,
            expected_seconds=expected_seconds,
            kind=kind,
            mode=mode,
            priority=run_priority,
            requested_by=requested_by,
            requested_role=role,
            source=source,
            target_user_id=checked.target_user_id,
            params=checked.params,
            dedup_key=key,
            retry_of=retry_of,
            scope=checked.scope,
        )
        try:
            refusal = _record(run, check_limits=check_limits, enqueue=enqueue)
        except (IntegrityError, _IdenticalRunActive):
            existing = _join_active(key, requested_by=requested_by, role=role, source=source, priority=run_priority)
            if existing is not None:
                return existing, False
            continue
        if refusal is not None:
            raise refusal  # its counted attempts are committed
        return run, True
    raise InvalidRefreshRequest("Could not record the run; try again.", code="conflict")
